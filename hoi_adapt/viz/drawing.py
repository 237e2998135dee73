"""Drawing helpers for the pictures people look at: skeletons, mesh overlays, panels of a batch."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import torch

from hoi_adapt.hand.joint_maps import OPENPOSE_BONES
from hoi_adapt.render.overlay import overlay

FINGER_COLORS = np.array(
    [[230, 60, 60], [240, 170, 40], [60, 190, 80], [50, 130, 230], [170, 80, 220]], dtype=np.uint8
)  # thumb, index, middle, ring, pinky


def to_uint8(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """(3,H,W) float in [0,1] or (H,W,3) -> (H,W,3) uint8."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().float()
        if image.dim() == 3 and image.shape[0] in (1, 3):
            image = image.permute(1, 2, 0)
        image = image.numpy()
    if image.dtype != np.uint8:
        image = (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image)


def draw_skeleton(image: np.ndarray, uv: np.ndarray, valid: np.ndarray | None = None, thickness: int = 1,
                  dashed_color: tuple[int, int, int] | None = None) -> np.ndarray:
    """Draw a 21-joint OpenPose-order skeleton (finger-coloured bones) on a uint8 image copy.

    With ``dashed_color`` all bones get that colour (e.g. ground truth drawn under a prediction).
    """
    out = image.copy()
    uv = np.asarray(uv, dtype=np.float64)
    valid = np.ones(len(uv), bool) if valid is None else np.asarray(valid) > 0
    shift = 4  # sub-pixel drawing precision
    pts = np.round(uv * (1 << shift)).astype(np.int64)
    for parent, child in OPENPOSE_BONES:
        if not (valid[parent] and valid[child]) or not np.isfinite(uv[[parent, child]]).all():
            continue
        color = dashed_color or tuple(int(c) for c in FINGER_COLORS[(child - 1) // 4])
        cv2.line(out, tuple(pts[parent]), tuple(pts[child]), color, thickness, cv2.LINE_AA, shift)
    for j in np.flatnonzero(valid):
        if np.isfinite(uv[j]).all():
            cv2.circle(out, tuple(pts[j]), 1 << shift, (255, 255, 255), -1, cv2.LINE_AA, shift)
    return out


def estimator_panels(batch: dict[str, Any], out: Any, faces: torch.Tensor) -> torch.Tensor:
    """Per sample three panels: input, predicted mesh overlay, predicted skeleton (GT in grey)."""
    panels = []
    for i in range(batch["image"].shape[0]):
        img = to_uint8(batch["image"][i])
        mesh = overlay(img, out.vertices[i], faces, batch["K"][i])
        skel = img
        if float(batch["has_2d"][i]) > 0:
            skel = draw_skeleton(skel, batch["joints2d"][i].cpu().numpy(), batch["joints2d_valid"][i].cpu().numpy(), dashed_color=(160, 160, 160))
        skel = draw_skeleton(skel, out.joints2d[i].detach().cpu().numpy())
        panels += [img, mesh, skel]
    return torch.from_numpy(np.stack(panels)).permute(0, 3, 1, 2).float() / 255.0


def adapt_panels(batch: dict[str, Any], out: Any, faces: torch.Tensor) -> torch.Tensor:
    """Per sample five panels: hand-object input, rendering of the first mesh (G's guidance), translation,
    true hand-only twin (blank if unknown), final mesh overlay on the translation with its skeleton."""
    panels = []
    for i in range(batch["image"].shape[0]):
        img = to_uint8(batch["image"][i])
        guide = to_uint8(out.guidance["shaded"][i]) if out.guidance is not None else np.zeros_like(img)
        trans = to_uint8(out.translated[i])
        twin = to_uint8(batch["image_hand_only"][i]) if float(batch["has_pair"][i]) > 0 else np.full_like(img, 255)
        final = overlay(trans, out.final.vertices[i], faces, batch["K"][i], alpha=0.4)
        final = draw_skeleton(final, out.final.joints2d[i].detach().cpu().numpy())
        panels += [img, guide, trans, twin, final]
    return torch.from_numpy(np.stack(panels)).permute(0, 3, 1, 2).float() / 255.0


def mesh_overlay(image: np.ndarray, vertices: np.ndarray, faces: np.ndarray, K: np.ndarray, joints2d: np.ndarray) -> np.ndarray:
    """The image with the shaded mesh and the skeleton drawn over it (lines scale with the image size)."""
    return hands_overlay(image, [(vertices, faces, joints2d)], K)


def hands_overlay(image: np.ndarray, hands: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], K: np.ndarray) -> np.ndarray:
    """The image with every hand's shaded mesh and skeleton; ``hands``: ``(vertices, faces, joints2d)`` each.

    Meshes are drawn farthest first (by mean depth), each rendered only in its own projected box, so two hands
    at opposite ends of a large photo cost two small renderings, not one of the whole span; no hands: a copy.
    """
    out = np.ascontiguousarray(image).copy()
    order = sorted(range(len(hands)), key=lambda i: -float(np.asarray(hands[i][0])[:, 2].mean()))
    for i in order:
        out = overlay(out, hands[i][0], hands[i][1], K)
    thickness = max(1, int(round(max(image.shape[:2]) / 300)))
    for _, _, joints2d in hands:
        out = draw_skeleton(out, joints2d, thickness=thickness)
    return out
