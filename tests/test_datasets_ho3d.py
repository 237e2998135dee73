"""HO-3D loader: latin1 meta pickles in OpenGL coordinates, MANO conversion, evaluation split, seg, depth."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from fixtures_datasets import assert_projection_consistent, dot_centroid, write_ho3d, write_pickle

from hoi_adapt.data.datasets import ho3d as H
from hoi_adapt.data.datasets.base import OPENGL_TO_OPENCV as F
from hoi_adapt.utils.errors import ConfigError, DataFileError


@pytest.fixture(scope="module")
def ho3d_v2(tmp_path_factory):
    root = tmp_path_factory.mktemp("ho3d")
    return root, write_ho3d(root, "v2")


def key(ds, i):
    return str(ds._index["sequence"][i]), str(ds._index["fid"][i])


def test_train_joints_and_skipped_frame(ho3d_v2, tmp_path):
    root, truth = ho3d_v2
    ds = H.HO3D(root, "train", cache_dir=tmp_path, out_size=64)
    assert ds.version == "v2" and len(ds) == 3
    assert ("MC1", "0001") not in [key(ds, i) for i in range(len(ds))]  # objRot is None -> skipped
    for i in range(len(ds)):
        s = ds[i]
        t = truth["train"][key(ds, i)]
        assert s["was_flipped"] == 0 and s["is_hand_object"] == 1 and s["joints3d_valid"].all()
        assert s["frame"] == int(key(ds, i)[1]) and s["sequence"] == key(ds, i)[0]
        np.testing.assert_allclose(s["joints3d"].numpy(), t["xyz"], atol=1e-6)  # OpenCV frame, OpenPose order
        assert (s["joints3d"][:, 2] > 0).all()
        assert assert_projection_consistent(s, atol=2e-3) == 21
        np.testing.assert_allclose(dot_centroid(s["image"]), s["joints2d"][8].numpy(), atol=1.0)


def test_mano_opengl_to_opencv_is_exact(ho3d_v2, tmp_path):
    root, truth = ho3d_v2
    ds = H.HO3D(root, "train", cache_dir=tmp_path)
    rng = np.random.default_rng(0)
    for i in range(len(ds)):
        s = ds[i]
        meta = truth["train"][key(ds, i)]["meta"]
        assert s["has_mano"] == 1
        R_gl = cv2.Rodrigues(meta["handPose"][:3])[0]
        R_cv = cv2.Rodrigues(s["mano_pose"][:3].numpy().astype(np.float64))[0]
        np.testing.assert_allclose(R_cv, F @ R_gl, atol=1e-5)
        np.testing.assert_allclose(s["mano_pose"][3:].numpy(), meta["handPose"][3:], atol=1e-6)
        np.testing.assert_allclose(s["mano_betas"].numpy(), meta["handBeta"], atol=1e-6)
        # any rest-pose point v moved rigidly about J0 = wrist - transl must land on F @ (its OpenGL position)
        t_gl, t_cv = meta["handTrans"], s["mano_transl"].numpy().astype(np.float64)
        j0 = meta["handJoints3D"][0] - t_gl
        v = rng.normal(0, 0.1, (5, 3))
        gl = (v - j0) @ R_gl.T + j0 + t_gl
        np.testing.assert_allclose((v - j0) @ R_cv.T + j0 + t_cv, gl @ F.T, atol=1e-5)


def test_segmentation_masks(ho3d_v2, tmp_path):
    root, truth = ho3d_v2
    ds = H.HO3D(root, "train", cache_dir=tmp_path, out_size=64)
    h, w = 48, 64
    rec = ds.record(0)
    m = ds._masks(rec, h, w)
    from hoi_adapt.data.crop import resize_nearest

    hand = resize_nearest(m["hand_mask"], h, w)
    obj = resize_nearest(m["object_mask"], h, w)
    assert hand[: h // 2].all() and not hand[h // 2:].any()  # blue channel, stored at half resolution
    assert obj[h // 2:, : w // 2].all() and obj.sum() == (h // 2) * (w // 2)
    s = ds[0]
    assert s["has_mask"] == 1 and s["has_object_mask"] == 1 and s["has_mask_full"] == 0
    off = H.HO3D(root, "train", cache_dir=tmp_path, use_seg=False)[0]
    assert off["has_mask"] == 0 and off["has_object_mask"] == 0
    with pytest.raises(ConfigError):
        H.HO3D(root, "train", seg_hand_channel="x")


def test_depth_decoding(ho3d_v2):
    root, truth = ho3d_v2
    depth = H.read_ho3d_depth(root / "train/ABF10/depth/0001.png")
    np.testing.assert_allclose(depth, truth["train"][("ABF10", "0001")]["depth"], rtol=1e-6)


def test_evaluation_split_root_only_and_bbox_crop(ho3d_v2, tmp_path):
    root, truth = ho3d_v2
    ds = H.HO3D(root, "evaluation", cache_dir=tmp_path, out_size=64)
    assert len(ds) == 2
    for i in range(2):
        s = ds[i]
        t = truth["evaluation"][key(ds, i)]
        valid = s["joints3d_valid"].numpy()
        assert valid[0] == 1 and valid[1:].sum() == 0 and s["joints2d_valid"].sum() == 1
        np.testing.assert_allclose(s["joints3d"][0].numpy(), t["root"], atol=1e-6)
        assert (s["joints3d"][1:] == 0).all() and s["has_mano"] == 0 and s["has_mask"] == 0
        # the crop is the hand box scaled by crop_scale: its centre maps to the crop centre
        A = s["K"].numpy().astype(np.float64) @ np.linalg.inv(t["K"])
        x1, y1, x2, y2 = t["bbox"]
        np.testing.assert_allclose(A[:2] @ [(x1 + x2) / 2, (y1 + y2) / 2, 1], [31.5, 31.5], atol=1e-3)
        np.testing.assert_allclose(A[0, 0], 64 / (1.5 * max(x2 - x1, y2 - y1)), rtol=1e-5)
        k = A[0, 0]
        dot = s["joints2d"][0].numpy() + k * (np.round(t["uv_root"]) - t["uv_root"])
        np.testing.assert_allclose(dot_centroid(s["image"]), dot, atol=1.0)


def test_v3_jpg_autodetect(tmp_path):
    root = tmp_path / "v3"
    write_ho3d(root, "v3")
    ds = H.HO3D(root, "train", cache_dir=tmp_path / "c")
    assert ds.version == "v3" and ds.record(0).image.suffix == ".jpg"
    s = ds[0]
    np.testing.assert_allclose(dot_centroid(s["image"]), s["joints2d"][8].numpy(), atol=1.2)
    with pytest.raises(DataFileError, match=r"0000.png"):
        H.HO3D(root, "train", cache_dir=tmp_path / "c", version="v2")[0]


def test_malformed(tmp_path):
    root = tmp_path / "ho"
    truth = write_ho3d(root, "v2")
    (root / "train.txt").write_text("ABF10/0000\nABF10-0001\n")
    with pytest.raises(DataFileError, match=r"train.txt: line 2: expected 'SEQUENCE/frame'"):
        H.HO3D(root, "train", cache_dir=tmp_path / "c")
    (root / "train.txt").write_text("ABF10/0000\nABF10/0001\nMC1/0000\n")
    meta = dict(truth["train"][("ABF10", "0001")]["meta"])
    del meta["camMat"]
    write_pickle(root / "train/ABF10/meta/0001.pkl", meta)
    with pytest.raises(DataFileError, match="missing key 'camMat'") as e:
        H.HO3D(root, "train", cache_dir=tmp_path / "c")
    assert e.value.path == root / "train/ABF10/meta/0001.pkl"
    lenient = H.HO3D(root, "train", cache_dir=tmp_path / "c", strict=False)
    assert len(lenient) == 2 and len(lenient.problems) == 1
    meta["camMat"] = np.eye(3)
    meta["handJoints3D"] = np.zeros((20, 3))
    write_pickle(root / "train/ABF10/meta/0001.pkl", meta)
    with pytest.raises(DataFileError, match=r"handJoints3D: expected shape \(21, 3\) or \(3,\)"):
        H.HO3D(root, "train", cache_dir=tmp_path / "c")
    meta["handJoints3D"] = truth["train"][("ABF10", "0001")]["meta"]["handJoints3D"]
    meta["handPose"] = [[0.1, 0.2], [0.3]]  # ragged
    write_pickle(root / "train/ABF10/meta/0001.pkl", meta)
    with pytest.raises(DataFileError, match="handPose: not a numeric array"):
        H.HO3D(root, "train", cache_dir=tmp_path / "c")
    meta["handPose"] = np.zeros(48)
    meta["camMat"] = np.full((3, 3), np.nan)
    write_pickle(root / "train/ABF10/meta/0001.pkl", meta)
    ds = H.HO3D(root, "train", cache_dir=tmp_path / "c")
    with pytest.raises(DataFileError, match="0001.png: the intrinsics of this image are not a finite"):
        ds[1]
    (root / "train/ABF10/meta/0001.pkl").write_bytes(b"\x80\x02}q\x00(X")  # truncated pickle
    with pytest.raises(DataFileError, match="0001.pkl: .*(malformed|readable) pickle"):
        H.HO3D(root, "train", cache_dir=tmp_path / "c")
    (root / "train/ABF10/rgb/0000.png").unlink()
    with pytest.raises(DataFileError, match="first listed frame has no rgb image"):
        H.HO3D(root, "train", cache_dir=tmp_path / "c")
    (root / "evaluation.txt").unlink()
    with pytest.raises(DataFileError, match="evaluation.txt: split file not found"):
        H.HO3D(root, "test")
