"""Per-frame errors and their breakdown by a per-frame attribute (e.g. how much of the hand an object hides).

A protocol reports one number per split; whether a method helps *where the object hides more of the hand*
needs each frame's error next to that frame's occlusion. These helpers give the frame-level errors of the
synthetic protocol's two headline metrics and group them into bins.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hoi_adapt.eval.alignment import procrustes_align, root_align
from hoi_adapt.eval.metrics import joint_errors_mm

OCCLUSION_BINS: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 1.0)
"""Default bin edges of the hidden fraction of the hand: 0-20, 20-40, 40-60 and > 60 %."""


def _frame_means(err: np.ndarray, valid: np.ndarray) -> np.ndarray:
    count = valid.sum(axis=1)
    total = np.where(valid, err, 0.0).sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def per_frame_errors(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray) -> dict[str, np.ndarray]:
    """Each frame's mean error (mm) over its valid joints: wrist root-relative and Procrustes-aligned.

    ``pred``/``gt`` are (N, 21, 3) metres in OpenPose order (wrist = joint 0), ``valid`` (N, 21) bool. A frame
    without a valid wrist has no root-relative error (NaN), one without valid joints has neither. The means
    over frames with all joints valid equal the protocol's ``rootrel_mpjpe_mm`` and ``pa_mpjpe_mm``.
    """
    valid = np.asarray(valid, dtype=bool)
    rootrel_valid = valid & valid[:, :1]
    err_rr, v_rr = joint_errors_mm(root_align(pred, gt, 0), gt, rootrel_valid)
    err_pa, v_pa = joint_errors_mm(procrustes_align(pred, gt, valid), gt, valid)
    return {"rootrel_mpjpe_mm": _frame_means(err_rr, v_rr), "pa_mpjpe_mm": _frame_means(err_pa, v_pa)}


def bin_label(lo: float, hi: float, percent: bool = True) -> str:
    """``"20-40%"`` for fractions (``percent``), else ``"20-40"``."""
    return f"{lo * 100:g}-{hi * 100:g}%" if percent else f"{lo:g}-{hi:g}"


def binned_means(values: np.ndarray, attribute: np.ndarray, edges: Sequence[float] = OCCLUSION_BINS,
                 percent: bool = True) -> list[dict[str, Any]]:
    """Mean of ``values`` per bin of ``attribute``: ``[{"bin", "lo", "hi", "count", "mean"}, ...]``.

    Bins are ``[lo, hi)``, the last one closed, so every attribute value in ``[edges[0], edges[-1]]`` falls in
    exactly one bin. NaN values are left out of the mean and the count; an empty bin has mean None.
    """
    values, attribute = np.asarray(values, dtype=np.float64), np.asarray(attribute, dtype=np.float64)
    if values.shape != attribute.shape or values.ndim != 1:
        raise ValueError(f"values and attribute must be equal-length vectors, got {values.shape} and {attribute.shape}")
    edges = [float(e) for e in edges]
    if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
        raise ValueError(f"bin edges must be at least two strictly increasing numbers, got {edges}")
    out = []
    for k, (lo, hi) in enumerate(zip(edges, edges[1:], strict=False)):
        last = k == len(edges) - 2
        inside = (attribute >= lo) & ((attribute <= hi) if last else (attribute < hi)) & np.isfinite(values)
        n = int(inside.sum())
        out.append({"bin": bin_label(lo, hi, percent), "lo": lo, "hi": hi, "count": n,
                    "mean": float(values[inside].mean()) if n else None})
    return out
