"""FreiHAND loader: JSON lists, 4 image versions (id = idx + N*k, N from the JSON), masks, MANO."""
from __future__ import annotations

import json

import numpy as np
import pytest
from fixtures_datasets import assert_projection_consistent, dot_centroid, write_freihand

from hoi_adapt.data.datasets import freihand as FH
from hoi_adapt.utils.errors import ConfigError, DataFileError


@pytest.fixture(scope="module")
def fh_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("fh")
    return root, write_freihand(root, n=3, size=64, eval_labels=False)


def test_versions_ids_values_and_masks(fh_root, tmp_path):
    root, truth = fh_root
    ds = FH.FreiHAND(root, "train", cache_dir=tmp_path, out_size=48)
    assert ds.num_unique == 3 and len(ds) == 12
    for i in range(len(ds)):
        uid, k = i % 3, i // 3
        rec = ds.record(i)
        assert rec.image.name == f"{uid + 3 * k:08d}.jpg" and rec.frame == uid
        assert rec.sequence == f"training/{FH.VERSIONS[k]}"
        s = ds[i]
        t = truth["samples"][uid]
        assert s["was_flipped"] == 0 and s["has_3d"] == 1 and s["has_mano"] == 0 and s["is_hand_object"] == 0
        np.testing.assert_allclose(s["joints3d"].numpy(), t["xyz"], atol=1e-6)
        assert assert_projection_consistent(s, atol=2e-3) == 21
        np.testing.assert_allclose(dot_centroid(s["image"]), s["joints2d"][12].numpy(), atol=1.2)  # JPEG
        assert s["has_mask"] == 1
        scale = float(s["K"][0, 0]) / t["K"][0, 0]
        assert s["hand_mask"].sum().item() == pytest.approx(t["mask"].sum() * scale ** 2, rel=0.15)
        uv = np.round(s["joints2d"].numpy()).astype(int)
        assert s["hand_mask"].numpy()[uv[:, 1].clip(0, 47), uv[:, 0].clip(0, 47)].mean() > 0.9


def test_version_subset_and_missing_versions(fh_root, tmp_path):
    root, _ = fh_root
    ds = FH.FreiHAND(root, "train", cache_dir=tmp_path, versions=("gs", "auto"))
    assert len(ds) == 6 and ds.record(4).image.name == f"{1 + 9:08d}.jpg"
    with pytest.raises(ConfigError):
        FH.FreiHAND(root, "train", versions=("gs", "nope"))
    with pytest.raises(ConfigError, match="only has the 'gs'"):
        FH.FreiHAND(root, "test", versions=("hom",))


def test_missing_version_images_name_the_fix(tmp_path):
    root = tmp_path / "fh"
    write_freihand(root, n=2)
    (root / "training/rgb/00000007.jpg").unlink()  # last 'auto' image (1 + 2*3)
    with pytest.raises(DataFileError, match="version 'auto'") as e:
        FH.FreiHAND(root, "train", cache_dir=tmp_path / "c")
    assert "versions=" in str(e.value)
    assert len(FH.FreiHAND(root, "train", cache_dir=tmp_path / "c", versions=("gs", "hom", "sample"))) == 6


def test_mano_needs_hands_mean_and_root_joint(fh_root, tmp_path):
    root, truth = fh_root
    hands_mean = np.linspace(0.5, -0.5, 45)

    def j0(betas):
        return np.array([0.01, -0.02, 0.03]) + 0.001 * betas[:3]

    only_mean = FH.FreiHAND(root, "train", cache_dir=tmp_path, hands_mean=hands_mean)
    assert only_mean[0]["has_mano"] == 0
    ds = FH.FreiHAND(root, "train", cache_dir=tmp_path, hands_mean=hands_mean, mano_root_joint=j0)
    s = ds[4]  # uid 1, version hom
    t = truth["samples"][1]
    assert s["has_mano"] == 1
    np.testing.assert_allclose(s["mano_pose"][:3].numpy(), t["theta"][:3], atol=1e-6)  # global unchanged
    np.testing.assert_allclose(s["mano_pose"][3:].numpy(), t["theta"][3:48] + hands_mean, atol=1e-6)
    np.testing.assert_allclose(s["mano_betas"].numpy(), t["theta"][48:58], atol=1e-6)
    np.testing.assert_allclose(s["mano_transl"].numpy(), t["xyz"][0] - j0(t["theta"][48:58]), atol=1e-6)
    with pytest.raises(ConfigError):
        FH.FreiHAND(root, "train", hands_mean=np.zeros(44))


def test_evaluation_split(tmp_path):
    root = tmp_path / "fh"
    write_freihand(root, n=2, n_eval=2, eval_labels=False)
    ds = FH.FreiHAND(root, "evaluation", cache_dir=tmp_path / "c", out_size=32)
    s = ds[1]
    assert len(ds) == 2 and s["has_3d"] == 0 and s["has_2d"] == 0 and s["has_mask"] == 0
    np.testing.assert_allclose(s["K"][0, 0].item(), 128.0 * 32 / 64, rtol=1e-6)  # whole 64-px image -> 32 px
    labelled = tmp_path / "fh_labelled"
    write_freihand(labelled, n=2, n_eval=2, eval_labels=True)
    s = FH.FreiHAND(labelled, "test", cache_dir=tmp_path / "c", out_size=32)[0]
    assert s["has_3d"] == 1 and s["joints3d_valid"].all()
    assert assert_projection_consistent(s, atol=2e-3) == 21
    (labelled / "evaluation_xyz.json").write_text(json.dumps(np.zeros((3, 21, 3)).tolist()))
    with pytest.raises(DataFileError, match="3 entries but evaluation_K.json has 2"):
        FH.FreiHAND(labelled, "test", cache_dir=tmp_path / "c")


@pytest.mark.parametrize("name,content,msg", [
    ("training_K.json", "[[[1,0,0],[0,1,0]]]", r"camera matrices: expected shape \(N, 3, 3\)"),
    ("training_xyz.json", json.dumps(np.zeros((2, 21, 3)).tolist()), "2 entries but training_K.json has 3"),
    ("training_mano.json", json.dumps(np.zeros((3, 1, 60)).tolist()), r"MANO parameters: expected shape \(N, 61\)"),
    ("training_K.json", "[[1, 2, 3]", "invalid JSON at line 1"),
    ("training_xyz.json", '[["a"]]', "not a numeric array"),
])
def test_malformed_json(tmp_path, name, content, msg):
    root = tmp_path / "fh"
    write_freihand(root, n=3)
    (root / name).write_text(content)
    with pytest.raises(DataFileError, match=msg) as e:
        FH.FreiHAND(root, "train", cache_dir=tmp_path / "c")
    assert e.value.path == root / name


def test_truncated_jpeg(tmp_path):
    root = tmp_path / "fh"
    write_freihand(root, n=2)
    p = root / "training/rgb/00000003.jpg"
    p.write_bytes(p.read_bytes()[:-200])
    ds = FH.FreiHAND(root, "train", cache_dir=tmp_path / "c")
    with pytest.raises(DataFileError, match="00000003.jpg.*truncated"):
        ds[3]
