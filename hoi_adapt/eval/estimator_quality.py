"""Quality of the mesh estimator E on labelled images: 3D accuracy *and* whether the mesh lands on the hand.

Root-relative errors alone hide a hand drawn at half size in the wrong place; the projected-size ratio and
the silhouette IoU catch exactly that, and the global-rotation and root-depth errors say which part of the
camera-frame estimate is wrong. The chance level (the mean root-relative training skeleton predicted for
every image) is the yardstick every number is read against. Used by the learnability test and by
``experiments/bench_estimator.py``.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from pytorch3d.transforms import axis_angle_to_matrix
from torch.utils.data import DataLoader, Dataset

from hoi_adapt.eval.protocols import evaluate_protocol
from hoi_adapt.render.renderer import HandObjectRenderer

QUALITY_KEYS: tuple[str, ...] = ("mpjpe_mm", "pa_mpjpe_mm", "auc", "kp2d_px", "size_ratio", "iou")


def box_diagonal(uv: torch.Tensor) -> torch.Tensor:
    """(B,) diagonal of the axis-aligned 2D box around (B,J,2) points: the projected hand size."""
    return (uv.amax(dim=1) - uv.amin(dim=1)).norm(dim=-1)


def rotation_error_deg(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """(B,) geodesic angle between (B,3,3) rotations, degrees."""
    cos = ((pred.transpose(1, 2) @ gt).diagonal(dim1=1, dim2=2).sum(-1) - 1.0) / 2.0
    return torch.rad2deg(torch.arccos(cos.clamp(-1.0, 1.0)))


def mask_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B,) IoU of two boolean (B,H,W) masks; 0 where both are empty (nothing agreed on)."""
    a, b = a.flatten(1), b.flatten(1)
    inter = (a & b).sum(1).float()
    union = (a | b).sum(1).float()
    return torch.where(union > 0, inter / union.clamp(min=1.0), torch.zeros_like(union))


def protocol_scores(pred3d: np.ndarray, gt3d: np.ndarray) -> dict[str, float]:
    """Root-relative MPJPE, PA-MPJPE and AUC 20-50 mm of the ``synthetic`` protocol (all 21 joints valid)."""
    res = evaluate_protocol("synthetic", pred3d, gt3d, np.ones(gt3d.shape[:2], dtype=bool))["metrics"]
    return {"mpjpe_mm": res["rootrel_mpjpe_mm"], "pa_mpjpe_mm": res["pa_mpjpe_mm"], "auc": res["rootrel_auc"]}


def _joints3d(dataset: Dataset) -> np.ndarray:
    return np.stack([dataset[i]["joints3d"].numpy() for i in range(len(dataset))]).astype(np.float64)  # type: ignore[arg-type]


def mean_skeleton(dataset: Dataset) -> np.ndarray:
    """(21,3) mean root-relative skeleton of a labelled dataset: the chance-level prediction."""
    joints = _joints3d(dataset)
    return (joints - joints[:, :1]).mean(0)


def chance_scores(mean_rel: np.ndarray, dataset: Dataset) -> dict[str, float | None]:
    """Scores of predicting ``mean_rel`` (root-relative) for every image of ``dataset``."""
    gt = _joints3d(dataset)
    pred = np.broadcast_to(mean_rel, gt.shape) + gt[:, :1]
    return {**protocol_scores(pred, gt), "kp2d_px": None, "size_ratio": None, "iou": None}


@torch.no_grad()
def score_estimator(estimator: torch.nn.Module, dataset: Dataset, batch_size: int = 32,
                    num_workers: int = 0) -> dict[str, Any]:
    """Every quality figure of ``estimator`` on a labelled dataset (hand-object samples need amodal masks).

    Returns the figures of :data:`QUALITY_KEYS` (size ratio as the median of predicted / true box diagonal
    of the 21 projected joints; IoU of the rendered hard silhouette with the full hand mask) plus
    diagnostics: ``rot_err_deg`` (median global-rotation error), ``depth_err_mm`` (median absolute wrist
    depth error) and ``num_images``.
    """
    was_training = estimator.training
    estimator.eval()
    renderer: HandObjectRenderer | None = None
    faces = estimator.hand_model.faces
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in ("pred3d", "gt3d", "kp2d", "ratio", "iou", "rot", "depth")}
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers):
        out = estimator(batch["image"], batch["K"])
        size = tuple(batch["image"].shape[-2:])
        if renderer is None:
            renderer = HandObjectRenderer(image_size=size, faces_per_pixel=1)
        parts["pred3d"].append(out.joints3d.double())
        parts["gt3d"].append(batch["joints3d"].double())
        parts["kp2d"].append((out.joints2d - batch["joints2d"]).norm(dim=-1).mean(1))
        parts["ratio"].append(box_diagonal(out.joints2d) / box_diagonal(batch["joints2d"]).clamp(min=1e-6))
        mask = renderer(out.vertices, faces, batch["K"], image_size=size).hand_full_mask
        gt_mask = torch.where(batch["has_mask_full"][:, None, None] > 0, batch["hand_mask_full"], batch["hand_mask"])
        parts["iou"].append(mask_iou(mask > 0.5, gt_mask > 0.5))
        gt_rot = axis_angle_to_matrix(batch["mano_pose"][:, :3].float())
        parts["rot"].append(rotation_error_deg(out.global_orient.double(), gt_rot.double()))
        parts["depth"].append((out.joints3d[:, 0, 2] - batch["joints3d"][:, 0, 2]).abs() * 1000.0)
    estimator.train(was_training)
    t = {k: torch.cat(v) for k, v in parts.items()}
    scores: dict[str, Any] = protocol_scores(t["pred3d"].numpy(), t["gt3d"].numpy())
    scores.update(
        kp2d_px=float(t["kp2d"].mean()), size_ratio=float(t["ratio"].median()), iou=float(t["iou"].mean()),
        rot_err_deg=float(t["rot"].median()), depth_err_mm=float(t["depth"].median()), num_images=int(t["gt3d"].shape[0]),
    )
    return scores

