"""Error, PCK/AUC and F-score metrics, re-derived from their definitions (numpy, float64).

Units: every function that takes coordinates takes **metres** (the project convention) and every error or
threshold it returns is in **millimetres**, because every published hand-pose number is in mm. Functions
that take errors (``pck_curve``, ``mpjpe`` ...) take mm.

Validity: an invalid joint (``valid == False``, or a non-finite ground-truth coordinate) is excluded from
every statistic. Nothing here ever returns NaN: a statistic over zero valid entries is 0.0 and the caller
reports the counts, so "no data" is visible from ``num_valid_joints == 0`` rather than from a NaN.

PCK has two conventions in the literature, both provided:

* ``"per_keypoint"`` (hand3d's evaluation utility, also used by the FreiHAND and HO-3D evaluation scripts):
  for each keypoint, the fraction of its valid samples whose error is <= the threshold; then the mean over
  keypoints that have at least one valid sample (others are skipped, not counted as 0).
* ``"pooled"``: the fraction of all valid joint instances whose error is <= the threshold. This is what
  the D+O / EgoDexter numbers of minimal-hand correspond to (their PCK fractions have the total number of
  valid tips as denominator, datasets.md §5).

Both use ``<=`` (an error exactly at the threshold counts as correct), as hand3d does.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

MM_PER_M = 1000.0
PckMode = Literal["per_keypoint", "pooled"]
PCK_MODES: tuple[str, ...] = ("per_keypoint", "pooled")


# ---------------------------------------------------------------------------------------------------------
# Threshold grids
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ThresholdGrid:
    """A named PCK threshold grid in mm; results always record the grid they used."""

    name: str
    thresholds_mm: tuple[float, ...]
    source: str

    @property
    def array(self) -> np.ndarray:
        return np.asarray(self.thresholds_mm, dtype=np.float64)

    def describe(self) -> str:
        t = self.thresholds_mm
        step = (t[-1] - t[0]) / (len(t) - 1) if len(t) > 1 else 0.0
        return f"{self.name}: {len(t)} thresholds {t[0]:.2f}..{t[-1]:.2f} mm (step {step:.3f} mm)"


def _grid(name: str, values: np.ndarray, source: str) -> ThresholdGrid:
    return ThresholdGrid(name, tuple(float(v) for v in values), source)


THRESHOLD_GRIDS: dict[str, ThresholdGrid] = {
    g.name: g
    for g in (
        _grid("20-50mm", np.linspace(20.0, 50.0, 16), "minimal-hand plot.py: linspace(20, 50, 16)"),
        _grid("20-50mm-15", np.linspace(20.0, 50.0, 15), "Minimal-Hand-pytorch: get_measures(20, 50, 15)"),
        _grid("hand3d-20-50mm", np.linspace(0.0, 50.0, 20)[8:],
              "hand3d eval_full.py: linspace(0, 50 mm, 20)[8:], first threshold 21.05 mm"),
        _grid("0-50mm-20", np.linspace(0.0, 50.0, 20), "hand3d eval_full.py: get_measures(0, 0.05, 20)"),
        _grid("0-50mm-100", np.linspace(0.0, 50.0, 100), "FreiHAND / HO-3D eval.py: get_measures(0, 0.05, 100)"),
    )
}
DEFAULT_GRID = "20-50mm"


def get_grid(grid: str | ThresholdGrid | Sequence[float] | np.ndarray) -> ThresholdGrid:
    """Resolve a grid name, a grid, or explicit thresholds (mm, increasing) to a :class:`ThresholdGrid`."""
    if isinstance(grid, ThresholdGrid):
        return grid
    if isinstance(grid, str):
        if grid not in THRESHOLD_GRIDS:
            raise ValueError(f"unknown threshold grid {grid!r}; known: {', '.join(THRESHOLD_GRIDS)}")
        return THRESHOLD_GRIDS[grid]
    values = np.asarray(grid, dtype=np.float64).reshape(-1)
    if values.size == 0 or not np.all(np.isfinite(values)) or np.any(np.diff(values) <= 0):
        raise ValueError("explicit thresholds must be a non-empty, finite, strictly increasing sequence in mm")
    return _grid("custom", values, "explicit thresholds")


# ---------------------------------------------------------------------------------------------------------
# Input checking
# ---------------------------------------------------------------------------------------------------------
def _as_points(x: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim < 2 or a.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (..., K, 3), got {a.shape}")
    return a


def _valid_mask(valid: np.ndarray | None, shape: tuple[int, ...], name: str = "valid") -> np.ndarray:
    if valid is None:
        return np.ones(shape, dtype=bool)
    v = np.asarray(valid)
    if v.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {v.shape}")
    return v.astype(bool)


def joint_errors_mm(
    pred_m: np.ndarray, gt_m: np.ndarray, valid: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-joint Euclidean errors in mm, and the effective validity mask.

    Args:
        pred_m: (..., J, 3) predictions in metres.
        gt_m: (..., J, 3) ground truth in metres (non-finite entries mark missing annotations).
        valid: (..., J) bool; ``None`` means all annotated.

    Returns:
        ``(errors_mm, valid)``; ``valid`` is the given mask AND finite GT; invalid errors are 0 (never NaN).

    Raises:
        ValueError: on shape mismatch, or a non-finite prediction at a valid joint (a model bug that must not
            silently become "correct" or "skipped").
    """
    pred = _as_points(pred_m, "pred")
    gt = _as_points(gt_m, "gt")
    if pred.shape != gt.shape:
        raise ValueError(f"pred and gt shapes differ: {pred.shape} vs {gt.shape}")
    v = _valid_mask(valid, gt.shape[:-1]) & np.all(np.isfinite(gt), axis=-1)
    bad_pred = v & ~np.all(np.isfinite(pred), axis=-1)
    if np.any(bad_pred):
        raise ValueError(f"prediction has {int(bad_pred.sum())} non-finite coordinates at valid joints")
    diff = np.where(v[..., None], pred - np.where(np.isfinite(gt), gt, 0.0), 0.0)
    err = np.sqrt(np.sum(diff * diff, axis=-1)) * MM_PER_M
    return err, v


def _check_errors(errors_mm: np.ndarray, valid: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    e = np.asarray(errors_mm, dtype=np.float64)
    v_in = None if valid is None else np.asarray(valid)
    if e.ndim == 1:  # one keypoint, N samples
        e = e[:, None]
        v_in = v_in[:, None] if v_in is not None and v_in.ndim == 1 else v_in
    if e.ndim != 2:
        raise ValueError(f"errors must have shape (N, J), got {np.shape(errors_mm)}")
    v = _valid_mask(v_in, e.shape) & np.isfinite(e)
    return np.where(v, e, 0.0), v


# ---------------------------------------------------------------------------------------------------------
# PCK / AUC / mean and median errors
# ---------------------------------------------------------------------------------------------------------
def pck_curve(
    errors_mm: np.ndarray,
    valid: np.ndarray | None,
    thresholds_mm: Sequence[float] | np.ndarray,
    mode: PckMode = "per_keypoint",
) -> np.ndarray:
    """PCK at each threshold, shape (T,), in [0, 1] (see the module docstring for the two modes).

    Args:
        errors_mm: (N, J) errors in mm (or (N,) for a single keypoint).
        valid: (N, J) bool or ``None``.
        thresholds_mm: (T,) thresholds in mm.
        mode: ``"per_keypoint"`` (hand3d) or ``"pooled"``.
    """
    e, v = _check_errors(errors_mm, valid)
    thr = np.asarray(thresholds_mm, dtype=np.float64).reshape(-1)
    if mode not in PCK_MODES:
        raise ValueError(f"unknown PCK mode {mode!r}; use one of {PCK_MODES}")
    # hits[t, j] = number of valid samples of keypoint j within threshold t (one threshold at a time keeps
    # memory at O(N*J), e.g. 778 vertices x 4k frames x 100 thresholds would not fit as one boolean array)
    masked = np.where(v, e, np.inf)
    hits = np.stack([(masked <= t).sum(axis=0) for t in thr]) if thr.size else np.zeros((0, e.shape[1]))
    if mode == "pooled":
        n = v.sum()
        return hits.sum(axis=1) / n if n > 0 else np.zeros(thr.shape)
    per_kp_n = v.sum(axis=0)  # (J,)
    has = per_kp_n > 0
    if not np.any(has):
        return np.zeros(thr.shape)
    return (hits[:, has] / per_kp_n[has]).mean(axis=1)


def auc(pck: Sequence[float] | np.ndarray, thresholds_mm: Sequence[float] | np.ndarray) -> float:
    """Normalised area under a PCK curve: trapz(pck, thr) / trapz(1, thr), in [0, 1].

    Trapezoidal rule written out (``np.trapz`` was removed in numpy 2.4). A one-threshold "curve" has no
    area; its AUC is defined as the PCK value itself.
    """
    y = np.asarray(pck, dtype=np.float64).reshape(-1)
    x = np.asarray(thresholds_mm, dtype=np.float64).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"pck and thresholds lengths differ: {y.shape} vs {x.shape}")
    if x.size == 1:
        return float(y[0])
    dx = np.diff(x)
    area = float(np.sum(dx * (y[1:] + y[:-1]) * 0.5))
    return area / float(x[-1] - x[0])


def mpjpe(errors_mm: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Mean error over all valid joint instances (mm); 0.0 if none are valid."""
    e, v = _check_errors(errors_mm, valid)
    n = v.sum()
    return float(e[v].sum() / n) if n > 0 else 0.0


def median_error(errors_mm: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Median error over all valid joint instances (mm); 0.0 if none are valid."""
    e, v = _check_errors(errors_mm, valid)
    return float(np.median(e[v])) if v.any() else 0.0


def per_keypoint_mean(errors_mm: np.ndarray, valid: np.ndarray | None = None) -> float:
    """hand3d's "average mean EPE": mean over keypoints (with data) of each keypoint's mean error (mm)."""
    e, v = _check_errors(errors_mm, valid)
    n = v.sum(axis=0)
    has = n > 0
    return float(np.mean(e.sum(axis=0)[has] / n[has])) if has.any() else 0.0


@dataclass(frozen=True)
class KeypointStats:
    """Everything one error set yields on one grid."""

    mean_mm: float
    median_mm: float
    auc: float
    pck: tuple[float, ...]
    num_valid: int


def keypoint_stats(
    errors_mm: np.ndarray, valid: np.ndarray | None, grid: str | ThresholdGrid = DEFAULT_GRID,
    mode: PckMode = "per_keypoint",
) -> KeypointStats:
    """Mean (pooled over valid joints), median, PCK curve and AUC of one error set on one grid."""
    g = get_grid(grid)
    e, v = _check_errors(errors_mm, valid)
    curve = pck_curve(e, v, g.array, mode)
    return KeypointStats(
        mean_mm=mpjpe(e, v), median_mm=median_error(e, v), auc=auc(curve, g.array),
        pck=tuple(float(p) for p in curve), num_valid=int(v.sum()),
    )


# ---------------------------------------------------------------------------------------------------------
# F-score between point sets
# ---------------------------------------------------------------------------------------------------------
def fscore(
    pred_m: np.ndarray, gt_m: np.ndarray, thresholds_mm: Sequence[float] | float = (5.0, 15.0)
) -> np.ndarray:
    """F-score of nearest-neighbour distances between two point sets, per frame and threshold.

    precision = fraction of predicted points whose nearest GT point is closer than the threshold;
    recall = fraction of GT points whose nearest predicted point is closer than the threshold;
    F = 2PR / (P + R), and 0 when P + R = 0. Strict ``<`` as in the FreiHAND/HO-3D evaluation.

    Args:
        pred_m: (V, 3) or (N, V, 3) predicted points, metres.
        gt_m: (W, 3) or (N, W, 3) ground-truth points, metres (the sets need not have the same size).
        thresholds_mm: one threshold or a sequence (mm).

    Returns:
        (T,) for single sets, (N, T) for batches.
    """
    from scipy.spatial import cKDTree

    pred = _as_points(pred_m, "pred")
    gt = _as_points(gt_m, "gt")
    single = pred.ndim == 2
    if single:
        pred, gt = pred[None], gt[None]
    if pred.ndim != 3 or gt.ndim != 3 or pred.shape[0] != gt.shape[0]:
        raise ValueError(f"fscore expects (V,3)/(W,3) or (N,V,3)/(N,W,3); got {pred.shape} and {gt.shape}")
    if not (np.all(np.isfinite(pred)) and np.all(np.isfinite(gt))):
        raise ValueError("fscore inputs must be finite")
    thr_m = np.atleast_1d(np.asarray(thresholds_mm, dtype=np.float64)) / MM_PER_M
    out = np.zeros((pred.shape[0], thr_m.size))
    for i in range(pred.shape[0]):
        if pred.shape[1] == 0 or gt.shape[1] == 0:
            continue
        d_pred_to_gt, _ = cKDTree(gt[i]).query(pred[i], k=1)
        d_gt_to_pred, _ = cKDTree(pred[i]).query(gt[i], k=1)
        precision = (d_pred_to_gt[None, :] < thr_m[:, None]).mean(axis=1)
        recall = (d_gt_to_pred[None, :] < thr_m[:, None]).mean(axis=1)
        denom = precision + recall
        out[i] = np.where(denom > 0, 2.0 * precision * recall / np.where(denom > 0, denom, 1.0), 0.0)
    return out[0] if single else out
