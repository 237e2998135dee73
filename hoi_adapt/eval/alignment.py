"""Alignments applied to predictions before errors are measured, one per published protocol.

All functions take joints in metres, shape (J, 3) or batched (N, J, 3), and return arrays of the same shape
(float64). Each is re-derived from the protocol's definition in datasets.md §5/§7/§9:

* :func:`root_relative` / :func:`root_align` — subtract the root / translate so the roots coincide.
* :func:`bone_scale_align` — translate the root onto the GT root and scale by a GT/pred bone-length ratio;
  the presets :func:`align_hand3d_palm`, :func:`align_joint9_bone_scale` and :func:`align_ho3d_sc_tr` fix
  the root and bone of hand3d's STB protocol, minimal-hand's STB/RHD re-implementation and HO-3D's
  ``align_sc_tr``.
* :func:`fingertip_align` — D+O / EgoDexter: centroid and mean-spread of the *valid* tips.
* :func:`procrustes_align` — similarity Procrustes (scale, proper rotation, translation; no reflection).
* :func:`palm_from_openpose` / :func:`wrist_from_palm` — the STB palm-centre root and its inverse.
"""
from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np

from hoi_adapt.hand.joint_maps import OPENPOSE_MIDDLE_MCP, OPENPOSE_NAMES, OPENPOSE_ROOT

_EPS = 1e-12

RING_MCP = OPENPOSE_NAMES.index("ring_mcp")  # 13
MIDDLE_PIP = OPENPOSE_NAMES.index("middle_pip")  # 10


def _points(x: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim not in (2, 3) or a.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (J, 3) or (N, J, 3), got {a.shape}")
    return a


def _pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    p, g = _points(pred, "pred"), _points(gt, "gt")
    if p.shape != g.shape:
        raise ValueError(f"pred and gt shapes differ: {p.shape} vs {g.shape}")
    single = p.ndim == 2
    return (p[None], g[None], True) if single else (p, g, False)


# ---------------------------------------------------------------------------------------------------------
# Root and bone-length alignments
# ---------------------------------------------------------------------------------------------------------
def root_relative(joints: np.ndarray, root: int = OPENPOSE_ROOT) -> np.ndarray:
    """Joints (..., J, 3) minus their root joint."""
    j = np.asarray(joints, dtype=np.float64)
    return j - j[..., root : root + 1, :]


def root_align(pred: np.ndarray, gt: np.ndarray, root: int = OPENPOSE_ROOT) -> np.ndarray:
    """Translate ``pred`` so its root joint lands on the GT root (errors become root-relative)."""
    p, g, single = _pair(pred, gt)
    out = p - p[:, root : root + 1] + g[:, root : root + 1]
    return out[0] if single else out


def bone_scale_align(
    pred: np.ndarray, gt: np.ndarray, root: int, bone: tuple[int, int]
) -> np.ndarray:
    """``gt[root] + s * (pred - pred[root])`` with ``s = |gt[a]-gt[b]| / |pred[a]-pred[b]|``.

    A degenerate predicted bone (length ~0) cannot define a scale; then ``s = 1`` (translation only).
    """
    p, g, single = _pair(pred, gt)
    a, b = bone
    gt_len = np.linalg.norm(g[:, a] - g[:, b], axis=-1)
    pred_len = np.linalg.norm(p[:, a] - p[:, b], axis=-1)
    s = np.where(pred_len > _EPS, gt_len / np.where(pred_len > _EPS, pred_len, 1.0), 1.0)
    out = g[:, root : root + 1] + s[:, None, None] * (p - p[:, root : root + 1])
    return out[0] if single else out


def align_hand3d_palm(pred_palm_rooted: np.ndarray, gt_palm_rooted: np.ndarray) -> np.ndarray:
    """hand3d's STB protocol: root = joint 0 (the palm centre), scale by the middle MCP–PIP bone.

    hand3d centres the GT at the palm and multiplies its scale-normalised, root-relative prediction by the
    GT length of the bone middle MCP–PIP (RHD indices 12–11 = OpenPose 9–10). For a metric prediction this
    is the same as normalising by the predicted bone and multiplying by the GT bone. Both inputs are in
    OpenPose order **with joint 0 replaced by the palm centre** (see :func:`palm_from_openpose`).
    """
    return bone_scale_align(pred_palm_rooted, gt_palm_rooted, OPENPOSE_ROOT, (OPENPOSE_MIDDLE_MCP, MIDDLE_PIP))


def align_joint9_bone_scale(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """minimal-hand's STB/RHD re-implementation: root = joint 9 (middle MCP), scale by bone 0–9 (wrist)."""
    return bone_scale_align(pred, gt, OPENPOSE_MIDDLE_MCP, (OPENPOSE_ROOT, OPENPOSE_MIDDLE_MCP))


def align_ho3d_sc_tr(pred_mano: np.ndarray, gt_mano: np.ndarray) -> np.ndarray:
    """HO-3D ``align_sc_tr`` in **MANO+tips order**: wrist onto GT wrist, scale by bone 0–4 (wrist–Middle_1).

    Index 4 in MANO+tips order is Middle_1, i.e. OpenPose joint 9, so this equals
    ``bone_scale_align(root=0, bone=(0, 9))`` on OpenPose-ordered joints.
    """
    return bone_scale_align(pred_mano, gt_mano, 0, (0, 4))


# ---------------------------------------------------------------------------------------------------------
# Fingertip (D+O / EgoDexter) alignment
# ---------------------------------------------------------------------------------------------------------
class FingertipAlignment(NamedTuple):
    aligned: np.ndarray  # (N, K, 3) aligned predicted tips; rows of unused frames are the raw prediction
    used: np.ndarray  # (N,) bool: frames with at least ``min_valid`` valid GT tips


def fingertip_align(
    pred_tips: np.ndarray, gt_tips: np.ndarray, valid: np.ndarray | None = None, min_valid: int = 2
) -> FingertipAlignment:
    """Align predicted tips to GT by the centroid and mean distance-to-centroid of the valid tips.

    Per frame, over the tips whose GT is valid (and finite): translate the prediction so the centroid of
    those predicted tips equals the GT centroid, and scale about it by
    ``mean |gt_i - c_gt| / mean |pred_i - c_pred|``. Frames with fewer than ``min_valid`` valid tips cannot
    define a scale and are reported as unused (datasets.md §5; protocols drop and count them). A prediction
    whose valid tips coincide (zero spread) keeps scale 1.
    """
    p, g, single = _pair(pred_tips, gt_tips)
    v = np.ones(p.shape[:2], dtype=bool) if valid is None else np.asarray(valid, dtype=bool).reshape(p.shape[:2])
    v = v & np.all(np.isfinite(g), axis=-1)
    g = np.where(v[..., None], g, 0.0)
    w = v[..., None].astype(np.float64)
    n = v.sum(axis=1)
    used = n >= min_valid
    n_safe = np.maximum(n, 1)[:, None]
    c_pred = (p * w).sum(axis=1) / n_safe
    c_gt = (g * w).sum(axis=1) / n_safe
    spread_pred = (np.linalg.norm(p - c_pred[:, None], axis=-1) * v).sum(axis=1) / n_safe[:, 0]
    spread_gt = (np.linalg.norm(g - c_gt[:, None], axis=-1) * v).sum(axis=1) / n_safe[:, 0]
    s = np.where(spread_pred > _EPS, spread_gt / np.where(spread_pred > _EPS, spread_pred, 1.0), 1.0)
    aligned = c_gt[:, None] + s[:, None, None] * (p - c_pred[:, None])
    aligned = np.where(used[:, None, None], aligned, p)
    return FingertipAlignment(aligned[0] if single else aligned, used[0] if single else used)


# ---------------------------------------------------------------------------------------------------------
# Similarity Procrustes
# ---------------------------------------------------------------------------------------------------------
class SimilarityTransform(NamedTuple):
    """``aligned = scale * pred @ rotation.T + translation`` (batched over the first axis)."""

    scale: np.ndarray  # (N,)
    rotation: np.ndarray  # (N, 3, 3), det = +1
    translation: np.ndarray  # (N, 3)


def procrustes_align(
    pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None, return_transform: bool = False
) -> np.ndarray | tuple[np.ndarray, SimilarityTransform]:
    """Least-squares similarity alignment of ``pred`` onto ``gt`` (Umeyama 1991), per frame.

    Minimises ``sum_i |gt_i - (s R pred_i + t)|^2`` over the valid points with R a proper rotation: with
    centred points x, y and ``H = sum x y^T = U S V^T``, ``R = V D U^T`` where ``D = diag(1, 1, det(V U^T))``
    (the sign flip forbids reflections), ``s = tr(S D) / sum |x|^2``, ``t = mean(y) - s R mean(x)``.
    The transform is estimated on valid points and applied to all points. A prediction with zero spread gets
    ``s = 0`` (every point maps to the GT centroid), matching the FreiHAND/HO-3D scripts for constant
    predictions; a frame without valid points is returned unchanged.

    Note: the FreiHAND/HO-3D scripts use ``scipy.linalg.orthogonal_procrustes`` after Frobenius
    normalisation, which may return a reflection; results differ only for badly wrong predictions.
    """
    p, g, single = _pair(pred, gt)
    v = np.ones(p.shape[:2], dtype=bool) if valid is None else np.asarray(valid, dtype=bool).reshape(p.shape[:2])
    v = v & np.all(np.isfinite(g), axis=-1)
    g0 = np.where(v[..., None], g, 0.0)
    w = v[..., None].astype(np.float64)
    n = v.sum(axis=1)
    has = n > 0
    n_safe = np.maximum(n, 1)[:, None]
    mu_p = (p * w).sum(axis=1) / n_safe
    mu_g = (g0 * w).sum(axis=1) / n_safe
    x = (p - mu_p[:, None]) * w
    y = (g0 - mu_g[:, None]) * w
    h = np.einsum("nji,njk->nik", x, y)
    u, sv, vt = np.linalg.svd(h)
    vmat = np.swapaxes(vt, -1, -2)
    d = np.sign(np.linalg.det(vmat @ np.swapaxes(u, -1, -2)))
    d = np.where(d == 0, 1.0, d)
    dmat = np.zeros_like(h)
    dmat[:, 0, 0] = 1.0
    dmat[:, 1, 1] = 1.0
    dmat[:, 2, 2] = d
    rot = vmat @ dmat @ np.swapaxes(u, -1, -2)
    var_p = np.sum(x * x, axis=(1, 2))
    trace_sd = sv[:, 0] + sv[:, 1] + d * sv[:, 2]
    scale = np.where(var_p > _EPS, trace_sd / np.where(var_p > _EPS, var_p, 1.0), 0.0)
    # frames without any valid point: identity transform
    rot = np.where(has[:, None, None], rot, np.eye(3)[None])
    scale = np.where(has, scale, 1.0)
    trans = mu_g - scale[:, None] * np.einsum("nij,nj->ni", rot, mu_p)
    trans = np.where(has[:, None], trans, 0.0)
    aligned = scale[:, None, None] * np.einsum("nij,nkj->nki", rot, p) + trans[:, None]
    if single:
        aligned_out: np.ndarray = aligned[0]
        tf = SimilarityTransform(scale[:1], rot[:1], trans[:1])
    else:
        aligned_out, tf = aligned, SimilarityTransform(scale, rot, trans)
    return (aligned_out, tf) if return_transform else aligned_out


def apply_similarity(points: np.ndarray, tf: SimilarityTransform) -> np.ndarray:
    """Apply a transform from :func:`procrustes_align` to other points of the same frames (e.g. vertices)."""
    pts = _points(points, "points")
    single = pts.ndim == 2
    pts3 = pts[None] if single else pts
    out = tf.scale[:, None, None] * np.einsum("nij,nkj->nki", tf.rotation, pts3) + tf.translation[:, None]
    return out[0] if single else out


# ---------------------------------------------------------------------------------------------------------
# STB palm centre
# ---------------------------------------------------------------------------------------------------------
PalmMethod = Literal["ring_mcp_midpoint", "middle_mcp_2.2", "middle_mcp_midpoint"]

PALM_METHODS: dict[str, tuple[int, float, str]] = {
    # name: (MCP joint in OpenPose order, k, source); palm = mcp + (wrist - mcp) / k, wrist = mcp + k (palm - mcp)
    "ring_mcp_midpoint": (
        RING_MCP, 2.0,
        "inverse of hand3d / L. Ge STB loaders: wrist = ringMCP + 2 (palm - ringMCP) (datasets.md §0)",
    ),
    "middle_mcp_2.2": (
        OPENPOSE_MIDDLE_MCP, 2.2,
        "inverse of the Minimal-Hand-pytorch alternative: wrist = midMCP + 2.2 (palm - midMCP) (datasets.md §0)",
    ),
    "middle_mcp_midpoint": (
        OPENPOSE_MIDDLE_MCP, 2.0,
        "hand3d RHD palm option: 0.5 (wrist + middle MCP) (datasets.md §0, §8)",
    ),
}
DEFAULT_PALM_METHOD: PalmMethod = "ring_mcp_midpoint"


def _palm_params(method: str) -> tuple[int, float]:
    if method not in PALM_METHODS:
        raise ValueError(f"unknown palm method {method!r}; known: {', '.join(PALM_METHODS)}")
    mcp, k, _ = PALM_METHODS[method]
    return mcp, k


def palm_from_openpose(joints: np.ndarray, method: str = DEFAULT_PALM_METHOD) -> np.ndarray:
    """Palm-centre point (..., 3) of a wrist-rooted OpenPose skeleton (..., 21, 3).

    How STB's annotators placed the palm centre is not documented; the default inverts the conversion that
    hand3d and L. Ge's STB loaders use (``wrist = ringMCP + 2 (palm - ringMCP)``), i.e. the midpoint of the
    wrist and the ring MCP, so a GT wrist produced by those loaders maps back to the annotated palm exactly.
    """
    mcp, k = _palm_params(method)
    j = np.asarray(joints, dtype=np.float64)
    return j[..., mcp, :] + (j[..., OPENPOSE_ROOT, :] - j[..., mcp, :]) / k


def wrist_from_palm(joints_palm_rooted: np.ndarray, method: str = DEFAULT_PALM_METHOD) -> np.ndarray:
    """Wrist point (..., 3) of a skeleton whose joint 0 is the palm centre (the inverse of the above)."""
    mcp, k = _palm_params(method)
    j = np.asarray(joints_palm_rooted, dtype=np.float64)
    return j[..., mcp, :] + k * (j[..., OPENPOSE_ROOT, :] - j[..., mcp, :])


def replace_root(joints: np.ndarray, root_point: np.ndarray) -> np.ndarray:
    """Copy of ``joints`` (..., 21, 3) with joint 0 replaced by ``root_point`` (..., 3)."""
    out = np.array(joints, dtype=np.float64, copy=True)
    out[..., OPENPOSE_ROOT, :] = root_point
    return out
