"""The protocol registry on crafted skeletons with hand-computed expectations."""
from __future__ import annotations

import json

import numpy as np
import pytest

from hoi_adapt.eval.alignment import palm_from_openpose, replace_root
from hoi_adapt.eval.protocols import PROTOCOLS, evaluate_protocol

TIPS = [4, 8, 12, 16, 20]


def _hand(n: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 21, 3)) * 0.04 + np.array([0.0, 0.0, 0.5])


def _verts(n: int, seed: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 778, 3)) * 0.04


def _run(name, pred, gt, valid, **kw):
    if PROTOCOLS[name].uses_verts and "pred_verts" not in kw:
        kw["pred_verts"] = kw["gt_verts"] = _verts(len(pred))
    return evaluate_protocol(name, pred, gt, valid, **kw)


@pytest.mark.parametrize("name", ["dexter_object", "egodexter"])
def test_fingertip_protocol_scale_shift_invariant_and_skips(name):
    gt = _hand(5)
    pred = 1.3 * gt + np.array([0.05, -0.02, 0.1])
    valid = np.zeros((5, 21), dtype=bool)
    valid[:, TIPS] = True
    valid[3, TIPS[1:]] = False  # 1 valid tip -> skipped
    valid[4, TIPS] = False  # 0 valid tips -> skipped
    gt_nan = gt.copy()
    gt_nan[~valid] = np.nan
    r = evaluate_protocol(name, pred, gt_nan, valid)
    m = r["metrics"]
    assert m["tips_auc"] == pytest.approx(1.0) and m["tips_mpjpe_mm"] == pytest.approx(0.0, abs=1e-9)
    assert (r["num_frames"], r["num_skipped_frames"], r["num_evaluated_frames"], r["num_valid_joints"]) == (5, 2, 3, 15)
    assert r["threshold_grid"] == "20-50mm" and len(r["thresholds_mm"]) == len(r["pck"]["tips"]) == 16
    assert r["pck_mode"] == "pooled"


def test_fingertip_protocol_hand_computed_error():
    a, d = 0.03, 0.04
    gt = np.zeros((1, 21, 3))
    gt[0, 4], gt[0, 8] = [-a, 0, 0.5], [a, 0, 0.5]
    pred = np.zeros((1, 21, 3))
    pred[0, 4], pred[0, 8] = [-a, d, 0.5], [a, -d, 0.5]
    valid = np.zeros((1, 21), dtype=bool)
    valid[0, [4, 8]] = True
    r = evaluate_protocol("dexter_object", pred, gt, valid)
    # both tips 12*sqrt(5) = 26.83 mm off: PCK 0 at 20..26, 1 at 28..50 -> AUC (1 + 22)/30
    assert r["metrics"]["tips_mpjpe_mm"] == pytest.approx(12 * np.sqrt(5))
    assert r["metrics"]["tips_auc"] == pytest.approx(23 / 30)


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_invalid_joints_never_change_results(name):
    gt = _hand(8, 1)
    pred = gt + np.random.default_rng(2).normal(size=gt.shape) * 0.012
    valid = np.random.default_rng(3).random((8, 21)) > 0.2
    valid[0] = True
    r1 = _run(name, pred, gt, valid)
    gt2, pred2 = gt.copy(), pred.copy()
    gt2[~valid] = np.nan
    pred2[~valid] = 123.0
    r2 = _run(name, pred2, gt2, valid)
    assert r1["metrics"] == pytest.approx(r2["metrics"])
    assert r1["num_valid_joints"] == r2["num_valid_joints"] > 0
    json.dumps(r2, allow_nan=False)  # never NaN


def _palm_example():
    """GT palm-rooted skeleton with every joint 31 mm from the palm; prediction = 2x about the palm."""
    rng = np.random.default_rng(7)
    dirs = rng.normal(size=(21, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    palm = np.array([0.01, 0.02, 0.45])
    g = palm + 0.031 * dirs
    g[0] = palm  # STB joint 0 = palm centre
    p = palm + 2.0 * (g - palm)
    p[0] = palm - (p[13] - palm)  # wrist chosen so that midpoint(wrist, ring MCP) = palm
    return p[None], g[None]


def test_stb_palm_rooted_crafted():
    pred, gt = _palm_example()
    assert np.allclose(palm_from_openpose(pred), gt[:, 0])
    r = evaluate_protocol("stb", pred, gt, np.ones((1, 21), bool), root_is_palm=True)
    m = r["metrics"]
    assert m["palm_mpjpe_mm"] == pytest.approx(0.0, abs=1e-9) and m["palm_auc"] == pytest.approx(1.0)
    # without the bone scale every non-root joint is 31 mm off: mean 20*31/21; PCK 1/21 at 20..30, 1 at 32..50
    # -> area 10/21 + (1/21 + 1)/2*2 + 18
    assert m["palm_noscale_mpjpe_mm"] == pytest.approx(620 / 21)
    assert m["palm_noscale_auc"] == pytest.approx((32 / 21 + 18) / 30)
    # minimal-hand variant: GT wrist recovered from the palm, root 9 + bone 0-9 scale -> exact
    assert m["j9_mpjpe_mm"] == pytest.approx(0.0, abs=1e-9)
    assert r["settings"]["root_is_palm"] is True and r["primary_metric"] == "palm_auc"


def test_stb_wrist_gt_gives_same_palm_protocol():
    pred, gt_palm = _palm_example()
    gt_wrist = replace_root(gt_palm, gt_palm[:, 0] - (gt_palm[:, 13] - gt_palm[:, 0]))
    a = evaluate_protocol("stb", pred, gt_palm, np.ones((1, 21), bool), root_is_palm=True)
    b = evaluate_protocol("stb", pred, gt_wrist, np.ones((1, 21), bool), root_is_palm=False)
    for k in ("palm_mpjpe_mm", "palm_auc", "palm_noscale_mpjpe_mm", "j9_mpjpe_mm"):
        assert a["metrics"][k] == pytest.approx(b["metrics"][k], abs=1e-9)


def test_stb_skips_frames_without_palm_or_bone():
    pred, gt = _palm_example()
    pred, gt = np.repeat(pred, 3, 0), np.repeat(gt, 3, 0)
    valid = np.ones((3, 21), bool)
    valid[1, 10] = False  # no middle MCP-PIP bone
    valid[2, 0] = False  # no palm
    r = evaluate_protocol("stb", pred, gt, valid, root_is_palm=True)
    assert r["num_skipped_frames"] == 2 and r["num_valid_joints"] == 21


def test_ho3d_crafted_translation():
    gt = _hand(4)
    pred = gt + np.array([0.01, 0.0, 0.0])  # every joint 10 mm off, shape exact
    r = evaluate_protocol("ho3d", pred, gt, np.ones((4, 21), bool))
    m = r["metrics"]
    assert m["abs_mpjpe_mm"] == pytest.approx(10.0)
    # grid linspace(0, 50, 100): PCK turns 1 at k = 20 -> AUC = 1 - 19.5/99
    assert m["abs_auc"] == pytest.approx(79.5 / 99)
    assert m["pa_mpjpe_mm"] == pytest.approx(0.0, abs=1e-9) and m["sc_tr_mpjpe_mm"] == pytest.approx(0.0, abs=1e-9)
    assert r["threshold_grid"] == "0-50mm-100" and r["settings"]["joint_order"] == "mano+tips"


def test_ho3d_sc_tr_scale_from_wrist_middle_bone():
    gt = _hand(1)
    pred = gt.copy()
    pred[:, 9] = gt[:, 0] + 2.0 * (gt[:, 9] - gt[:, 0])  # only the wrist-middle MCP bone is doubled
    r = evaluate_protocol("ho3d", pred, gt, np.ones((1, 21), bool))
    expected = gt[0, 0] + 0.5 * (gt[0] - gt[0, 0])
    expected[9] = gt[0, 9]
    err = np.linalg.norm(expected - gt[0], axis=-1) * 1000
    assert r["metrics"]["sc_tr_mpjpe_mm"] == pytest.approx(err.mean())


def test_freihand_mesh_metrics():
    gt = _hand(3)
    gv = _verts(3)
    r = evaluate_protocol("freihand", gt + 0.02, gt, np.ones((3, 21), bool), pred_verts=gv * 1.5 + 0.02, gt_verts=gv)
    m = r["metrics"]
    assert m["abs_mpjpe_mm"] == pytest.approx(20 * np.sqrt(3))
    assert m["pa_mpjpe_mm"] == pytest.approx(0.0, abs=1e-9)
    assert m["mesh_pa_mpvpe_mm"] == pytest.approx(0.0, abs=1e-9) and m["mesh_abs_mpvpe_mm"] > 10
    assert m["pa_f5"] == pytest.approx(1.0) and m["pa_f15"] == pytest.approx(1.0)
    assert 0.0 <= m["f5"] < 1.0
    assert r["num_mesh_frames"] == 3


def test_freihand_zero_predictor_pa_error_is_spread_about_centroid():
    gt = _hand(2)
    r = evaluate_protocol("freihand", np.zeros_like(gt), gt, np.ones((2, 21), bool))
    spread = np.linalg.norm(gt - gt.mean(axis=1, keepdims=True), axis=-1).mean() * 1000
    assert r["metrics"]["pa_mpjpe_mm"] == pytest.approx(spread)


def test_rhd_and_synthetic_crafted():
    gt = _hand(4)
    shift = np.array([0.0, 0.027, 0.036])  # 45 mm
    valid = np.ones((4, 21), bool)
    r = evaluate_protocol("rhd", gt + shift, gt, valid)
    assert r["metrics"]["rootrel_mpjpe_mm"] == pytest.approx(0.0, abs=1e-9)
    assert r["metrics"]["j9_mpjpe_mm"] == pytest.approx(0.0, abs=1e-9)
    s = evaluate_protocol("synthetic", gt + shift, gt, valid)["metrics"]
    assert s["rootrel_mpjpe_mm"] == pytest.approx(0.0, abs=1e-9) and s["rootrel_auc"] == pytest.approx(1.0)
    # PCK 1 at 46..50 only: area (0 + 1)/2*2 + 4 = 5 -> 5/30
    assert s["abs_mpjpe_mm"] == pytest.approx(45.0) and s["abs_auc"] == pytest.approx(5 / 30)
    assert s["pa_mpjpe_mm"] == pytest.approx(0.0, abs=1e-9) and s["tips_auc"] == pytest.approx(1.0)


def test_per_sequence_breakdown_matches_subsets():
    gt = _hand(9, 4)
    pred = gt + np.random.default_rng(5).normal(size=gt.shape) * 0.015
    valid = np.ones((9, 21), bool)
    seq = np.array(["Desk", "Fruits", "Desk", "Rotunda", "Fruits", "Desk", "Desk", "Rotunda", "Fruits"])
    r = evaluate_protocol("egodexter", pred, gt, valid, sequences=seq)
    assert sorted(r["per_sequence"]) == ["Desk", "Fruits", "Rotunda"]
    assert sum(s["num_frames"] for s in r["per_sequence"].values()) == 9
    alone = evaluate_protocol("egodexter", pred[seq == "Desk"], gt[seq == "Desk"], valid[seq == "Desk"])
    assert r["per_sequence"]["Desk"]["metrics"] == pytest.approx(alone["metrics"])


def test_bad_inputs_are_rejected():
    gt = _hand(2)
    with pytest.raises(ValueError, match="unknown evaluation protocol"):
        evaluate_protocol("nyu", gt, gt, np.ones((2, 21), bool))
    with pytest.raises(ValueError, match="shape"):
        evaluate_protocol("rhd", gt[:, :20], gt[:, :20], np.ones((2, 20), bool))
    bad = gt.copy()
    bad[0, 3, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        evaluate_protocol("rhd", bad, gt, np.ones((2, 21), bool))
    with pytest.raises(ValueError, match="together"):
        evaluate_protocol("freihand", gt, gt, np.ones((2, 21), bool), pred_verts=_verts(2))
