"""HOIDataModule: a dict of loaders per training step, stream validation, world generation on demand."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pytorch_lightning.utilities import CombinedLoader

from hoi_adapt.data.formats import world as fmt
from hoi_adapt.data.streams import HiddenLabels, StreamSpec, build_stream_dataset
from hoi_adapt.lit.datamodule import HOIDataModule
from hoi_adapt.utils.errors import ConfigError, DataFileError

TRAIN = {
    "hand_only": StreamSpec(split="source_hand", image="hand", batch_size=4),
    "pairs": {"dataset": "synthetic", "split": "source_pairs", "image": "hoi", "pair": True, "batch_size": 2},
    "target": StreamSpec(split="target_hoi", image="hoi", labels=False, batch_size=3),
}
VAL = {
    "hand_test": StreamSpec(split="source_hand_test", image="hand", augment=False),
    "target_test": StreamSpec(split="target_test,target_val", image="hoi", augment=False, batch_size=5),
}


def make(world: Path | str | None, **kw) -> HOIDataModule:
    args = dict(world=str(world) if world else None, train=TRAIN, val=VAL, batch_size=6, num_workers=0, image_size=64, augment={})
    args.update(kw)
    return HOIDataModule(**args)


def first_train_batch(dm: HOIDataModule) -> dict:
    loader = dm.train_dataloader()
    assert isinstance(loader, CombinedLoader)
    item = next(iter(loader))
    return item[0] if isinstance(item, tuple) else item


def test_train_streams_come_as_a_dict_per_step(tiny_world: Path) -> None:
    dm = make(tiny_world)
    dm.setup("fit")
    batch = first_train_batch(dm)
    assert set(batch) == {"hand_only", "pairs", "target"}
    for name, bs in (("hand_only", 4), ("pairs", 2), ("target", 3)):
        assert batch[name]["image"].shape == (bs, 3, 64, 64)
        assert batch[name]["K"].shape == (bs, 3, 3)
    assert batch["hand_only"]["is_hand_object"].sum() == 0 and batch["hand_only"]["has_3d"].all()
    assert batch["pairs"]["has_pair"].all() and batch["pairs"]["has_3d"].all()
    # the target stream is weakly supervised: masks, no pose, even after augmentation
    assert batch["target"]["has_mask"].all() and not batch["target"]["has_3d"].any()
    assert float(batch["target"]["joints2d"].abs().sum()) == 0.0
    # training streams are augmented, and augmentation keeps the projection exact
    for b in batch.values():
        if b["has_3d"].all():
            uvw = torch.einsum("bij,bnj->bni", b["K"].double(), b["joints3d"].double())
            assert torch.allclose(uvw[..., :2] / uvw[..., 2:], b["joints2d"].double(), atol=1e-3)
    stored_K = torch.as_tensor(fmt.load_annotations(tiny_world, "source_hand")["K"])
    assert not any(torch.allclose(k, s) for k in batch["hand_only"]["K"] for s in stored_K)


def test_eval_loaders_follow_the_val_streams(tiny_world: Path) -> None:
    dm = make(tiny_world)
    dm.setup("validate")
    loaders = dm.val_dataloader()
    assert dm.val_names == ["hand_test", "target_test"] and len(loaders) == 2
    assert len(loaders[0].dataset) == 8 and len(loaders[1].dataset) == 16  # target_test + target_val
    b0, b1 = next(iter(loaders[0])), next(iter(loaders[1]))
    assert b0["image"].shape[0] == 6 and b1["image"].shape[0] == 5
    stored_K = torch.as_tensor(fmt.load_annotations(tiny_world, "source_hand_test")["K"][:6])
    torch.testing.assert_close(b0["K"], stored_K.float())  # no augmentation at evaluation
    dm.setup("test")
    assert len(dm.test_dataloader()) == 2


@pytest.mark.parametrize(
    "streams, match",
    [
        ({"a": StreamSpec(image="rgb")}, "image must be 'hand' or 'hoi'"),
        ({"a": {"split": "source_hand", "imgae": "hand"}}, r"unknown key\(s\) \['imgae'\]"),
        ({"a": StreamSpec(split="source_hand", image="hand", pair=True)}, "pair=True"),
        ({"a": StreamSpec(dataset="imagenet", root="/x")}, "unknown dataset 'imagenet'"),
        ({"a": StreamSpec(batch_size=0)}, "batch_size must be a positive integer"),
        ({"a": StreamSpec(split=" , ")}, "'split' is empty"),
        ({"a": 3}, "must be a mapping"),
        ({}, "at least one stream"),
    ],
)
def test_bad_stream_configs_are_clear_errors(tiny_world: Path, streams: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        make(tiny_world, train=streams)


def test_other_bad_settings(tiny_world: Path) -> None:
    with pytest.raises(ConfigError, match="train_mode"):
        make(tiny_world, train_mode="zip")
    dm = make(tiny_world, train={"x": StreamSpec(split="no_such_split")})
    with pytest.raises(DataFileError, match="no_such_split"):
        dm.setup("fit")
    with pytest.raises(ConfigError, match="needs 'root'"):
        make(None, train={"x": StreamSpec(split="source_hand")}).setup("fit")


def test_prepare_data_generates_a_missing_world(tmp_path: Path) -> None:
    cfg = tmp_path / "micro.yaml"
    cfg.write_text(
        "seed: 1\nimage_size: 32\nchunk_size: 4\nview_candidates: 4\nsplits:\n"
        "  - {name: source_hand, count: 5, style: source, with_object: false}\n"
        "  - {name: target_hoi, count: 4, style: target, with_object: true}\n"
    )
    world = tmp_path / "world"
    train = {"hand": StreamSpec(split="source_hand", batch_size=2), "hoi": StreamSpec(split="target_hoi", image="hoi", labels=False, batch_size=2)}
    dm = make(world, world_config=str(cfg), train=train, val={"v": StreamSpec(split="source_hand", augment=False)}, image_size=48)
    assert not world.exists()
    dm.prepare_data()
    assert (world / "source_hand" / fmt.ANNOTATIONS_FILE).is_file() and (world / "target_hoi" / fmt.ANNOTATIONS_FILE).is_file()
    before = {p: p.stat().st_mtime_ns for p in world.rglob("*")}
    dm.prepare_data()  # complete: reused untouched
    assert {p: p.stat().st_mtime_ns for p in world.rglob("*")} == before
    dm.setup("fit")
    batch = first_train_batch(dm)
    assert batch["hand"]["image"].shape == (2, 3, 48, 48) and batch["hoi"]["image"].shape == (2, 3, 48, 48)


def test_real_dataset_stream_hides_labels_when_asked(tmp_path: Path) -> None:
    from fixtures_datasets import write_freihand

    write_freihand(tmp_path / "fh", n=3, size=64)
    spec = {"dataset": "freihand", "root": str(tmp_path / "fh"), "split": "train", "labels": False}
    ds = build_stream_dataset(spec, None, 64, name="weak")
    assert isinstance(ds, HiddenLabels) and len(ds) == 12
    s = ds[0]
    assert float(s["has_3d"]) == float(s["has_2d"]) == float(s["has_mano"]) == 0.0
    assert float(s["joints3d"].abs().sum()) == float(s["joints2d"].abs().sum()) == float(s["mano_pose"].abs().sum()) == 0.0
    labelled = build_stream_dataset(dict(spec, labels=True), None, 64)[0]
    assert float(labelled["has_3d"]) == 1.0 and torch.equal(labelled["image"], s["image"])
