"""Alignments: Procrustes, fingertip centroid/scale, bone-length scale presets, palm centre."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hoi_adapt.eval.alignment import (
    align_hand3d_palm,
    align_ho3d_sc_tr,
    align_joint9_bone_scale,
    apply_similarity,
    bone_scale_align,
    fingertip_align,
    palm_from_openpose,
    procrustes_align,
    replace_root,
    root_align,
    root_relative,
    wrist_from_palm,
)
from hoi_adapt.hand.joint_maps import convert


def _hand(n: int = 5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 21, 3)) * 0.04 + np.array([0.0, 0.0, 0.5])


def test_procrustes_recovers_known_similarity():
    gt = _hand(6)
    rot = Rotation.random(6, random_state=1).as_matrix()
    s, t = 1.3, np.array([0.1, -0.2, 0.3])
    pred = s * np.einsum("nij,nkj->nki", rot, gt) + t
    aligned, tf = procrustes_align(pred, gt, return_transform=True)
    assert np.abs(aligned - gt).max() < 1e-12
    assert tf.scale == pytest.approx(np.full(6, 1 / s))
    assert np.allclose(tf.rotation, np.swapaxes(rot, 1, 2), atol=1e-10)
    # the same transform maps other points of the frame (e.g. vertices) consistently
    extra = _hand(6, 7)
    assert np.allclose(apply_similarity(s * np.einsum("nij,nkj->nki", rot, extra) + t, tf), extra, atol=1e-12)


def test_procrustes_never_reflects():
    gt = _hand(8)
    mirrored = gt * np.array([1.0, 1.0, -1.0])  # a reflection fits this perfectly; a rotation cannot
    aligned, tf = procrustes_align(mirrored, gt, return_transform=True)
    assert np.allclose(np.linalg.det(tf.rotation), 1.0)
    assert np.all(tf.scale > 0)
    assert np.linalg.norm(aligned - gt, axis=-1).mean() > 1e-3


def test_procrustes_uses_only_valid_points():
    gt = _hand(3)
    rot = Rotation.random(3, random_state=4).as_matrix()
    pred = 0.8 * np.einsum("nij,nkj->nki", rot, gt) + 0.05
    valid = np.ones((3, 21), dtype=bool)
    valid[:, [2, 7, 15]] = False
    corrupted = pred.copy()
    corrupted[:, [2, 7, 15]] += 5.0
    gt_bad = gt.copy()
    gt_bad[:, [2, 7, 15]] = np.nan
    aligned = procrustes_align(corrupted, gt_bad, valid)
    assert np.abs(aligned[valid] - gt[valid]).max() < 1e-12


def test_procrustes_constant_prediction_maps_to_gt_centroid():
    gt = _hand(1)[0]
    aligned = procrustes_align(np.zeros((21, 3)), gt)
    assert np.allclose(aligned, gt.mean(axis=0))


def test_fingertip_alignment_hand_computed():
    # two valid tips: GT (-a,0,0),(a,0,0); pred (-a,d,0),(a,-d,0): centroids 0, s = a/sqrt(a^2+d^2) = 0.6
    a, d = 0.03, 0.04
    gt = np.zeros((5, 3))
    gt[0], gt[1] = [-a, 0, 0], [a, 0, 0]
    gt[2:] = np.nan
    pred = np.full((5, 3), 7.0)  # invalid tips' predictions must not matter
    pred[0], pred[1] = [-a, d, 0], [a, -d, 0]
    res = fingertip_align(pred, gt, np.array([1, 1, 0, 0, 0], bool))
    assert res.used
    assert np.allclose(res.aligned[0], [-0.018, 0.024, 0.0])
    assert np.linalg.norm(res.aligned[0] - gt[0]) == pytest.approx(0.012 * np.sqrt(5))


def test_fingertip_alignment_scale_translation_invariance_and_skips():
    gt = _hand(4)[:, [4, 8, 12, 16, 20]]
    pred = 1.3 * gt + np.array([0.2, -0.1, 0.05])
    valid = np.ones((4, 5), dtype=bool)
    valid[1, 2:] = False  # 2 valid tips: still aligned
    valid[2, 1:] = False  # 1 valid tip: unusable
    valid[3, :] = False  # none
    res = fingertip_align(pred, gt, valid)
    assert res.used.tolist() == [True, True, False, False]
    assert np.abs(res.aligned[0] - gt[0]).max() < 1e-12
    assert np.abs(res.aligned[1, :2] - gt[1, :2]).max() < 1e-12
    assert np.array_equal(res.aligned[2], pred[2])


def test_bone_scale_presets():
    gt = _hand(2)
    pred = 2.0 * gt + 0.1
    for fn in (align_joint9_bone_scale, align_hand3d_palm):
        assert np.abs(fn(pred, gt) - gt).max() < 1e-12
    # joint-9 preset: root 9 lands on GT joint 9, scale from bone 0-9
    out = align_joint9_bone_scale(pred, gt)
    assert np.allclose(out[:, 9], gt[:, 9])
    # hand3d preset uses bone 9-10: double only that bone in the prediction -> everything shrinks by 1/2
    p = gt.copy()
    p[:, 10] = gt[:, 9] + 2.0 * (gt[:, 10] - gt[:, 9])
    out = align_hand3d_palm(p, gt)
    assert np.allclose(out[:, 5], gt[:, 0] + 0.5 * (gt[:, 5] - gt[:, 0]))
    # degenerate predicted bone: translation only
    flat = gt.copy()
    flat[:, 10] = flat[:, 9]
    assert np.allclose(bone_scale_align(flat, gt, 0, (9, 10)), flat - flat[:, :1] + gt[:, :1])


def test_ho3d_sc_tr_uses_wrist_and_middle1_in_mano_order():
    gt = _hand(3)
    pred = gt.copy()
    pred[:, 9] = gt[:, 0] + 2.0 * (gt[:, 9] - gt[:, 0])  # OpenPose 9 = MANO Middle_1 (index 4)
    out_mano = align_ho3d_sc_tr(convert(pred, "openpose", "mano"), convert(gt, "openpose", "mano"))
    out = convert(out_mano, "mano", "openpose")
    assert np.allclose(out, bone_scale_align(pred, gt, 0, (0, 9)))
    assert np.allclose(out[:, 5], gt[:, 0] + 0.5 * (gt[:, 5] - gt[:, 0]))
    assert np.allclose(out[:, 9], gt[:, 9])


def test_root_align_and_palm_helpers():
    j = _hand(2)
    gt = _hand(2, 3)
    assert np.allclose(root_align(j, gt)[:, 0], gt[:, 0])
    assert np.allclose(root_relative(j)[:, 5], j[:, 5] - j[:, 0]) and np.all(root_relative(j)[:, 0] == 0)
    palm = palm_from_openpose(j)
    assert np.allclose(palm, 0.5 * (j[:, 0] + j[:, 13]))  # midpoint of wrist and ring MCP
    assert np.allclose(palm_from_openpose(j, "middle_mcp_midpoint"), 0.5 * (j[:, 0] + j[:, 9]))
    for method in ("ring_mcp_midpoint", "middle_mcp_2.2", "middle_mcp_midpoint"):
        palm_rooted = replace_root(j, palm_from_openpose(j, method))
        assert np.allclose(wrist_from_palm(palm_rooted, method), j[:, 0])
    with pytest.raises(ValueError):
        palm_from_openpose(j, "centroid")
