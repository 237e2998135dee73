"""Dexter+Object and EgoDexter loaders on fabricated copies in the exact text formats."""
from __future__ import annotations

import numpy as np
import pytest
from fixtures_datasets import (
    assert_invalid_zeroed,
    assert_projection_consistent,
    dot_centroid,
    write_dexter_object,
    write_egodexter,
)

from hoi_adapt.data.datasets import dexter_object as D
from hoi_adapt.data.datasets import egodexter as ED
from hoi_adapt.data.registry import build_dataset
from hoi_adapt.data.schema import validate_sample
from hoi_adapt.hand.joint_maps import OPENPOSE_TIPS
from hoi_adapt.utils.errors import ConfigError, DataFileError

TIPS = list(OPENPOSE_TIPS)


@pytest.fixture(scope="module")
def do_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("do")
    return root, write_dexter_object(root)


@pytest.fixture(scope="module")
def ed_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("ed")
    return root, write_egodexter(root)


def full_image_2d(ds, i):
    rec = ds.record(i)
    j3, v3 = ds.convert_joints3d(rec)
    return ds.convert_joints2d(rec, j3, v3)


def frame_of(ds, i):
    return str(ds._index["sequence"][i]), int(ds._index["frame"][i])


# ------------------------------------------------------------------------------------ Dexter+Object
def test_do_samples_match_hand_computation(do_root, tmp_path):
    root, truth = do_root
    ds = D.DexterObject(root, cache_dir=tmp_path, out_size=64, flip_left=False)
    assert len(ds) == 12
    for i in range(len(ds)):
        s = ds[i]
        t = truth["frames"][frame_of(ds, i)]
        validate_sample(s)
        assert s["dataset"] == "dexter_object" and s["was_flipped"] == 0 and s["is_hand_object"] == 1
        np.testing.assert_array_equal(s["joints3d_valid"].numpy()[TIPS], t["valid"])
        assert s["joints3d_valid"].sum() == t["valid"].sum()  # only fingertips, never other joints
        np.testing.assert_allclose(s["joints3d"].numpy()[TIPS][t["valid"]], t["xyz"][t["valid"]], atol=2e-6)
        assert_invalid_zeroed(s)
        assert assert_projection_consistent(s, atol=2e-3) == t["valid"].sum()
        np.testing.assert_allclose(dot_centroid(s["image"]), s["joints2d"][8].numpy(), atol=1.0)


def test_do_projection_is_minimal_hand_formula(do_root, tmp_path):
    """uv = K_c @ E @ [-x, -y, z, 1] on the raw mm numbers of the annotation file (datasets.md §3)."""
    root, _ = do_root
    ds = D.DexterObject(root, cache_dir=tmp_path, sequences=("Pinch",))
    line = (root / "data/Pinch/annotations/Pinch3D.txt").read_text().splitlines()[1]
    raw = np.array([[float(v) for v in e.split(",")] for e in line.split(";")[:5]])
    hom = np.concatenate([raw * [-1, -1, 1], np.ones((5, 1))], axis=1)
    p = hom @ (D.K_COLOR @ D.EXTR_DEPTH_TO_COLOR).T
    uv, valid = full_image_2d(ds, 1)
    np.testing.assert_allclose(uv[TIPS], p[:, :2] / p[:, 2:], atol=1e-9)
    assert valid[TIPS].all() and valid.sum() == 5
    ds_raw = D.DexterObject(root, cache_dir=tmp_path, sequences=("Pinch",), negate_xy=False)
    assert np.abs(full_image_2d(ds_raw, 1)[0][TIPS] - uv[TIPS]).max() > 50  # the option really changes the projection


def test_do_left_hand_flip_is_a_mirror(do_root, tmp_path):
    root, _ = do_root
    a = D.DexterObject(root, cache_dir=tmp_path, sequences=("Rigid",), flip_left=False, out_size=48)
    b = D.DexterObject(root, cache_dir=tmp_path, sequences=("Rigid",), out_size=48)
    sa, sb = a[0], b[0]
    assert sb["was_flipped"] == 1
    np.testing.assert_allclose(sb["image"].numpy(), sa["image"].numpy()[:, :, ::-1], atol=1e-6)
    np.testing.assert_allclose(sb["joints3d"][:, 0], -sa["joints3d"][:, 0])
    np.testing.assert_allclose(sb["joints3d"][:, 1:], sa["joints3d"][:, 1:])
    v = sa["joints2d_valid"].bool()
    np.testing.assert_allclose(sb["joints2d"][v, 0], 47 - sa["joints2d"][v, 0], atol=1e-4)
    np.testing.assert_allclose(sb["K"][0, 2], 47 - sa["K"][0, 2], atol=1e-4)
    assert_projection_consistent(sb, atol=2e-3)
    np.testing.assert_allclose(dot_centroid(sb["image"]), sb["joints2d"][8].numpy(), atol=1.0)


def test_do_crop_scale_default_covers_more_than_tips(do_root, tmp_path):
    root, truth = do_root
    ds = D.DexterObject(root, cache_dir=tmp_path, sequences=("Grasp2",), flip_left=False, out_size=64)
    assert ds.crop_scale == D.DexterObject.DEFAULT_CROP_SCALE == 2.2
    uv = ds[0]["joints2d"].numpy()[TIPS]
    extent = (uv.max(0) - uv.min(0)).max()
    assert extent == pytest.approx(64 / 2.2, rel=1e-4)  # tips span 1/2.2 of the crop


def test_do_cleaned_labels(do_root, tmp_path):
    root, _ = do_root
    ann = root / "data/Grasp2/annotations"
    lines = (ann / "Grasp23D.txt").read_text().splitlines()
    (ann / "my_Grasp23D.txt").write_text("\n".join([lines[0].replace("32001", "1"), lines[0]]) + "\n")
    try:
        orig = D.DexterObject(root, cache_dir=tmp_path, sequences=("Grasp2",), flip_left=False)
        clean = D.DexterObject(root, cache_dir=tmp_path, sequences=("Grasp2",), flip_left=False, use_cleaned=True)
        auto = D.DexterObject(root, cache_dir=tmp_path, sequences=("Grasp2",), flip_left=False, use_cleaned="auto")
        np.testing.assert_allclose(clean[1]["joints3d"], orig[0]["joints3d"])  # cleaned line 2 = original line 1
        np.testing.assert_allclose(auto[1]["joints3d"], orig[0]["joints3d"])
        with pytest.raises(DataFileError, match="my_Grasp13D.txt"):
            D.DexterObject(root, cache_dir=tmp_path, sequences=("Grasp1",), use_cleaned=True)
        assert len(D.DexterObject(root, cache_dir=tmp_path, sequences=("Grasp1",), use_cleaned="auto")) == 2
    finally:
        (ann / "my_Grasp23D.txt").unlink()


@pytest.mark.filterwarnings("ignore:dexter_object.*colour images")
def test_do_malformed_and_missing(tmp_path):
    root = tmp_path / "do"
    write_dexter_object(root)
    ann = root / "data/Occlusion/annotations/Occlusion3D.txt"
    lines = ann.read_text().splitlines()
    ann.write_text(lines[0] + "\n1,2,3;oops,2,3;1,2,3;1,2,3;1,2,3\n")
    with pytest.raises(DataFileError, match=r"Occlusion3D.txt: line 2: entry 2 .*not numeric"):
        D.DexterObject(root, cache_dir=tmp_path / "c")
    lenient = D.DexterObject(root, cache_dir=tmp_path / "c", strict=False)
    assert len(lenient.problems) == 1 and "line 2" in lenient.problems[0]
    i = [k for k in range(len(lenient)) if frame_of(lenient, k) == ("Occlusion", 1)][0]
    assert lenient[i]["has_3d"] == 0 and lenient[i]["joints3d_valid"].sum() == 0
    with pytest.raises(DataFileError, match="root folder not found"):
        D.DexterObject(tmp_path / "missing")
    with pytest.raises(DataFileError, match="parent folder"):
        D.DexterObject(root / "data")
    with pytest.raises(ConfigError, match="Grasp1"):
        D.DexterObject(root, sequences=("Nope",))
    for f in (root / "data/Rigid/color").iterdir():
        f.unlink()
    with pytest.raises(DataFileError, match="no dexter_object samples"):
        D.DexterObject(root, cache_dir=tmp_path / "c", sequences=("Rigid",))
    with pytest.warns(UserWarning, match="0 colour images but 2 annotation lines"):
        assert len(D.DexterObject(root, cache_dir=tmp_path / "c", sequences=("Rigid", "Pinch"))) == 2


def test_do_truncated_image(tmp_path):
    root = tmp_path / "do"
    write_dexter_object(root)
    img = root / "data/Pinch/color/00001.png"
    img.write_bytes(img.read_bytes()[:100])
    ds = D.DexterObject(root, cache_dir=tmp_path / "c", sequences=("Pinch",))
    ds[0]
    with pytest.raises(DataFileError, match="00001.png"):
        ds[1]


# ---------------------------------------------------------------------------------------- EgoDexter
def test_ed_color_samples(ed_root, tmp_path):
    root, truth = ed_root
    ds = ED.EgoDexter(root, cache_dir=tmp_path, out_size=64, flip_left=False)
    assert len(ds) == 12
    for i in range(len(ds)):
        s = ds[i]
        t = truth["frames"][frame_of(ds, i)]
        np.testing.assert_array_equal(s["joints3d_valid"].numpy()[TIPS], t["valid3"])
        assert s["joints3d_valid"].sum() == t["valid3"].sum()
        np.testing.assert_allclose(s["joints3d"].numpy()[TIPS][t["valid3"]], t["xyz"][t["valid3"]], atol=2e-6)
        assert_invalid_zeroed(s)
        assert_projection_consistent(s, atol=2e-3)
        if t["valid3"].any():
            np.testing.assert_allclose(dot_centroid(s["image"]), s["joints2d"][8].numpy(), atol=1.0)
        else:  # the short line: a whole frame without labels, cropped to the full image
            assert s["has_3d"] == 0 and s["has_2d"] == 0
            np.testing.assert_allclose(s["K"][0, 0], ED.K_COLOR[0, 0] * 64 / truth["size"][0], rtol=1e-6)


def test_ed_extrinsics_without_sign_flip(ed_root, tmp_path):
    root, _ = ed_root
    ds = ED.EgoDexter(root, cache_dir=tmp_path, sequences=("Fruits",))
    line = (root / "data/Fruits/annotation.txt_3D.txt").read_text().splitlines()[0]
    raw = np.array([[float(v) for v in e.split(",")] for e in line.split(";")[:5]])
    p = np.concatenate([raw, np.ones((5, 1))], axis=1) @ (ED.K_COLOR @ ED.EXTR_DEPTH_TO_COLOR).T
    np.testing.assert_allclose(full_image_2d(ds, 0)[0][TIPS], p[:, :2] / p[:, 2:], atol=1e-9)


def test_ed_color_on_depth(ed_root, tmp_path):
    root, truth = ed_root
    ds = ED.EgoDexter(root, cache_dir=tmp_path, image_source="color_on_depth", flip_left=False, out_size=64)
    for i in range(len(ds)):
        s = ds[i]
        t = truth["frames"][frame_of(ds, i)]
        np.testing.assert_array_equal(s["joints2d_valid"].numpy()[TIPS], t["valid2"])  # 2D from annotation.txt
        np.testing.assert_allclose(s["joints3d"].numpy()[TIPS][t["valid3"]], t["xyz_depth"][t["valid3"]], atol=2e-6)
        assert_projection_consistent(s, atol=5e-3)
        if t["valid2"][1]:  # the dot sits at the pixel nearest the (non-integer) depth projection
            k = float(s["K"][0, 0]) / ED.K_DEPTH[0, 0]
            dot = s["joints2d"][8].numpy() + k * (np.round(t["uv_depth"][1]) - t["uv_depth"][1])
            np.testing.assert_allclose(dot_centroid(s["image"]), dot, atol=1.0)
    with pytest.raises(ConfigError):
        ED.EgoDexter(root, image_source="depth")


def test_ed_handedness_is_configurable(ed_root, tmp_path):
    root, _ = ed_root
    flipped = build_dataset("egodexter", root, "test", cache_dir=tmp_path, sequences=("Kitchen",))
    kept = build_dataset("egodexter", root, "test", cache_dir=tmp_path, sequences=("Kitchen",), flip_left=False)
    assert flipped[0]["was_flipped"] == 1 and kept[0]["was_flipped"] == 0
    np.testing.assert_allclose(flipped[0]["joints3d"][:, 0], -kept[0]["joints3d"][:, 0])
    np.testing.assert_allclose(dot_centroid(flipped[0]["image"]), flipped[0]["joints2d"][8].numpy(), atol=1.0)


def test_ed_malformed(tmp_path):
    root = tmp_path / "ed"
    write_egodexter(root)
    p = root / "data/Rotunda/annotation.txt"
    lines = p.read_text().splitlines()
    p.write_text("\n".join([lines[0], "1,2;3;4,5;6,7;8,9;", lines[2]]) + "\n")
    with pytest.raises(DataFileError, match=r"Rotunda/annotation.txt: line 2: entry 2"):
        ED.EgoDexter(root, cache_dir=tmp_path / "c")
    (root / "data/Rotunda/annotation.txt_3D.txt").unlink()
    with pytest.raises(DataFileError, match="annotation.txt_3D.txt"):
        ED.EgoDexter(root, cache_dir=tmp_path / "c", sequences=("Rotunda",))
