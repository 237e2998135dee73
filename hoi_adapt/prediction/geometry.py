"""Crop geometry of predict: the box scales, mirroring and the automatic box from the estimator's hand mask."""
from __future__ import annotations

import numpy as np

from hoi_adapt.data import crop as C

CROP_SCALE = 1.3
"""Crop side / longer side of a hand box (a box around the whole hand, as users draw and datasets annotate)."""
JOINT_TO_HAND_EXTENT = 1.1
"""A box around the 21 joints is smaller than one around the hand's surface: fingertips and the palm's edges lie
outside the joints. Longer side of the projected mesh / of the projected joints, 400 sampled stand-in poses and
views: median 1.09 (5-95%: 1.02-1.26). Boxes of landmark detectors (MediaPipe) are joint boxes."""
LANDMARK_BOX_SCALE = round(CROP_SCALE * JOINT_TO_HAND_EXTENT, 6)
"""Crop side / longer side of a landmark (joint) box: the same crop as :data:`CROP_SCALE` around the hand."""
MASK_THRESHOLD = 0.5


def mirror_affine(width: int) -> np.ndarray:
    """3x3 affine of a left-right mirror: ``u -> W - 1 - u``."""
    return np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def box_from_mask(mask_prob: np.ndarray, A: np.ndarray, input_size: int, height: int, width: int,
                  threshold: float = MASK_THRESHOLD, scale: float = CROP_SCALE) -> C.Box | None:
    """Square crop box (original pixels) around the largest hand-mask region of a first pass, or None.

    The region is :func:`mask_region_xyxy`, the box :func:`box_from_region`.
    """
    xyxy = mask_region_xyxy(mask_prob, A, input_size, height, width, threshold)
    return None if xyxy is None else box_from_region(xyxy, height, width, scale)


def box_from_region(xyxy: np.ndarray, height: int, width: int, scale: float = CROP_SCALE) -> C.Box:
    """Crop box of a mask region: ``scale`` times its longer side, at least an eighth of the image's longer side
    (a few mask pixels are no hand-sized crop)."""
    return C.crop_box_from_xyxy(xyxy, scale, min_size=max(height, width) / 8.0)


def mask_region_xyxy(mask_prob: np.ndarray, A: np.ndarray, input_size: int, height: int, width: int,
                     threshold: float = MASK_THRESHOLD) -> np.ndarray | None:
    """``[x0, y0, x1, y1]`` (original pixels) of the largest hand-mask region of a first pass, or None.

    ``mask_prob`` (h, w) is the estimator's mask evidence of a crop made with the 3x3 affine ``A`` (original
    -> crop pixels, scale and translation only) at ``input_size``. Mask pixel ``i`` covers crop pixels
    ``[i*s - 0.5, (i+1)*s - 0.5]`` with stride ``s = input_size / w`` (training targets are area-pooled).
    Pixels whose centre falls outside the image (letterbox padding) are ignored.
    """
    import cv2

    prob = np.asarray(mask_prob, dtype=np.float64)
    h, w = prob.shape
    sx, sy = input_size / w, input_size / h
    Ainv = np.linalg.inv(A)
    cu = Ainv[0, 0] * ((np.arange(w) + 0.5) * sx - 0.5) + Ainv[0, 2]
    cv_ = Ainv[1, 1] * ((np.arange(h) + 0.5) * sy - 0.5) + Ainv[1, 2]
    inside = ((cv_ >= -0.5) & (cv_ <= height - 0.5))[:, None] & ((cu >= -0.5) & (cu <= width - 0.5))[None, :]
    mask = (prob > threshold) & inside
    if not mask.any():
        return None
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x0, y0 = stats[best, cv2.CC_STAT_LEFT], stats[best, cv2.CC_STAT_TOP]
    x1, y1 = x0 + stats[best, cv2.CC_STAT_WIDTH], y0 + stats[best, cv2.CC_STAT_HEIGHT]
    corners = np.array([[x0 * sx - 0.5, y0 * sy - 0.5], [x1 * sx - 0.5, y1 * sy - 0.5]])
    (u0, v0), (u1, v1) = C.transform_points(Ainv, corners)
    return np.array([max(u0, -0.5), max(v0, -0.5), min(u1, width - 0.5), min(v1, height - 0.5)])
