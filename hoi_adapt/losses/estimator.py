"""Losses of the mesh estimator E (method.md, "E on labeled hand-only images" and "E on translated images").

Every term is masked by the per-sample ``has_*`` flags and per-joint validity and normalised by the number
of valid elements, so batches that mix labelled and unlabelled datasets are handled without special cases.
Terms are returned unweighted in a dict (for logging) next to the weighted total; a weight of 0 skips the
computation of its term.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from pytorch3d.transforms import axis_angle_to_matrix, matrix_to_axis_angle
from torch import nn

from hoi_adapt.render.cameras import resize_intrinsics

EPS = 1e-6


def _masked_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    weights = weights.to(values.dtype)
    while weights.dim() < values.dim():
        weights = weights.unsqueeze(-1)
    weights = weights.expand_as(values)
    return (values * weights).sum() / weights.sum().clamp(min=EPS)


def gaussian_heatmaps(uv: torch.Tensor, size: tuple[int, int], stride: float, sigma: float = 1.5) -> torch.Tensor:
    """Target heatmaps (B,J,h,w) with a Gaussian of ``sigma`` heatmap pixels at each keypoint.

    ``uv`` are input-image pixel coordinates (OpenCV centres); heatmap pixel i covers input pixels
    [i*stride, (i+1)*stride), so its centre is at input coordinate (i + 0.5) * stride - 0.5.
    """
    h, w = size
    centre = (uv + 0.5) / stride - 0.5
    ys = torch.arange(h, device=uv.device, dtype=uv.dtype).view(1, 1, h, 1)
    xs = torch.arange(w, device=uv.device, dtype=uv.dtype).view(1, 1, 1, w)
    d2 = (xs - centre[..., 0, None, None]) ** 2 + (ys - centre[..., 1, None, None]) ** 2
    return torch.exp(-d2 / (2 * sigma**2))


def heatmap_loss(pred: torch.Tensor, uv: torch.Tensor, valid: torch.Tensor, stride: float, sigma: float = 1.5) -> torch.Tensor:
    """Mean squared error to Gaussian targets over valid joints (scaled so a perfect miss is ~1)."""
    target = gaussian_heatmaps(uv, tuple(pred.shape[-2:]), stride, sigma)
    per_joint = ((pred - target) ** 2).mean(dim=(-1, -2)) / target.pow(2).mean(dim=(-1, -2)).clamp(min=EPS)
    return _masked_mean(per_joint, valid)


def joints3d_loss(pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor, root: int = 0) -> torch.Tensor:
    """Root-relative L1 (metres) over joints valid together with the root."""
    ok = valid * valid[:, root : root + 1]
    rel_pred = pred - pred[:, root : root + 1]
    rel_gt = gt - gt[:, root : root + 1]
    return _masked_mean((rel_pred - rel_gt).abs().sum(-1), ok)


def camera_joints_loss(pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor, clamp: float = 0.2) -> torch.Tensor:
    """Camera-frame L1 (metres, per coordinate clamped at ``clamp``): supervises placement and depth.

    Root-relative terms are blind to a hand drawn smaller and farther away; this one is not.
    """
    return _masked_mean((pred - gt).abs().clamp(max=clamp).sum(-1), valid)


def reprojection_loss(pred_uv: torch.Tensor, gt_uv: torch.Tensor, valid: torch.Tensor, image_size: int) -> torch.Tensor:
    """L1 in units of the image size, robust to far-off predictions early in training."""
    err = ((pred_uv - gt_uv).abs() / image_size).clamp(max=1.0).sum(-1)
    return _masked_mean(err, valid)


def mask_loss(logits: torch.Tensor, mask: torch.Tensor, has_mask: torch.Tensor) -> torch.Tensor:
    """BCE of the 2D-evidence mask (at head resolution) against the area-downsampled ground-truth mask."""
    target = F.adaptive_avg_pool2d(mask.unsqueeze(1).to(logits.dtype), logits.shape[-2:])
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(dim=(1, 2, 3))
    return _masked_mean(bce, has_mask)


def silhouette_loss(silhouette: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor, ignore: torch.Tensor | None = None) -> torch.Tensor:
    """Squared error between a rendered soft silhouette and a mask, resampled to the silhouette size.

    ``ignore`` (B,H,W) marks pixels whose hand/no-hand status is unknown (e.g. behind an object when only
    the visible-hand mask exists); they do not contribute.
    """
    size = silhouette.shape[-2:]
    target = F.adaptive_avg_pool2d(mask.unsqueeze(1).to(silhouette.dtype), size)[:, 0]
    keep = torch.ones_like(target)
    if ignore is not None:
        keep = 1.0 - (F.adaptive_max_pool2d(ignore.unsqueeze(1).to(silhouette.dtype), size)[:, 0] > 0).to(silhouette.dtype)
    per_sample = ((silhouette - target) ** 2 * keep).sum(dim=(1, 2)) / keep.sum(dim=(1, 2)).clamp(min=1.0)
    return _masked_mean(per_sample, weight)


def mano_prior(betas: torch.Tensor, hand_pose: torch.Tensor, hands_mean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Shape prior mean(beta^2) and pose prior: squared deviation of articulation from the relaxed mean."""
    aa = matrix_to_axis_angle(hand_pose).reshape(hand_pose.shape[0], -1)
    return betas.pow(2).mean(), (aa - hands_mean.to(aa)).pow(2).mean()


def mano_param_loss(
    iterations: list[dict[str, torch.Tensor]], gt_pose: torch.Tensor, gt_betas: torch.Tensor, has_mano: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(articulation + shape, global rotation) L2 to ground-truth MANO parameters, over every refinement step.

    The global rotation is its own term: averaged with the 15 finger rotations it would weigh 1/16, yet it
    moves every joint. Supervising each regressor iteration (not only the last) is HMR's recipe.
    """
    gt_rot = axis_angle_to_matrix(gt_pose.view(-1, 16, 3))
    params, orient = [], []
    for it in iterations:
        params.append((it["hand_pose"] - gt_rot[:, 1:]).pow(2).mean(dim=(1, 2, 3)) + 0.1 * (it["betas"] - gt_betas).pow(2).mean(dim=1))
        orient.append((it["global_orient"] - gt_rot[:, 0]).pow(2).mean(dim=(1, 2)))
    return _masked_mean(torch.stack(params).mean(0), has_mano), _masked_mean(torch.stack(orient).mean(0), has_mano)


def rotation_6d_conditioning(iterations: list[dict[str, torch.Tensor]]) -> torch.Tensor:
    """Mean squared deviation of every 6D rotation pair from orthonormal, over every refinement step.

    Gram-Schmidt normalises the pair's first vector and the second's part orthogonal to it; as either nears zero
    its gradient grows as 1 / norm (a 60x gradient spike in a demo stage 0, experiments/README.md). The decoded
    rotation does not depend on the pair's scale or skew, so this only keeps the decoding well conditioned.
    """
    pairs = torch.stack([it["pose6d"] for it in iterations]).unflatten(-1, (2, 3))  # (T,B,16,2,3)
    gram = pairs @ pairs.transpose(-1, -2)
    return (gram - torch.eye(2, dtype=gram.dtype, device=gram.device)).pow(2).mean()


def consistency_loss(joints_a: torch.Tensor, joints_b: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Root-relative L1 between two estimates of the same hand (e.g. the two passes of the pipeline)."""
    ones = torch.ones(joints_a.shape[:2], device=joints_a.device)
    per = ((joints_a - joints_a[:, :1]) - (joints_b - joints_b[:, :1])).abs().sum(-1)
    return _masked_mean(per, ones * weight.unsqueeze(1))


@dataclass
class EstimatorLossWeights:
    """Weights of the estimator losses (every one configurable; 0 disables and skips a term)."""

    heatmap: float = 10.0
    keypoints: float = 10.0
    joints3d: float = 100.0
    camera_joints: float = 10.0
    reprojection: float = 10.0
    mask: float = 0.5
    silhouette: float = 1.0
    mano_params: float = 1.0
    global_orient: float = 5.0
    beta_prior: float = 0.01
    pose_prior: float = 0.005
    rotation_6d: float = 0.0


class EstimatorLoss(nn.Module):
    """Combines the estimator losses for a batch in the sample schema.

    Args:
        weights: per-term weights.
        renderer: a :class:`hoi_adapt.render.renderer.HandObjectRenderer` for the silhouette term (None
            disables it).
        silhouette_size: resolution of the rendered silhouette (keep small on CPU: cost ~ pixels x faces).
        heatmap_sigma: Gaussian width of heatmap targets in heatmap pixels.
    """

    def __init__(self, weights: EstimatorLossWeights | None = None, renderer: nn.Module | None = None,
                 silhouette_size: int = 32, heatmap_sigma: float = 1.5) -> None:
        super().__init__()
        self.weights = weights or EstimatorLossWeights()
        self.renderer = renderer
        self.silhouette_size = silhouette_size
        self.heatmap_sigma = heatmap_sigma

    def rendered_silhouette(self, out: Any, faces: torch.Tensor, K: torch.Tensor, image_size: int) -> torch.Tensor:
        size = (self.silhouette_size, self.silhouette_size)
        K_small = resize_intrinsics(K, (image_size, image_size), size)
        return self.renderer.soft_silhouette(out.vertices, faces, K_small, size)

    def forward(self, out: Any, batch: dict[str, Any], faces: torch.Tensor, hands_mean: torch.Tensor,
                silhouette_mask_key: str = "hand_mask") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        w = self.weights
        image_size = batch["image"].shape[-1]
        terms: dict[str, torch.Tensor] = {}
        has_3d, has_2d = batch["has_3d"], batch["has_2d"]
        if w.heatmap:
            stride = image_size / out.heatmaps.shape[-1]
            terms["heatmap"] = heatmap_loss(out.heatmaps, batch["joints2d"], batch["joints2d_valid"] * has_2d[:, None], stride, self.heatmap_sigma)
        if w.keypoints:
            # the heatmaps' soft-argmax keypoints, with the reprojection term's robust L1: the 2D evidence as points
            terms["keypoints"] = reprojection_loss(out.keypoints2d, batch["joints2d"], batch["joints2d_valid"] * has_2d[:, None], image_size)
        if w.joints3d:
            terms["joints3d"] = joints3d_loss(out.joints3d, batch["joints3d"], batch["joints3d_valid"] * has_3d[:, None])
        if w.camera_joints:
            terms["camera_joints"] = camera_joints_loss(out.joints3d, batch["joints3d"], batch["joints3d_valid"] * has_3d[:, None])
        if w.reprojection:
            terms["reprojection"] = reprojection_loss(out.joints2d, batch["joints2d"], batch["joints2d_valid"] * has_2d[:, None], image_size)
        if w.mask:
            terms["mask"] = mask_loss(out.mask_logits, batch["hand_mask"], batch["has_mask"])
        if w.silhouette and self.renderer is not None:
            sil = self.rendered_silhouette(out, faces, batch["K"], image_size)
            full = batch["has_mask_full"]
            # Where only the visible mask exists, the object may hide hand pixels: ignore them.
            target = torch.where(full[:, None, None] > 0, batch["hand_mask_full"], batch[silhouette_mask_key])
            ignore = batch["object_mask"] * (1.0 - full[:, None, None])
            terms["silhouette"] = silhouette_loss(sil, target, torch.clamp(batch["has_mask"] + full, max=1.0), ignore)
        if w.mano_params or w.global_orient:
            terms["mano_params"], terms["global_orient"] = mano_param_loss(out.iterations, batch["mano_pose"], batch["mano_betas"], batch["has_mano"])
        if w.rotation_6d:
            terms["rotation_6d"] = rotation_6d_conditioning(out.iterations)
        if w.beta_prior or w.pose_prior:
            terms["beta_prior"], terms["pose_prior"] = mano_prior(out.betas, out.hand_pose, hands_mean)
        total = sum(getattr(w, k) * v for k, v in terms.items())
        return total, terms
