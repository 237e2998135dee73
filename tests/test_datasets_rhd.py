"""RHD loader: dict-of-dicts pickle with 42 joints, hand choice, label masks, mirroring."""
from __future__ import annotations

import pickle

import cv2
import numpy as np
import pytest
from fixtures_datasets import assert_projection_consistent, dot_centroid, write_pickle, write_rhd

from hoi_adapt.data.datasets import rhd as R
from hoi_adapt.utils.errors import ConfigError, DataFileError

FLIP = np.array([-1.0, 1.0, 1.0])


@pytest.fixture(scope="module")
def rhd_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("rhd")
    return root, write_rhd(root, "training"), write_rhd(root, "evaluation", size=96)


def test_visible_hand_choice_and_values(rhd_root, tmp_path):
    root, truth, _ = rhd_root
    ds = R.RHD(root, "train", cache_dir=tmp_path, out_size=64)
    assert len(ds) == 3
    for i in range(3):
        s = ds[i]
        t = truth["samples"][i]
        assert s["was_flipped"] == float(t["left"]) and s["frame"] == i and s["sequence"] == "training"
        np.testing.assert_allclose(s["joints3d"].numpy(), t["xyz"] * (FLIP if t["left"] else 1), atol=1e-6)
        assert s["joints3d_valid"].all() and s["joints2d_valid"].all()
        assert assert_projection_consistent(s, atol=2e-3) == 21  # the stored uv agree with K @ xyz
        np.testing.assert_allclose(dot_centroid(s["image"]), s["joints2d"][8].numpy(), atol=1.0)
        # the visible mask is the chosen hand's label range only
        labels = t["labels"]
        chosen = (labels >= 2) & (labels <= 17) if t["left"] else (labels >= 18) & (labels <= 33)
        k = float(s["K"][0, 0]) / truth["K"][0, 0]
        assert s["has_mask"] == 1
        assert s["hand_mask"].sum().item() == pytest.approx(chosen.sum() * k * k, rel=0.1)
        uv = np.round(s["joints2d"].numpy()).astype(int)
        inside = (uv >= 0).all(1) & (uv < 64).all(1)
        assert s["hand_mask"].numpy()[uv[inside, 1], uv[inside, 0]].all()


def test_mask_hand_choice(rhd_root, tmp_path):
    root, truth, _ = rhd_root
    by_vis = R.RHD(root, "train", cache_dir=tmp_path)
    by_mask = R.RHD(root, "train", cache_dir=tmp_path, hand_select="mask")
    assert by_vis.record(2).is_left and not by_mask.record(2).is_left  # fixture: left more visible, right larger
    assert [by_mask.record(i).is_left for i in range(3)] == [truth["samples"][i]["mask_left"] for i in range(3)]
    with pytest.raises(ConfigError):
        R.RHD(root, "train", hand_select="bigger")


def test_evaluation_split_and_no_flip(rhd_root, tmp_path):
    root, _, truth = rhd_root
    ds = R.RHD(root, "evaluation", cache_dir=tmp_path, flip_left=False, out_size=32)
    s = ds[0]
    assert s["was_flipped"] == 0 and s["image"].shape == (3, 32, 32)
    np.testing.assert_allclose(s["joints3d"].numpy(), truth["samples"][0]["xyz"], atol=1e-6)


def test_depth_decoding(tmp_path):
    code = np.array([[0, 65535], [256 * 3 + 7, 1000]])
    bgr = np.zeros((2, 2, 3), np.uint8)
    bgr[:, :, 2], bgr[:, :, 1] = code // 256, code % 256  # R = high byte, G = low byte
    cv2.imwrite(str(tmp_path / "d.png"), bgr)
    np.testing.assert_allclose(R.read_rhd_depth(tmp_path / "d.png"), code / 65535 * 5.0, rtol=1e-6)


def _broken_copy(tmp_path, mutate):
    root = tmp_path / "rhd"
    write_rhd(root, "training", size=64)
    path = root / "training/anno_training.pickle"
    with open(path, "rb") as f:
        data = pickle.load(f, encoding="latin1")
    data = mutate(data)
    write_pickle(path, data)
    return root, path


@pytest.mark.parametrize("mutate,msg", [
    (lambda d: {**d, 1: {k: v for k, v in d[1].items() if k != "K"}}, r"sample 1: missing keys \['K'\]"),
    (lambda d: {**d, 2: {**d[2], "xyz": d[2]["xyz"][:21]}}, r"sample 2 xyz: expected shape \(42, 3\)"),
    (lambda d: {**d, "x": d[0]}, "keys must be int"),
])
def test_malformed_samples(tmp_path, mutate, msg):
    root, path = _broken_copy(tmp_path, mutate)
    with pytest.raises(DataFileError, match=msg) as e:
        R.RHD(root, "train", cache_dir=tmp_path / "c")
    assert e.value.path == path
    lenient = R.RHD(root, "train", cache_dir=tmp_path / "c", strict=False)
    assert len(lenient.problems) == 1 and len(lenient) in (2, 3)


def test_not_a_dict_or_unsafe_pickle(tmp_path):
    root, path = _broken_copy(tmp_path, lambda d: [d[0]])
    with pytest.raises(DataFileError, match="expected a dict"):
        R.RHD(root, "train", cache_dir=tmp_path / "c")
    path.write_bytes(b"cos\nsystem\n(S'echo hi'\ntR.")
    with pytest.raises(DataFileError, match="unsafe or malformed pickle"):
        R.RHD(root, "train", cache_dir=tmp_path / "c")
    with pytest.raises(DataFileError, match="split folder not found"):
        R.RHD(root, "test")
