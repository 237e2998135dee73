"""The standard evaluation protocols as one registry: ``evaluate_protocol(name, pred, gt, valid, ...)``.

Inputs are always the project's conventions: joints (N, 21, 3) in **metres**, **OpenPose order**, and a
(N, 21) validity mask; optional MANO vertices (N, V, 3) in metres. Each protocol converts internally when
its published definition uses another joint order (HO-3D: MANO+tips). Camera-frame conventions do not
matter: OpenGL vs OpenCV differ by diag(1, -1, -1), a proper rotation, so every distance, Procrustes and
scale/translation alignment is unchanged. Predictions are assumed wrist-rooted (our model's output); the
STB protocol derives the palm from them (:func:`~hoi_adapt.eval.alignment.palm_from_openpose`).

Every result is a dict::

    protocol, description, threshold_grid, thresholds_mm, pck_mode, primary_metric, settings,
    metrics         {name: float}  flat; errors in mm, AUC/PCK/F in [0, 1]
    pck             {variant: [float, ...]}  one curve per variant, all on ``thresholds_mm``
    pck_modes       {variant: "per_keypoint" | "pooled"}
    num_frames, num_evaluated_frames, num_skipped_frames, num_valid_joints   (ints; the primary variant's)
    num_skipped_frames_<variant>, num_mesh_frames                            (ints, where they apply)
    per_sequence    {sequence: {metrics, num_frames, ...}}   only when ``sequences`` is given

Metric names are ``<variant>_<stat>`` with stat in ``mpjpe_mm`` (mean over valid joints; ``mpvpe_mm`` for
mesh variants), ``median_mm``, ``auc``; F-scores are ``f5``/``f15`` (unaligned) and ``pa_f5``/``pa_f15``.

PCK conventions (see :mod:`hoi_adapt.eval.metrics`): D+O/ED (and the synthetic fingertip variant) use the
pooled PCK over all valid tips, which is what minimal-hand's reported fractions correspond to; the per-keypoint
AUC is reported beside it as ``tips_auc_per_keypoint``. STB, RHD, HO-3D, FreiHAND and the other synthetic
variants use hand3d's per-keypoint PCK (which FreiHAND's and HO-3D's scripts also use).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from hoi_adapt.eval.alignment import (
    DEFAULT_PALM_METHOD,
    MIDDLE_PIP,
    PALM_METHODS,
    align_hand3d_palm,
    align_ho3d_sc_tr,
    align_joint9_bone_scale,
    apply_similarity,
    fingertip_align,
    palm_from_openpose,
    procrustes_align,
    replace_root,
    root_align,
    wrist_from_palm,
)
from hoi_adapt.eval.metrics import (
    PckMode,
    ThresholdGrid,
    fscore,
    get_grid,
    joint_errors_mm,
    keypoint_stats,
)
from hoi_adapt.hand.joint_maps import OPENPOSE_MIDDLE_MCP, OPENPOSE_TIPS, from_openpose_index

NUM_JOINTS = 21
FSCORE_THRESHOLDS_MM: tuple[float, float] = (5.0, 15.0)


# ---------------------------------------------------------------------------------------------------------
# Inputs and per-protocol outputs
# ---------------------------------------------------------------------------------------------------------
@dataclass
class EvalInputs:
    """Validated, float64 inputs; invalid GT coordinates are zeroed so no NaN can propagate."""

    pred: np.ndarray  # (N, 21, 3) m, OpenPose
    gt: np.ndarray  # (N, 21, 3) m, OpenPose
    valid: np.ndarray  # (N, 21) bool
    grid: ThresholdGrid
    pred_verts: np.ndarray | None = None  # (N, V, 3) m
    gt_verts: np.ndarray | None = None  # (N, W, 3) m
    gt_verts_valid: np.ndarray | None = None  # (N,) bool: frame's GT mesh is finite
    root_is_palm: bool = False
    palm_method: str = DEFAULT_PALM_METHOD

    @property
    def num_frames(self) -> int:
        return int(self.pred.shape[0])

    def subset(self, mask: np.ndarray) -> EvalInputs:
        pick = (lambda a: None if a is None else a[mask])
        return replace(
            self, pred=self.pred[mask], gt=self.gt[mask], valid=self.valid[mask], pred_verts=pick(self.pred_verts),
            gt_verts=pick(self.gt_verts), gt_verts_valid=pick(self.gt_verts_valid),
        )


@dataclass
class CoreResult:
    metrics: dict[str, float] = field(default_factory=dict)
    pck: dict[str, list[float]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    pck_modes: dict[str, str] = field(default_factory=dict)

    def add_stats(
        self, variant: str, pred: np.ndarray, gt: np.ndarray, valid: np.ndarray, grid: ThresholdGrid,
        mode: PckMode = "per_keypoint", mean_name: str = "mpjpe_mm",
    ) -> int:
        """Errors of ``pred`` vs ``gt`` over ``valid``; stores mean/median/AUC/PCK; returns #valid joints."""
        err, v = joint_errors_mm(pred, gt, valid)
        st = keypoint_stats(err, v, grid, mode)
        self.metrics[f"{variant}_{mean_name}"] = st.mean_mm
        self.metrics[f"{variant}_median_mm"] = st.median_mm
        self.metrics[f"{variant}_auc"] = st.auc
        self.pck[variant] = list(st.pck)
        self.pck_modes[variant] = mode
        return st.num_valid


@dataclass(frozen=True)
class Protocol:
    """One published protocol: how to align, which joints, which grid and PCK convention."""

    name: str
    description: str
    grid: str
    pck_mode: str
    primary_metric: str
    joint_order: str
    run: Callable[[EvalInputs], CoreResult]
    uses_verts: bool = False


# ---------------------------------------------------------------------------------------------------------
# Protocol cores
# ---------------------------------------------------------------------------------------------------------
def _fingertips(inp: EvalInputs, out: CoreResult, variant: str = "tips") -> tuple[int, int]:
    """D+O / ED fingertip protocol into ``out``; returns (#used frames, #valid tips)."""
    tips = list(OPENPOSE_TIPS)
    pred, gt, valid = inp.pred[:, tips], inp.gt[:, tips], inp.valid[:, tips]
    fa = fingertip_align(pred, gt, valid, min_valid=2)
    v = valid & fa.used[:, None]
    n_valid = out.add_stats(variant, fa.aligned, gt, v, inp.grid, mode="pooled")
    err, ve = joint_errors_mm(fa.aligned, gt, v)
    out.metrics[f"{variant}_auc_per_keypoint"] = keypoint_stats(err, ve, inp.grid, "per_keypoint").auc
    return int(fa.used.sum()), n_valid


def _run_fingertip_protocol(inp: EvalInputs) -> CoreResult:
    out = CoreResult()
    used, n_valid = _fingertips(inp, out)
    out.counts = _counts(inp.num_frames, used, n_valid)
    return out


def _counts(n_frames: int, n_used: int, n_valid: int) -> dict[str, int]:
    return {
        "num_frames": int(n_frames), "num_evaluated_frames": int(n_used),
        "num_skipped_frames": int(n_frames - n_used), "num_valid_joints": int(n_valid),
    }


def _run_stb(inp: EvalInputs) -> CoreResult:
    out = CoreResult()
    mcp = PALM_METHODS[inp.palm_method][0]
    gt, valid, pred = inp.gt, inp.valid, inp.pred
    derived_ok = valid[:, 0] & valid[:, mcp]
    if inp.root_is_palm:
        gt_palm, palm_ok = gt[:, 0], valid[:, 0]
        gt_wrist, wrist_ok = wrist_from_palm(gt, inp.palm_method), derived_ok
    else:
        gt_palm, palm_ok = palm_from_openpose(gt, inp.palm_method), derived_ok
        gt_wrist, wrist_ok = gt[:, 0], valid[:, 0]

    # hand3d: palm as joint 0 of both skeletons, root-relative, prediction scaled by the middle MCP-PIP bone.
    gt_p, pred_p = replace_root(gt, gt_palm), replace_root(pred, palm_from_openpose(pred, inp.palm_method))
    valid_p = valid.copy()
    valid_p[:, 0] = palm_ok
    ok_palm = palm_ok & valid[:, OPENPOSE_MIDDLE_MCP] & valid[:, MIDDLE_PIP]
    n_valid = out.add_stats("palm", align_hand3d_palm(pred_p, gt_p), gt_p, valid_p & ok_palm[:, None], inp.grid)
    out.add_stats("palm_noscale", root_align(pred_p, gt_p, 0), gt_p, valid_p & palm_ok[:, None], inp.grid)

    # minimal-hand re-implementation: wrist skeleton, root joint 9, scale by bone 0-9.
    gt_w = replace_root(gt, gt_wrist)
    valid_w = valid.copy()
    valid_w[:, 0] = wrist_ok
    skipped_j9 = _add_j9(out, pred, gt_w, valid_w, wrist_ok, inp.grid)
    out.counts = {**_counts(inp.num_frames, int(ok_palm.sum()), n_valid), "num_skipped_frames_j9": skipped_j9}
    return out


def _add_rootrel(out: CoreResult, inp: EvalInputs) -> tuple[np.ndarray, int]:
    """Root-relative (wrist) statistics; returns the frames with a valid root and the number of valid joints."""
    root_ok = inp.valid[:, 0]
    return root_ok, out.add_stats("rootrel", root_align(inp.pred, inp.gt, 0), inp.gt, inp.valid & root_ok[:, None], inp.grid)


def _add_j9(out: CoreResult, pred: np.ndarray, gt: np.ndarray, valid: np.ndarray, root_ok: np.ndarray,
            grid: np.ndarray) -> int:
    """Statistics after rooting at joint 9 and scaling by bone 0-9; returns the frames that could not be aligned."""
    ok = root_ok & valid[:, OPENPOSE_MIDDLE_MCP]
    out.add_stats("j9", align_joint9_bone_scale(pred, gt), gt, valid & ok[:, None], grid)
    return int(len(ok) - ok.sum())


def _run_rhd(inp: EvalInputs) -> CoreResult:
    out = CoreResult()
    root_ok, n_valid = _add_rootrel(out, inp)
    skipped_j9 = _add_j9(out, inp.pred, inp.gt, inp.valid, root_ok, inp.grid)
    out.counts = {**_counts(inp.num_frames, int(root_ok.sum()), n_valid), "num_skipped_frames_j9": skipped_j9}
    return out


def _mesh_metrics(inp: EvalInputs, out: CoreResult, joint_valid: np.ndarray) -> None:
    """Mesh errors (same topology) and F@5/F@15, unaligned and Procrustes-aligned (FreiHAND/HO-3D style).

    With the same vertex count the mesh gets its own Procrustes alignment (as the FreiHAND/HO-3D scripts do
    for MANO meshes); otherwise the transform estimated on the joints is applied to the vertices.
    """
    if inp.pred_verts is None or inp.gt_verts is None:
        return
    ok = inp.gt_verts_valid if inp.gt_verts_valid is not None else np.ones(inp.num_frames, dtype=bool)
    pv, gv = inp.pred_verts[ok], inp.gt_verts[ok]
    out.counts["num_mesh_frames"] = int(ok.sum())
    if pv.shape[0] == 0:
        return
    same_topology = pv.shape[1] == gv.shape[1]
    if same_topology:
        vvalid = np.ones(pv.shape[:2], dtype=bool)
        out.add_stats("mesh_abs", pv, gv, vvalid, inp.grid, mean_name="mpvpe_mm")
        pv_al = procrustes_align(pv, gv)
        out.add_stats("mesh_pa", pv_al, gv, vvalid, inp.grid, mean_name="mpvpe_mm")
    else:
        _, tf = procrustes_align(inp.pred[ok], inp.gt[ok], joint_valid[ok], return_transform=True)
        pv_al = apply_similarity(pv, tf)
    f_abs = fscore(pv, gv, FSCORE_THRESHOLDS_MM).mean(axis=0)
    f_pa = fscore(pv_al, gv, FSCORE_THRESHOLDS_MM).mean(axis=0)
    for t, fa, fp in zip(FSCORE_THRESHOLDS_MM, f_abs, f_pa, strict=True):
        out.metrics[f"f{t:g}"] = float(fa)
        out.metrics[f"pa_f{t:g}"] = float(fp)


def _run_freihand(inp: EvalInputs) -> CoreResult:
    out = CoreResult()
    n_valid = out.add_stats("abs", inp.pred, inp.gt, inp.valid, inp.grid)
    out.add_stats("pa", procrustes_align(inp.pred, inp.gt, inp.valid), inp.gt, inp.valid, inp.grid)
    _mesh_metrics(inp, out, inp.valid)
    used = int(inp.valid.any(axis=1).sum())
    out.counts = {**_counts(inp.num_frames, used, n_valid), **out.counts}
    return out


def _run_ho3d(inp: EvalInputs) -> CoreResult:
    out = CoreResult()
    idx = from_openpose_index("mano")  # OpenPose -> MANO+tips, the order HO-3D's eval.py works in
    pred, gt, valid = inp.pred[:, idx], inp.gt[:, idx], inp.valid[:, idx]
    n_valid = out.add_stats("abs", pred, gt, valid, inp.grid)
    out.add_stats("pa", procrustes_align(pred, gt, valid), gt, valid, inp.grid)
    ok_sc = valid[:, 0] & valid[:, 4]  # wrist and Middle_1 define align_sc_tr
    out.add_stats("sc_tr", align_ho3d_sc_tr(pred, gt), gt, valid & ok_sc[:, None], inp.grid)
    _mesh_metrics(inp, out, valid)
    used = int(valid.any(axis=1).sum())
    out.counts = {**_counts(inp.num_frames, used, n_valid), **out.counts,
                  "num_skipped_frames_sc_tr": int(inp.num_frames - ok_sc.sum())}
    return out


def _run_synthetic(inp: EvalInputs) -> CoreResult:
    out = CoreResult()
    root_ok, n_valid = _add_rootrel(out, inp)
    out.add_stats("abs", inp.pred, inp.gt, inp.valid, inp.grid)
    out.add_stats("pa", procrustes_align(inp.pred, inp.gt, inp.valid), inp.gt, inp.valid, inp.grid)
    tips_used, _ = _fingertips(inp, out, "tips")
    _mesh_metrics(inp, out, inp.valid)
    out.counts = {**_counts(inp.num_frames, int(root_ok.sum()), n_valid), **out.counts,
                  "num_skipped_frames_tips": int(inp.num_frames - tips_used)}
    return out


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol(
            "dexter_object",
            "Dexter+Object: 5 fingertips, prediction aligned by valid-tip centroid and mean spread, frames with "
            "< 2 valid tips skipped; pooled 3D PCK/AUC (datasets.md §5).",
            "20-50mm", "pooled", "tips_auc", "openpose (tips 4, 8, 12, 16, 20)", _run_fingertip_protocol,
        ),
        Protocol(
            "egodexter",
            "EgoDexter: same fingertip protocol as Dexter+Object (datasets.md §5).",
            "20-50mm", "pooled", "tips_auc", "openpose (tips 4, 8, 12, 16, 20)", _run_fingertip_protocol,
        ),
        Protocol(
            "stb",
            "STB: 21 joints, palm-rooted; 'palm' = hand3d (palm root, prediction scaled by the GT middle "
            "MCP-PIP bone), 'palm_noscale' = palm root only, 'j9' = minimal-hand (root 9, bone 0-9 scale).",
            "20-50mm", "per_keypoint", "palm_auc", "openpose (joint 0 = palm for 'palm*' variants)", _run_stb,
        ),
        Protocol(
            "rhd",
            "RHD: 21 joints; 'rootrel' = wrist root-relative, 'j9' = minimal-hand (root 9, bone 0-9 scale).",
            "20-50mm", "per_keypoint", "rootrel_auc", "openpose", _run_rhd,
        ),
        Protocol(
            "ho3d",
            "HO-3D (eval.py): MANO+tips order; unaligned ('abs'), Procrustes ('pa'), scale+translation "
            "('sc_tr': wrist and bone 0-4); mesh errors and F@5/F@15 when vertices are given.",
            "0-50mm-100", "per_keypoint", "pa_mpjpe_mm", "mano+tips", _run_ho3d, uses_verts=True,
        ),
        Protocol(
            "freihand",
            "FreiHAND (eval.py): keypoint and mesh errors unaligned ('abs') and Procrustes ('pa'); F@5/F@15.",
            "0-50mm-100", "per_keypoint", "pa_mpjpe_mm", "openpose", _run_freihand, uses_verts=True,
        ),
        Protocol(
            "synthetic",
            "hoi_adapt synthetic benchmark: wrist root-relative 21 joints ('rootrel'), unaligned ('abs'), "
            "Procrustes ('pa'), D+O-style fingertips ('tips', pooled PCK); mesh metrics when given.",
            "20-50mm", "per_keypoint", "rootrel_mpjpe_mm", "openpose", _run_synthetic, uses_verts=True,
        ),
    )
}


def get_protocol(name: str) -> Protocol:
    key = name.lower().replace("-", "_").replace("+", "_")
    key = {"do": "dexter_object", "dexter_object": "dexter_object", "ed": "egodexter", "eo": "egodexter",
           "ho3d_v2": "ho3d", "ho3d_v3": "ho3d"}.get(key, key)
    if key not in PROTOCOLS:
        raise ValueError(f"unknown evaluation protocol {name!r}; known: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[key]


# ---------------------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------------------
def _prepare(
    pred_joints: Any, gt_joints: Any, gt_valid: Any, pred_verts: Any, gt_verts: Any, grid: ThresholdGrid,
    root_is_palm: bool, palm_method: str,
) -> EvalInputs:
    pred = np.asarray(pred_joints, dtype=np.float64)
    gt = np.asarray(gt_joints, dtype=np.float64)
    if pred.ndim != 3 or pred.shape[1:] != (NUM_JOINTS, 3):
        raise ValueError(f"pred_joints must have shape (N, 21, 3), got {pred.shape}")
    if gt.shape != pred.shape:
        raise ValueError(f"gt_joints must have the shape of pred_joints {pred.shape}, got {gt.shape}")
    if pred.shape[0] == 0:
        raise ValueError("no frames to evaluate")
    if not np.all(np.isfinite(pred)):
        raise ValueError(f"pred_joints contains {int((~np.isfinite(pred)).sum())} non-finite values")
    v = np.asarray(gt_valid)
    if v.shape != pred.shape[:2]:
        raise ValueError(f"gt_valid must have shape {pred.shape[:2]}, got {v.shape}")
    v = (v > 0.5) if np.issubdtype(v.dtype, np.floating) else v.astype(bool)
    v = v & np.all(np.isfinite(gt), axis=-1)
    gt = np.where(v[..., None], gt, 0.0)
    if palm_method not in PALM_METHODS:
        raise ValueError(f"unknown palm method {palm_method!r}; known: {', '.join(PALM_METHODS)}")

    pv = gv = gvv = None
    if (pred_verts is None) != (gt_verts is None):
        raise ValueError("pred_verts and gt_verts must be given together")
    if pred_verts is not None:
        pv = np.asarray(pred_verts, dtype=np.float64)
        gv = np.asarray(gt_verts, dtype=np.float64)
        if pv.ndim != 3 or pv.shape[2] != 3 or pv.shape[0] != pred.shape[0]:
            raise ValueError(f"pred_verts must have shape (N={pred.shape[0]}, V, 3), got {pv.shape}")
        if gv.ndim != 3 or gv.shape[2] != 3 or gv.shape[0] != pred.shape[0]:
            raise ValueError(f"gt_verts must have shape (N={pred.shape[0]}, V, 3), got {gv.shape}")
        if not np.all(np.isfinite(pv)):
            raise ValueError("pred_verts contains non-finite values")
        gvv = np.all(np.isfinite(gv), axis=(1, 2))
        gv = np.where(gvv[:, None, None], gv, 0.0)
    return EvalInputs(pred, gt, v, grid, pv, gv, gvv, bool(root_is_palm), palm_method)


def _package(core: CoreResult) -> dict[str, Any]:
    return {"metrics": {k: float(x) for k, x in core.metrics.items()}, **{k: int(c) for k, c in core.counts.items()}}


def evaluate_protocol(
    name: str,
    pred_joints: np.ndarray,
    gt_joints: np.ndarray,
    gt_valid: np.ndarray,
    *,
    pred_verts: np.ndarray | None = None,
    gt_verts: np.ndarray | None = None,
    sequences: np.ndarray | list[str] | None = None,
    root_is_palm: bool = False,
    grid: str | ThresholdGrid | None = None,
    palm_method: str = DEFAULT_PALM_METHOD,
) -> dict[str, Any]:
    """Evaluate predictions under a named protocol (see the module docstring for the result layout).

    Args:
        name: a key of :data:`PROTOCOLS` (aliases: ``do``, ``ed``/``eo``, ``ho3d_v2``/``ho3d_v3``).
        pred_joints: (N, 21, 3) metres, OpenPose order, wrist at joint 0.
        gt_joints: (N, 21, 3) metres, OpenPose order (joint 0 = palm centre iff ``root_is_palm``).
        gt_valid: (N, 21) bool (or 0/1 floats); non-finite GT joints are treated as invalid.
        pred_verts, gt_verts: optional (N, V, 3) metres for mesh metrics (ho3d, freihand, synthetic).
        sequences: optional (N,) sequence ids; adds a ``per_sequence`` breakdown.
        root_is_palm: STB only — the GT's joint 0 is STB's annotated palm centre rather than a wrist.
        grid: override the protocol's threshold grid (a name from ``THRESHOLD_GRIDS`` or a grid).
        palm_method: how a palm centre is derived from a wrist-rooted skeleton (STB; see ``PALM_METHODS``).
    """
    proto = get_protocol(name)
    g = get_grid(grid if grid is not None else proto.grid)
    inp = _prepare(pred_joints, gt_joints, gt_valid, pred_verts, gt_verts, g, root_is_palm, palm_method)
    core = proto.run(inp)
    settings: dict[str, Any] = {"joint_order": proto.joint_order, "units": "mm"}
    if proto.name == "stb":
        settings.update(root_is_palm=inp.root_is_palm, palm_method=palm_method,
                        palm_method_source=PALM_METHODS[palm_method][2])
    result: dict[str, Any] = {
        "protocol": proto.name,
        "description": proto.description,
        "threshold_grid": g.name,
        "threshold_grid_source": g.source,
        "thresholds_mm": list(g.thresholds_mm),
        "pck_mode": proto.pck_mode,
        "primary_metric": proto.primary_metric,
        "settings": settings,
        **_package(core),
        "pck": core.pck,
        "pck_modes": core.pck_modes,
    }
    if sequences is not None:
        seq = np.asarray(sequences).astype(str).reshape(-1)
        if seq.shape[0] != inp.num_frames:
            raise ValueError(f"sequences must have length {inp.num_frames}, got {seq.shape[0]}")
        result["per_sequence"] = {s: _package(proto.run(inp.subset(seq == s))) for s in sorted(set(seq))}
    return result
