"""Per-frame errors, occlusion bins and detector-style predictors (misses) in the evaluation."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hoi_adapt.eval import evaluate_protocol
from hoi_adapt.eval.breakdown import OCCLUSION_BINS, binned_means, per_frame_errors
from hoi_adapt.eval.metrics import auc
from hoi_adapt.eval.runner import build_eval_data, collect, oracle_prediction, score


def _skeletons(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    gt = rng.normal(size=(n, 21, 3)) * 0.04 + np.array([0, 0, 0.5])
    pred = gt + rng.normal(size=(n, 21, 3)) * 0.01
    return pred, gt


def test_per_frame_errors_average_to_the_protocol_figures():
    pred, gt = _skeletons(12)
    valid = np.ones((12, 21), bool)
    frames = per_frame_errors(pred, gt, valid)
    metrics = evaluate_protocol("synthetic", pred, gt, valid)["metrics"]
    assert frames["rootrel_mpjpe_mm"].shape == (12,)
    assert frames["rootrel_mpjpe_mm"].mean() == pytest.approx(metrics["rootrel_mpjpe_mm"], rel=1e-9)
    assert frames["pa_mpjpe_mm"].mean() == pytest.approx(metrics["pa_mpjpe_mm"], rel=1e-9)


def test_per_frame_errors_are_root_relative_and_respect_validity():
    _, gt = _skeletons(3)
    pred = gt + np.array([0.2, -0.1, 0.3])  # translated only
    pred[1, 5] += np.array([0.021, 0, 0])  # one joint 21 mm off in frame 1
    valid = np.ones((3, 21), bool)
    valid[2, 0] = False  # frame 2 has no wrist: no root-relative error
    frames = per_frame_errors(pred, gt, valid)
    assert frames["rootrel_mpjpe_mm"][0] == pytest.approx(0.0, abs=1e-9)
    assert frames["rootrel_mpjpe_mm"][1] == pytest.approx(21.0 / 21, rel=1e-9)
    assert np.isnan(frames["rootrel_mpjpe_mm"][2])
    assert np.isfinite(frames["pa_mpjpe_mm"]).all()


def test_binned_means_put_every_value_in_one_bin():
    occlusion = np.array([0.0, 0.1, 0.2, 0.39, 0.4, 0.59, 0.6, 0.9, 1.0])
    values = np.arange(9, dtype=float)
    bins = binned_means(values, occlusion, OCCLUSION_BINS)
    assert [b["bin"] for b in bins] == ["0-20%", "20-40%", "40-60%", "60-100%"]
    assert [b["count"] for b in bins] == [2, 2, 2, 3]  # [lo, hi), the last bin closed
    assert [b["mean"] for b in bins] == [0.5, 2.5, 4.5, 7.0]
    assert sum(b["count"] for b in bins) == len(values)


def test_binned_means_skip_nan_and_report_empty_bins():
    bins = binned_means(np.array([1.0, np.nan, 3.0]), np.array([0.1, 0.15, 0.7]), (0.0, 0.2, 0.5, 1.0))
    assert [b["count"] for b in bins] == [1, 0, 1]
    assert bins[0]["mean"] == 1.0 and bins[1]["mean"] is None and bins[2]["mean"] == 3.0


@pytest.mark.parametrize("edges", [(0.5,), (0.0, 0.5, 0.5), (1.0, 0.0)])
def test_binned_means_reject_bad_edges(edges):
    with pytest.raises(ValueError, match="strictly increasing"):
        binned_means(np.zeros(2), np.zeros(2), edges)


def test_binned_means_reject_mismatched_lengths():
    with pytest.raises(ValueError, match="equal-length"):
        binned_means(np.zeros(3), np.zeros(2))


# ------------------------------------------------------------------------------- detector-style predictors
def _detector(every: int):
    """GT joints 10 mm off along x (the wrist too), detected in every ``every``-th frame of each batch."""
    def predict(batch):
        joints = oracle_prediction(batch)["joints3d"].clone()
        joints[:, 1:, 0] += 0.010
        detected = torch.zeros(len(joints), dtype=torch.bool)
        detected[::every] = True
        return {"joints3d": joints, "detected": detected}
    return predict


def test_misses_are_failures_in_the_pck_and_absent_from_the_errors(tiny_world):
    data = build_eval_data("synthetic", tiny_world, image_size=64)
    res = score(data, collect(data, _detector(2), batch_size=4), per_frame=True)
    n = len(data.dataset)
    found = sum(len(range(0, min(4, n - s), 2)) for s in range(0, n, 4))
    assert res["num_samples"] == n and res["num_detected"] == found and res["num_missed"] == n - found
    m = res["metrics"]
    assert m["detection_rate"] == pytest.approx(found / n)
    assert m["rootrel_mpjpe_mm"] == pytest.approx(10.0 * 20 / 21, rel=1e-6)  # detected frames only
    assert res["pck_detected"]["rootrel"][0] == pytest.approx(1.0)  # every detected joint within 20 mm
    assert res["pck"]["rootrel"][0] == pytest.approx(found / n)  # misses never count as correct
    assert m["rootrel_auc_with_misses"] == pytest.approx(auc(res["pck"]["rootrel"], res["thresholds_mm"]))
    assert len(res["per_frame"]["index"]) == found and len(res["per_frame"]["missed_index"]) == n - found
    assert any("detected in" in note for note in res["notes"])


def test_a_detector_that_finds_nothing_gets_zero_pck_and_no_errors(tiny_world):
    data = build_eval_data("synthetic", tiny_world, image_size=64)

    def blind(batch):
        return {"joints3d": torch.zeros(len(batch["image"]), 21, 3), "detected": torch.zeros(len(batch["image"]), dtype=torch.bool)}

    res = score(data, collect(data, blind, batch_size=8))
    assert res["metrics"]["detection_rate"] == 0.0 and res["metrics"]["rootrel_mpjpe_mm"] is None
    assert all(p == 0.0 for p in res["pck"]["rootrel"]) and res["metrics"]["rootrel_auc_with_misses"] == 0.0
