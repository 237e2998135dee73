"""PCK/AUC/MPJPE/F-score against hand-computed values."""
from __future__ import annotations

import numpy as np
import pytest

from hoi_adapt.eval.metrics import (
    THRESHOLD_GRIDS,
    auc,
    fscore,
    get_grid,
    joint_errors_mm,
    keypoint_stats,
    median_error,
    mpjpe,
    pck_curve,
    per_keypoint_mean,
)

GRID = THRESHOLD_GRIDS["20-50mm"].array  # 20, 22, ..., 50


def test_grids_are_the_published_ones():
    assert np.allclose(THRESHOLD_GRIDS["20-50mm"].array, np.arange(20.0, 51.0, 2.0))
    h3 = THRESHOLD_GRIDS["hand3d-20-50mm"].array
    assert h3.size == 12 and h3[0] == pytest.approx(8 * 50 / 19) and h3[-1] == pytest.approx(50.0)
    assert THRESHOLD_GRIDS["0-50mm-100"].array.size == 100
    assert THRESHOLD_GRIDS["20-50mm-15"].array.size == 15
    with pytest.raises(ValueError):
        get_grid("10-20mm")
    with pytest.raises(ValueError):
        get_grid([30.0, 20.0])


def test_all_zero_errors_give_auc_one():
    e = np.zeros((7, 21))
    pck = pck_curve(e, None, GRID)
    assert np.all(pck == 1.0)
    assert auc(pck, GRID) == pytest.approx(1.0)


def test_constant_35mm_on_20_50_grid():
    # PCK = 0 at 20..34, 1 at 36..50; area = 1 (34->36 trapezoid) + 14 = 15 over 30 mm -> 0.5
    e = np.full((4, 21), 35.0)
    pck = pck_curve(e, None, GRID)
    assert np.all(pck[:8] == 0.0) and np.all(pck[8:] == 1.0)
    assert auc(pck, GRID) == pytest.approx(0.5)


def test_threshold_is_inclusive():
    # error exactly 36 counts at t=36 (<=): same as 35 -> 0.5; a hair above loses the 36 point -> 13/30
    assert auc(pck_curve(np.full((1, 1), 36.0), None, GRID), GRID) == pytest.approx(0.5)
    assert auc(pck_curve(np.full((1, 1), 36.0001), None, GRID), GRID) == pytest.approx(13 / 30)


def test_mixed_errors_hand_computed_auc():
    # one keypoint, errors 10, 30, 60 mm: PCK 1/3 below 30, 2/3 from 30 on
    # area = 8*(1/3) + (1/3+2/3)/2*2 + 20*(2/3) = 17 -> AUC 17/30
    e = np.array([[10.0], [30.0], [60.0]])
    pck = pck_curve(e, None, GRID)
    assert pck[:5] == pytest.approx([1 / 3] * 5) and pck[5:] == pytest.approx([2 / 3] * 11)
    assert auc(pck, GRID) == pytest.approx(17 / 30)


def _crafted():
    # keypoint A: one valid sample (10 mm); B: 10, 60, 60; C: never valid. Invalid cells hold garbage.
    e = np.array([[10.0, 10.0, 1e9], [777.0, 60.0, -5.0], [np.nan, 60.0, 0.0]])
    v = np.array([[1, 1, 0], [0, 1, 0], [0, 1, 0]], dtype=bool)
    return e, v


def test_per_keypoint_vs_pooled_differ_as_hand_computed():
    e, v = _crafted()
    # per keypoint at 25 mm: A = 1, B = 1/3, C skipped -> 2/3; pooled: 2 of 4 valid -> 1/2
    assert pck_curve(e, v, [25.0], "per_keypoint") == pytest.approx([2 / 3])
    assert pck_curve(e, v, [25.0], "pooled") == pytest.approx([0.5])
    assert mpjpe(e, v) == pytest.approx(35.0)
    assert median_error(e, v) == pytest.approx(35.0)
    assert per_keypoint_mean(e, v) == pytest.approx((10.0 + 130.0 / 3) / 2)
    st = keypoint_stats(e, v, "20-50mm", "pooled")
    assert st.num_valid == 4 and st.mean_mm == pytest.approx(35.0)
    # pooled PCK: 1/2 everywhere on 20..50 (10 <= t < 60) -> AUC 0.5
    assert st.auc == pytest.approx(0.5)


def test_invalid_entries_never_change_results_or_produce_nan():
    e, v = _crafted()
    e2 = e.copy()
    e2[~v] = np.array([np.inf, -1.0, 3.0, 12345.0, 0.0])
    for mode in ("per_keypoint", "pooled"):
        assert np.array_equal(pck_curve(e, v, GRID, mode), pck_curve(e2, v, GRID, mode))
    assert mpjpe(e2, v) == mpjpe(e, v)
    none = np.zeros_like(v)
    assert np.all(pck_curve(e, none, GRID) == 0.0) and mpjpe(e, none) == 0.0 and median_error(e, none) == 0.0


def test_auc_single_threshold_and_shape_check():
    assert auc([0.7], [30.0]) == pytest.approx(0.7)
    with pytest.raises(ValueError):
        auc([0.1, 0.2], [20.0, 30.0, 40.0])


def test_joint_errors_in_mm_with_validity():
    gt = np.zeros((2, 3, 3))
    gt[1, 2] = np.nan  # missing annotation
    pred = np.zeros((2, 3, 3))
    pred[0, 0] = [0.003, 0.004, 0.0]  # 5 mm
    pred[1, 2] = [9.0, 9.0, 9.0]  # at the missing joint: ignored
    err, v = joint_errors_mm(pred, gt)
    assert err[0, 0] == pytest.approx(5.0)
    assert not v[1, 2] and err[1, 2] == 0.0 and np.all(np.isfinite(err))
    bad = pred.copy()
    bad[0, 1, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        joint_errors_mm(bad, gt)
    with pytest.raises(ValueError):
        joint_errors_mm(pred[:, :2], gt)


def test_fscore_identical_far_and_partial():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(778, 3)) * 0.05
    assert fscore(pts, pts, (5.0, 15.0)) == pytest.approx([1.0, 1.0])
    assert fscore(pts + 1.0, pts, (5.0, 15.0)) == pytest.approx([0.0, 0.0])
    # precision 1 (the one predicted point is 3 mm from a GT point), recall 1/2 -> F = 2/3; at 2 mm F = 0
    gt = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    pred = np.array([[0.003, 0.0, 0.0]])
    assert fscore(pred, gt, (2.0, 5.0)) == pytest.approx([0.0, 2 / 3])
    # asymmetric: precision 2/3 (pred 6 mm from A is out), recall 1/3 (only A is matched) -> F = 4/9
    gt = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.008, 0.0]])
    pred = np.array([[0.003, 0.0, 0.0], [0.004, 0.0, 0.0], [0.006, 0.0, 0.0]])
    assert fscore(pred, gt, 5.0) == pytest.approx([4 / 9])
    batch = fscore(np.stack([pts, pts + 1.0]), np.stack([pts, pts]), 5.0)
    assert batch.shape == (2, 1) and batch[:, 0] == pytest.approx([1.0, 0.0])
