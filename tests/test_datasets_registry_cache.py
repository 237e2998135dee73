"""Registry, cross-dataset collation, transform hook, and the index cache (hit, invalidation, atomicity)."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from fixtures_datasets import write_dexter_object, write_egodexter, write_freihand, write_ho3d, write_obman, write_rhd, write_stb
from torch.utils.data import default_collate

from hoi_adapt.data.datasets.dexter_object import DexterObject
from hoi_adapt.data.datasets.synthetic import SyntheticHandDataset
from hoi_adapt.data.registry import REGISTRY, build_dataset, dataset_entry, dataset_names
from hoi_adapt.data.schema import ALL_KEYS
from hoi_adapt.utils.errors import ConfigError

WRITERS = {"dexter_object": (write_dexter_object, "test", {}), "egodexter": (write_egodexter, "test", {}),
           "stb": (write_stb, "test", {}), "rhd": (write_rhd, "train", {}), "freihand": (write_freihand, "train", {}),
           "ho3d": (write_ho3d, "train", {}), "obman": (write_obman, "train", {})}


@pytest.fixture(scope="module")
def all_roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("all")
    for name, (writer, _, _) in WRITERS.items():
        writer(base / name)
    return base


def test_registry():
    assert list(dataset_names()) == ["dexter_object", "egodexter", "stb", "rhd", "freihand", "ho3d", "obman", "adapted", "synthetic"]
    assert all(e.loader.name == n for n, e in REGISTRY.items() if n != "synthetic")
    assert REGISTRY["synthetic"].loader is SyntheticHandDataset
    with pytest.raises(ConfigError, match=r"unknown dataset 'dexter'; known datasets: dexter_object \(do, dexter\+object, d\+o\), egodexter"):
        build_dataset("dexter", "/tmp", "test")


@pytest.mark.parametrize("typed,name", [("DO", "dexter_object"), ("dexter-object", "dexter_object"), ("Dexter+Object", "dexter_object"),
                                        ("ed", "egodexter"), ("EgoDexter", "egodexter"), ("FreiHAND", "freihand"), ("synthetic", "synthetic")])
def test_registry_aliases(typed, name):
    assert dataset_entry(typed).name == name


def test_registry_defaults_are_splits_the_loaders_accept():
    for entry in REGISTRY.values():
        if entry.name == "synthetic":
            assert (entry.train_split, entry.eval_split, entry.protocol) == ("target_hoi", "target_test", "synthetic")
            continue
        for split in (entry.train_split, entry.eval_split):
            assert split in entry.loader.SPLITS, (entry.name, split)


def test_every_dataset_builds_and_mixed_batches_collate(all_roots, tmp_path):
    samples = []
    for name, (_, split, kw) in WRITERS.items():
        ds = build_dataset(name, all_roots / name, split, cache_dir=tmp_path, out_size=32, **kw)
        assert isinstance(ds, REGISTRY[name].loader) and len(ds) > 0
        s = ds[len(ds) - 1]
        assert set(s) == set(ALL_KEYS) and s["dataset"] == name and s["index"] == len(ds) - 1
        assert all(torch.isfinite(v).all() for v in s.values() if isinstance(v, torch.Tensor))
        assert 0.0 <= float(s["image"].min()) and float(s["image"].max()) <= 1.0
        samples.append(s)
    batch = default_collate(samples)
    assert batch["image"].shape == (7, 3, 32, 32) and batch["joints3d"].shape == (7, 21, 3)
    assert batch["dataset"] == list(WRITERS)


def test_transform_is_applied_last(all_roots, tmp_path):
    seen = {}

    def transform(sample):
        seen.update(sample)
        sample = dict(sample)
        sample["image"] = 1.0 - sample["image"]
        return sample

    plain = build_dataset("rhd", all_roots / "rhd", "train", cache_dir=tmp_path)[0]
    out = build_dataset("rhd", all_roots / "rhd", "train", cache_dir=tmp_path, transform=transform)[0]
    assert torch.equal(seen["image"], plain["image"])  # received the finished sample
    assert torch.allclose(out["image"], 1.0 - plain["image"])


def _cache_files(cache):
    return sorted((cache / "index").glob("*.npz")) if (cache / "index").exists() else []


def test_index_cache_hit_and_invalidation(tmp_path, monkeypatch):
    root = tmp_path / "do"
    write_dexter_object(root)
    cache = tmp_path / "cache"
    first = DexterObject(root, cache_dir=cache)
    files = _cache_files(cache)
    assert len(files) == 1 and files[0].name.startswith("dexter_object_test_")
    assert not list((cache / "index").glob("*.tmp"))  # atomic write leaves nothing behind

    def boom(self):
        raise AssertionError("index rebuilt")

    monkeypatch.setattr(DexterObject, "_build_index", boom)
    second = DexterObject(root, cache_dir=cache)  # served from the cache, no parsing
    assert len(second) == len(first)
    np.testing.assert_array_equal(second[3]["joints3d"].numpy(), first[3]["joints3d"].numpy())
    assert second.record(3).image == first.record(3).image

    ann = root / "data/Pinch/annotations/Pinch3D.txt"
    ann.write_text(ann.read_text() + " ")  # size changes
    with pytest.raises(AssertionError, match="index rebuilt"):
        DexterObject(root, cache_dir=cache)
    monkeypatch.undo()
    DexterObject(root, cache_dir=cache)
    monkeypatch.setattr(DexterObject, "_build_index", boom)
    st = ann.stat()
    os.utime(ann, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # same size, new mtime
    with pytest.raises(AssertionError, match="index rebuilt"):
        DexterObject(root, cache_dir=cache)
    (root / "data/Pinch/color/00009.png").write_bytes((root / "data/Pinch/color/00000.png").read_bytes())
    with pytest.raises(AssertionError, match="index rebuilt"):  # a new image changes the pairing
        DexterObject(root, cache_dir=cache)


def test_cache_keys_corruption_and_opt_out(tmp_path, monkeypatch):
    root = tmp_path / "do"
    write_dexter_object(root)
    cache = tmp_path / "cache"
    DexterObject(root, cache_dir=cache)
    DexterObject(root, cache_dir=cache, sequences=("Pinch",))
    assert len(_cache_files(cache)) == 2  # index options are part of the key
    for f in _cache_files(cache):
        f.write_bytes(b"garbage")
    assert len(DexterObject(root, cache_dir=cache)) == 12  # a corrupt cache is rebuilt
    other = tmp_path / "other"
    DexterObject(root, cache_dir=other, use_cache=False)
    assert _cache_files(other) == []
    monkeypatch.setenv("HOI_ADAPT_CACHE", str(tmp_path / "env"))
    DexterObject(root)
    assert len(_cache_files(tmp_path / "env")) == 1


def test_no_cache_written_when_problems(tmp_path):
    root = tmp_path / "do"
    write_dexter_object(root)
    ann = root / "data/Pinch/annotations/Pinch3D.txt"
    ann.write_text("bad line\n" + ann.read_text())
    with pytest.warns(UserWarning, match="3 annotation lines"):
        ds = DexterObject(root, cache_dir=tmp_path / "c", strict=False)
    assert ds.problems and _cache_files(tmp_path / "c") == []


def test_second_construction_reads_the_cache(tmp_path, monkeypatch):
    """A cache hit never re-parses the annotations (what used to be asserted with a stopwatch)."""
    from hoi_adapt.data.datasets.ho3d import HO3D

    root = tmp_path / "ho"
    write_ho3d(root, frames=6)
    first = build_dataset("ho3d", root, "train", cache_dir=tmp_path / "c")

    def parse_again(self):
        raise AssertionError("index rebuilt although the cache is valid")

    monkeypatch.setattr(HO3D, "_build_index", parse_again)
    second = build_dataset("ho3d", root, "train", cache_dir=tmp_path / "c")
    assert len(second) == len(first) > 0
    np.testing.assert_array_equal(second[0]["joints3d"].numpy(), first[0]["joints3d"].numpy())


def test_crop_sources_and_config_errors(all_roots, tmp_path):
    root = all_roots / "rhd"
    full = build_dataset("rhd", root, "train", cache_dir=tmp_path, crop_source="full", out_size=32, flip_left=False)[1]
    np.testing.assert_allclose(full["K"][0, 0].item(), 288.0 * 32 / 320, rtol=1e-6)  # whole 320-px image
    by_mask = build_dataset("rhd", root, "train", cache_dir=tmp_path, crop_source="mask", crop_scale=1.0, out_size=32)
    s = by_mask[1]  # right hand, not flipped: its label box fills the crop along its longer side
    m = s["hand_mask"].numpy().astype(bool)
    ys, xs = np.nonzero(m)
    assert max(xs.max() - xs.min(), ys.max() - ys.min()) + 1 >= 31
    for bad in ({"crop_source": "box"}, {"out_size": 4}, {"crop_scale": 0}, {"crop_min_frac": -1}):
        with pytest.raises(ConfigError):
            build_dataset("rhd", root, "train", **bad)
