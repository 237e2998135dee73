"""ObMan loader: rgb / rgb_hand pairs, segm channels and labels, OpenGL-like coordinates, left-hand mirroring."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from fixtures_datasets import assert_projection_consistent, dot_centroid, write_obman, write_pickle, write_rgb

from hoi_adapt.data.datasets import obman as O
from hoi_adapt.utils.errors import ConfigError, DataFileError

FLIP = np.array([-1.0, 1.0, 1.0])


@pytest.fixture(scope="module")
def obman_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("obman")
    return root, write_obman(root, "train", n=2)


def test_pairs_joints_and_flip(obman_root, tmp_path):
    root, truth = obman_root
    ds = O.ObMan(root, "train", cache_dir=tmp_path, out_size=64)
    assert len(ds) == 2
    for i in range(2):
        s = ds[i]
        t = truth["samples"][i]
        left = t["side"] == "left"
        assert s["was_flipped"] == float(left) and s["has_pair"] == 1 and s["is_hand_object"] == 1 and s["has_mano"] == 0
        np.testing.assert_allclose(s["joints3d"].numpy(), t["xyz"] * (FLIP if left else 1), atol=1e-6)
        assert assert_projection_consistent(s, atol=2e-3) == 21  # stored coords_2d agree with K @ coords_3d
        np.testing.assert_allclose(dot_centroid(s["image"]), s["joints2d"][8].numpy(), atol=1.0)
        np.testing.assert_allclose(dot_centroid(s["image_hand_only"]), s["joints2d"][8].numpy(), atol=1.0)


def test_masks_and_occlusion(obman_root, tmp_path):
    root, truth = obman_root
    ds = O.ObMan(root, "train", cache_dir=tmp_path, out_size=64)
    for i in range(2):
        s = ds[i]
        t = truth["samples"][i]
        assert s["has_mask"] == s["has_mask_full"] == s["has_object_mask"] == 1
        assert s["occlusion"].item() == pytest.approx(t["occlusion"], abs=1e-6)
        assert 0.05 < t["occlusion"] < 0.95
        vis, full, obj = (s[k].numpy().astype(bool) for k in ("hand_mask", "hand_mask_full", "object_mask"))
        assert (vis <= full).all() and not (vis & obj).any()
        assert ((full & ~vis) <= obj).all()  # the hidden hand part is behind the object
        k = float(s["K"][0, 0]) / O.K_OBMAN[0, 0]
        assert full.sum() == pytest.approx(t["full"].sum() * k * k, rel=0.1)
        assert vis.sum() == pytest.approx(t["visible"].sum() * k * k, rel=0.1)


def test_left_flip_mirrors_masks_too(obman_root, tmp_path):
    root, _ = obman_root
    a = O.ObMan(root, "train", cache_dir=tmp_path, out_size=64, flip_left=False)[1]
    b = O.ObMan(root, "train", cache_dir=tmp_path, out_size=64)[1]
    assert a["was_flipped"] == 0 and b["was_flipped"] == 1
    for key in ("hand_mask", "hand_mask_full", "object_mask"):
        np.testing.assert_array_equal(b[key].numpy(), a[key].numpy()[:, ::-1])
    np.testing.assert_allclose(b["image_hand_only"].numpy(), a["image_hand_only"].numpy()[:, :, ::-1], atol=1e-6)


def test_options_and_missing_pairs(tmp_path):
    root = tmp_path / "ob"
    write_obman(root, "val", n=2)
    with pytest.raises(ConfigError):
        O.ObMan(root, "val", K=np.eye(2))
    with pytest.raises(ConfigError, match="known: test, train, val"):
        O.ObMan(root, "training")
    write_rgb(root / "val/rgb_hand/00000001.jpg", np.zeros((128, 128, 3), np.uint8))
    ds = O.ObMan(root, "val", cache_dir=tmp_path / "c")
    with pytest.raises(DataFileError, match="00000001.jpg: size 128x128 differs"):
        ds[1]
    shutil.rmtree(root / "val/rgb_hand")
    s = O.ObMan(root, "val", cache_dir=tmp_path / "c")[0]
    assert s["has_pair"] == 0 and (s["image_hand_only"] == 0).all()


def test_malformed_meta_and_empty(tmp_path):
    root = tmp_path / "ob"
    write_obman(root, "test", n=3)
    meta_path = root / "test/meta/00000001.pkl"
    write_pickle(meta_path, {"coords_2d": np.zeros((21, 2)), "coords_3d": np.zeros((21, 3))})
    with pytest.raises(DataFileError, match=r"missing keys \['side'\]") as e:
        O.ObMan(root, "test", cache_dir=tmp_path / "c")
    assert e.value.path == meta_path
    lenient = O.ObMan(root, "test", cache_dir=tmp_path / "c", strict=False)
    assert len(lenient) == 2 and [lenient.record(i).frame for i in range(2)] == [0, 2]
    write_pickle(meta_path, {"coords_2d": np.zeros((21, 2)), "coords_3d": np.zeros((21, 3)), "side": "both"})
    with pytest.raises(DataFileError, match="side must be"):
        O.ObMan(root, "test", cache_dir=tmp_path / "c")
    write_pickle(meta_path, {"coords_2d": np.zeros((20, 2)), "coords_3d": np.zeros((21, 3)), "side": "left"})
    with pytest.raises(DataFileError, match=r"coords_2d: expected shape \(21, 2\)"):
        O.ObMan(root, "test", cache_dir=tmp_path / "c")
    for p in (root / "test/meta").iterdir():
        p.unlink()
    with pytest.raises(DataFileError, match="no obman samples found"):
        O.ObMan(root, "test", cache_dir=tmp_path / "c")
    with pytest.raises(DataFileError, match="split folder not found"):
        O.ObMan(root, "train")
