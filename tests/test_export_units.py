"""Export building blocks without a network: confidence terms, batch groups, deterministic npz, shard merging,
identity checks and the FreiHAND conversion."""
from __future__ import annotations

import io
import math
import zipfile

import numpy as np
import pytest
import torch

from hoi_adapt.data.formats import adapted as fmt
from hoi_adapt.export.freihand import bone_scale, freihand_mano
from hoi_adapt.export.module import make_groups, mask_iou, skeleton_agreement, to_uint8_images
from hoi_adapt.utils.errors import ConfigError, DataFileError
from hoi_adapt.utils.results import differences


def test_mask_iou_values():
    a = torch.zeros(3, 4, 4, dtype=torch.bool)
    b = torch.zeros(3, 4, 4, dtype=torch.bool)
    a[0, :2] = True          # 8 px
    b[0, 1:3] = True         # 8 px, 4 shared -> 4 / 12
    a[1] = b[1] = True       # identical -> 1
    iou = mask_iou(a, b)     # sample 2: both empty -> 0
    assert torch.allclose(iou, torch.tensor([4 / 12, 1.0, 0.0]))


def test_skeleton_agreement_is_one_for_equal_skeletons_and_exp_minus_one_at_tau():
    j = torch.rand(2, 21, 2) * 64
    shifted = j.clone()
    shifted[1] += torch.tensor([0.05 * 64 * 0.6, 0.05 * 64 * 0.8])  # every joint 5 % of the side away
    out = skeleton_agreement(j, shifted, 64)
    assert out[0] == 1.0 and math.isclose(float(out[1]), math.exp(-1.0), rel_tol=1e-5)
    assert float(skeleton_agreement(j, j + 100.0, 64)[0]) < 1e-10


def test_silhouette_equals_the_renderers_hand_coverage():
    from hoi_adapt.export.module import render_silhouette
    from hoi_adapt.hand.model import HandModel
    from hoi_adapt.hand.pose_sampler import base_orient
    from hoi_adapt.render.renderer import HandObjectRenderer

    hand = HandModel()
    g = torch.as_tensor(base_orient("right"), dtype=torch.float32)[None].repeat(2, 1, 1)
    pose = torch.zeros(2, 45)
    pose[1, :15] = 0.6  # curl some fingers
    verts = hand(g, pose, transl=torch.tensor([[0.0, 0.0, 0.45], [0.02, -0.01, 0.5]])).vertices
    K = torch.tensor([[120.0, 0.0, 31.5], [0.0, 120.0, 31.5], [0.0, 0.0, 1.0]]).expand(2, 3, 3)
    expected = HandObjectRenderer(faces_per_pixel=1)(verts, hand.faces, K, image_size=(64, 64)).hand_alpha > 0
    for tile in (None, 16):
        sil = render_silhouette(verts, hand.faces, K, (64, 64), tile_size=tile)
        assert sil.shape == (2, 64, 64) and sil.dtype == torch.bool
        assert (sil != expected).sum() <= 2 and 200 < int(sil[0].sum()) < 64 * 64 - 200
    assert (expected[0] != expected[1]).any()


def test_uint8_conversion_matches_the_project_rounding():
    from hoi_adapt.viz.drawing import to_uint8

    x = torch.rand(2, 3, 5, 7) * 1.2 - 0.1
    ours = to_uint8_images(x).numpy()
    assert ours.dtype == np.uint8 and ours.shape == (2, 5, 7, 3)
    assert all(np.array_equal(ours[i], to_uint8(x[i])) for i in range(2))


def test_groups_are_fixed_batches_minus_finished_samples():
    assert make_groups(10, 4) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    # finished samples leave the other groups' composition unchanged (so results do not depend on resumes)
    assert make_groups(10, 4, {0, 1, 2, 3, 5}) == [[4, 6, 7], [8, 9]]
    assert make_groups(3, 4, {0, 1, 2}) == []


def test_npz_bytes_are_deterministic_and_load_back():
    arrays = {"key": fmt.str_array(["00000000", "00000001"]), "x": np.arange(6, dtype=np.float32).reshape(2, 3)}
    data = fmt.npz_bytes(arrays)
    assert data == fmt.npz_bytes(dict(arrays))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    loaded = np.load(io.BytesIO(data), allow_pickle=False)
    assert np.array_equal(loaded["x"], arrays["x"]) and list(loaded["key"]) == ["00000000", "00000001"]
    with pytest.raises(TypeError, match="object"):
        fmt.npz_bytes({"bad": np.array([{}], dtype=object)})


def _shard_rows(keys: list[int], value: float) -> dict[str, np.ndarray]:
    n = len(keys)
    rows: dict[str, np.ndarray] = {"key": fmt.str_array(fmt.sample_key(k) for k in keys)}
    for col, shape in fmt.FLOAT_COLUMNS.items():
        rows[col] = np.full((n, *shape), value, dtype=np.float32)
    rows["source_dataset"] = fmt.str_array(["synthetic"] * n)
    rows["source_sequence"] = fmt.str_array(["s"] * n)
    rows["source_frame"] = np.asarray(keys, dtype=np.int64)
    rows["source_index"] = np.asarray(keys, dtype=np.int64)
    rows["file_paths"] = fmt.str_array(fmt.image_relpath(fmt.sample_key(k)) for k in keys)
    rows["file_sha256"] = fmt.str_array(f"sha{k}" for k in keys)
    return rows


def test_merge_sorts_by_key_and_requires_every_sample(tmp_path):
    (tmp_path / fmt.SHARDS_DIR).mkdir()
    (tmp_path / fmt.shard_relpath("00000002")).write_bytes(fmt.npz_bytes(_shard_rows([2, 3], 2.0)))
    (tmp_path / fmt.shard_relpath("00000000")).write_bytes(fmt.npz_bytes(_shard_rows([0, 1], 1.0)))
    assert fmt.finished_keys(tmp_path) == {"00000000", "00000001", "00000002", "00000003"}
    merged, files = fmt.merge_shards(tmp_path, [fmt.sample_key(i) for i in range(4)])
    assert list(merged["key"]) == [fmt.sample_key(i) for i in range(4)]
    assert merged["confidence"].tolist() == [1.0, 1.0, 2.0, 2.0] and merged["joints3d"].shape == (4, 21, 3)
    assert files == {fmt.image_relpath(fmt.sample_key(i)): f"sha{i}" for i in range(4)}
    with pytest.raises(DataFileError, match="1 of 5 samples have no annotations"):
        fmt.merge_shards(tmp_path, [fmt.sample_key(i) for i in range(5)])
    fmt.remove_shards(tmp_path)
    assert not (tmp_path / fmt.SHARDS_DIR).exists() and fmt.finished_keys(tmp_path) == set()


def test_identity_differences_name_each_changed_field():
    base = {"format_version": 1, "count": 5, "checkpoint": {"sha256": "a", "kind": "adapt", "path": "/x"},
            "source": {"dataset": "synthetic", "root": "/w", "split": "target_hoi", "image": "hoi", "limit": None, "options": {}},
            "config": {"adapt": True, "image_size": 64, "write_meshes": False, "freihand": True, "mano_path": None,
                       "batch_size": 16}, "hand_model": {"type": "stand-in"}}
    same_but_runtime = {**base, "checkpoint": {**base["checkpoint"], "path": "/elsewhere"},
                        "config": {**base["config"], "batch_size": 4}}
    assert differences(base, same_but_runtime, fmt.IDENTITY_FIELDS) == []  # moving the checkpoint or a new batch size resumes
    other = {**base, "checkpoint": {**base["checkpoint"], "sha256": "b"}, "config": {**base["config"], "image_size": 128}}
    diffs = differences(base, other, fmt.IDENTITY_FIELDS)
    assert diffs == ["checkpoint.sha256: 'a' in the folder, 'b' requested", "config.image_size: 64 in the folder, 128 requested"]


def test_freihand_mano_conversion_inverts_and_recovers_the_root():
    rng = np.random.default_rng(0)
    n = 5
    hands_mean = rng.normal(size=45)
    joints = rng.normal(scale=0.03, size=(n, 21, 3)) + np.array([0.0, 0.0, 0.5])
    K = np.tile(np.array([[300.0, 0.0, 31.5], [0.0, 300.0, 31.5], [0.0, 0.0, 1.0]]), (n, 1, 1))
    ann = {"K": K.astype(np.float32), "joints3d": joints.astype(np.float32), "mano_global_orient": rng.normal(size=(n, 3)),
           "mano_hand_pose": rng.normal(size=(n, 45)), "mano_betas": rng.normal(size=(n, 10))}
    theta = freihand_mano(ann, hands_mean)
    assert theta.shape == (n, 61)
    np.testing.assert_allclose(theta[:, :3], ann["mano_global_orient"])
    np.testing.assert_allclose(theta[:, 3:48] + hands_mean, ann["mano_hand_pose"], atol=1e-12)
    np.testing.assert_allclose(theta[:, 48:58], ann["mano_betas"])
    uv, scale = theta[:, 58:60], theta[:, 60]
    root = np.concatenate([(uv - 31.5) / scale[:, None], (300.0 / scale)[:, None]], axis=1)
    np.testing.assert_allclose(root, ann["joints3d"][:, 9], rtol=1e-5)
    np.testing.assert_allclose(bone_scale(joints), np.linalg.norm(joints[:, 9] - joints[:, 10], axis=1))
    with pytest.raises(ConfigError, match="45 values"):
        freihand_mano(ann, hands_mean[:10])
