"""STB loader: .mat labels in mm in the SK depth frame, palm/wrist root, both layouts, BB cameras."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.io
from fixtures_datasets import assert_projection_consistent, dot_centroid, write_stb
from scipy.spatial.transform import Rotation

from hoi_adapt.data.datasets import stb as S
from hoi_adapt.hand import joint_maps
from hoi_adapt.utils.errors import ConfigError, DataFileError

FLIP = np.array([-1.0, 1.0, 1.0])


@pytest.fixture(scope="module")
def stb_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("stb")
    return root, write_stb(root, with_bb=True)


def key(ds, i):
    return str(ds._index["sequence"][i]), int(ds._index["frame"][i])


def test_sk_depth_to_color_matches_hand_computation(stb_root, tmp_path):
    """X_colour = R^T (X_depth - T), R = Rodrigues(rot_vec) computed independently with scipy."""
    root, _ = stb_root
    para = scipy.io.loadmat(str(root / "labels/B1Random_SK.mat"))["handPara"]
    assert para.shape == (3, 21, 2)
    X_d = para[:, :, 1].T  # (21, 3) mm, STB order
    R = Rotation.from_rotvec(S.SK_ROT_VEC).as_matrix()
    expected = ((X_d - S.SK_T_MM) @ R) / 1000.0  # row form of R^T (p - T), metres
    ds = S.STB(root, "test", cache_dir=tmp_path, root_joint="palm", flip_left=False)
    i = [k for k in range(len(ds)) if key(ds, k) == ("B1Random", 1)][0]
    j3, v3 = ds.convert_joints3d(ds.record(i))
    np.testing.assert_allclose(j3, joint_maps.convert(expected, "stb", "openpose"), atol=1e-12)
    assert v3.all()


def test_palm_root_samples(stb_root, tmp_path):
    root, truth = stb_root
    ds = S.STB(root, "test", cache_dir=tmp_path, root_joint="palm", out_size=64)
    assert ds.root_is_palm and len(ds) == 4
    for i in range(len(ds)):
        s = ds[i]
        t = truth["frames"][key(ds, i)]
        assert s["was_flipped"] == 1 and s["joints3d_valid"].all() and s["has_mask"] == 0
        np.testing.assert_allclose(s["joints3d"].numpy(), t["xyz"] * FLIP, atol=1e-6)
        assert_projection_consistent(s, atol=2e-3)
        np.testing.assert_allclose(dot_centroid(s["image"]), s["joints2d"][8].numpy(), atol=1.0)


def test_wrist_root_uses_ge_formula(stb_root, tmp_path):
    root, truth = stb_root
    palm = S.STB(root, "test", cache_dir=tmp_path, root_joint="palm", flip_left=False)
    wrist = S.STB(root, "test", cache_dir=tmp_path, flip_left=False)
    assert not wrist.root_is_palm and palm.root_is_palm
    for i in range(len(wrist)):
        t = truth["frames"][key(wrist, i)]["xyz"]
        s = wrist[i]
        ring_mcp = t[13]  # OpenPose 13 = STB 5 (ring MCP)
        np.testing.assert_allclose(s["joints3d"][0].numpy(), ring_mcp + 2 * (t[0] - ring_mcp), atol=1e-6)
        np.testing.assert_allclose(s["joints3d"][1:].numpy(), palm[i]["joints3d"][1:].numpy(), atol=1e-7)
        assert_projection_consistent(s, atol=2e-3)  # the 2D root is the projected wrist, not the palm
    assert joint_maps.to_openpose_index("stb")[13] == 5


def test_other_layout_and_bb_cameras(tmp_path):
    root = tmp_path / "stb"
    truth = write_stb(root, sequences=("B1Counting", "B1Random"), layout="flat", with_bb=True)
    assert not (root / "images").exists() and (root / "B1Counting_SK.mat").is_file()
    ds = S.STB(root, "test", cache_dir=tmp_path / "c", camera="BB", root_joint="palm", flip_left=False, out_size=64)
    assert len(ds) == 8
    for i in range(len(ds)):
        s = ds[i]
        cam = str(ds._index["camera"][i])
        t = truth["frames"][(str(ds._index["sequence"][i]), int(ds._index["frame"][i]), "BB")]
        xyz = t["xyz_left"] if cam == "BB_left" else t["xyz_right"]
        np.testing.assert_allclose(s["joints3d"].numpy(), xyz, atol=1e-6)
        assert s["sequence"].endswith(cam)
        assert_projection_consistent(s, atol=2e-3)
        uv_dot = t["uv_left"][8] if cam == "BB_left" else np.round(t["uv_right"][8])
        k = float(s["K"][0, 0]) / S.K_BB[0, 0]
        expected = s["joints2d"][8].numpy() + k * (uv_dot - (t["uv_left"][8] if cam == "BB_left" else t["uv_right"][8]))
        np.testing.assert_allclose(dot_centroid(s["image"]), expected, atol=1.0)


def test_splits_and_options(stb_root, tmp_path):
    root, _ = stb_root
    with pytest.raises(DataFileError, match="B2Counting"):
        S.STB(root, "train", cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="known: .*test"):
        S.STB(root, "bogus")
    with pytest.raises(ConfigError, match="root_joint"):
        S.STB(root, "test", root_joint="elbow")
    with pytest.raises(ConfigError, match="camera"):
        S.STB(root, "test", camera="IR")
    assert len(S.STB(root, "evaluation", cache_dir=tmp_path, sequences=("B1Counting",))) == 2
    assert S.SPLIT_SEQUENCES["test"] == ("B1Counting", "B1Random") and len(S.SPLIT_SEQUENCES["train"]) == 10


@pytest.mark.parametrize("content,msg", [({"handPara": np.zeros((3, 20, 2))}, r"handPara: expected shape \(3, 21, N\)"),
                                         ({"other": np.zeros(3)}, "'handPara' missing"),
                                         (b"not a mat file", "cannot read .mat")])
def test_malformed_mat(tmp_path, content, msg):
    root = tmp_path / "stb"
    write_stb(root, sequences=("B1Counting", "B1Random"))
    target = root / "labels/B1Random_SK.mat"
    if isinstance(content, bytes):
        target.write_bytes(content)
    else:
        scipy.io.savemat(str(target), content)
    with pytest.raises(DataFileError, match=msg) as e:
        S.STB(root, "test", cache_dir=tmp_path / "c")
    assert e.value.path == target
