"""Square hand crops and left->right mirroring, with exact pixel bookkeeping.

Pixel convention (OpenCV, and the project's schema): the centre of the pixel in column ``i`` has
``u = i``; a pixel covers ``[i - 0.5, i + 0.5]``. A box is ``(cx, cy, side)`` in those coordinates.
Cropping the box and resizing it to ``out`` pixels is the affine map

    u' = k * (u - (cx - side/2)) - 0.5,     k = out / side

(the box's left edge goes to ``-0.5``, the left edge of output pixel 0). ``crop_affine`` returns it as a
3x3 matrix ``A``; ``cv2.warpAffine`` uses the same pixel-centre convention, so a point at ``(u, v)`` lands
exactly at ``A @ (u, v, 1)``; the intrinsics of the crop are ``A @ K``.

Mirroring an image of width ``W`` maps ``u -> W - 1 - u``. The matching camera has ``cx' = W - 1 - cx``
(and negated skew), and camera-frame 3D points mirror as ``x -> -x``, so ``K' @ X'`` still projects onto
the mirrored pixel. MANO parameters mirror by negating the y and z axis-angle components of every joint
and the x translation; this is exact only when the left and right hand models are mirror images of each
other (true for MANO's templates up to the known left-shapedirs sign issue).
"""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np

Box = np.ndarray
"""``(cx, cy, side)`` float64 array."""


# ------------------------------------------------------------------------------------------ boxes
def crop_box_from_points(uv: np.ndarray, valid: np.ndarray | None = None, scale: float = 1.5,
                         min_size: float = 8.0) -> Box:
    """Square box around the valid, finite 2D points, ``scale`` times their larger extent.

    Raises:
        ValueError: when no point is valid.
    """
    uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
    ok = np.isfinite(uv).all(axis=1)
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool).reshape(-1)
    if not ok.any():
        raise ValueError("no valid points to crop around")
    pts = uv[ok]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    centre = (lo + hi) / 2.0
    side = max(float((hi - lo).max()) * scale, float(min_size))
    return np.array([centre[0], centre[1], side])


def crop_box_from_mask(mask: np.ndarray, scale: float = 1.5, min_size: float = 8.0) -> Box:
    """Square box around the non-zero pixels of ``mask`` (pixel extents, not centres).

    Raises:
        ValueError: when the mask is empty.
    """
    ys, xs = np.nonzero(np.asarray(mask))
    if xs.size == 0:
        raise ValueError("empty mask")
    x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
    centre = ((x0 + x1) / 2.0, (y0 + y1) / 2.0)
    side = max(float(max(x1 - x0 + 1, y1 - y0 + 1)) * scale, float(min_size))
    return np.array([centre[0], centre[1], side])


def crop_box_from_xyxy(xyxy: np.ndarray, scale: float = 1.5, min_size: float = 8.0) -> Box:
    """Square box around a ``[x1, y1, x2, y2]`` rectangle given in pixel-centre coordinates."""
    x1, y1, x2, y2 = (float(v) for v in np.asarray(xyxy, dtype=np.float64).reshape(4))
    side = max(max(abs(x2 - x1), abs(y2 - y1)) * scale, float(min_size))
    return np.array([(x1 + x2) / 2.0, (y1 + y2) / 2.0, side])


def full_image_box(height: int, width: int) -> Box:
    """The smallest square box containing the whole image (centred)."""
    return np.array([(width - 1) / 2.0, (height - 1) / 2.0, float(max(height, width))])


# ---------------------------------------------------------------------------------------- affines
def crop_affine(box: Box, out_size: int) -> np.ndarray:
    """3x3 affine mapping original pixel coordinates to crop pixel coordinates (see module doc)."""
    cx, cy, side = (float(v) for v in box)
    if not side > 0:
        raise ValueError(f"crop side must be positive, got {side}")
    k = out_size / side
    return np.array([[k, 0.0, -k * (cx - side / 2.0) - 0.5],
                     [0.0, k, -k * (cy - side / 2.0) - 0.5],
                     [0.0, 0.0, 1.0]])


def transform_points(A: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Apply a 2x3 or 3x3 affine to ``(..., 2)`` points."""
    A = np.asarray(A, dtype=np.float64)
    uv = np.asarray(uv, dtype=np.float64)
    return uv @ A[:2, :2].T + A[:2, 2]


def crop_intrinsics(K: np.ndarray, A: np.ndarray) -> np.ndarray:
    """Intrinsics of the cropped image: ``A3x3 @ K``."""
    A3 = np.eye(3)
    A3[:2] = np.asarray(A, dtype=np.float64)[:2]
    return A3 @ np.asarray(K, dtype=np.float64)


def _resize_affine(src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> np.ndarray:
    """Affine of ``cv2.resize`` (pixel centres): ``u' = (u + 0.5) * s - 0.5``."""
    sy, sx = dst_hw[0] / src_hw[0], dst_hw[1] / src_hw[1]
    return np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])


def warp_image(image: np.ndarray, A: np.ndarray, out_size: int, interpolation: int = cv2.INTER_LINEAR,
               antialias: bool = True) -> np.ndarray:
    """Warp ``image`` by the affine ``A`` into an ``out_size`` square (zero outside the source).

    When ``A`` shrinks by more than ~1.7x and ``antialias`` is set, the image is first reduced with
    ``INTER_AREA`` (exactly compensated in the affine), which avoids aliasing without moving content.
    """
    A = np.asarray(A, dtype=np.float64)
    src = image
    k = float(np.sqrt(abs(np.linalg.det(A[:2, :2]))))
    if antialias and interpolation != cv2.INTER_NEAREST and k < 0.6:
        h, w = image.shape[:2]
        s = 1.25 * k
        dst_hw = (max(1, int(round(h * s))), max(1, int(round(w * s))))
        S = _resize_affine((h, w), dst_hw)
        src = cv2.resize(image, (dst_hw[1], dst_hw[0]), interpolation=cv2.INTER_AREA)
        A3 = np.eye(3)
        A3[:2] = A[:2]
        A = A3 @ np.linalg.inv(S)
    out = cv2.warpAffine(src, A[:2].astype(np.float64), (out_size, out_size), flags=interpolation,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if image.ndim == 3 and out.ndim == 2:  # cv2 drops a singleton channel axis
        out = out[:, :, None]
    return out


def warp_mask(mask: np.ndarray, A: np.ndarray, out_size: int) -> np.ndarray:
    """Warp a mask/label map with nearest-neighbour sampling; keeps the dtype (bool allowed)."""
    mask = np.asarray(mask)
    was_bool = mask.dtype == bool
    src = mask.astype(np.uint8) if was_bool else mask
    out = warp_image(src, A, out_size, interpolation=cv2.INTER_NEAREST, antialias=False)
    return out.astype(bool) if was_bool else out


def crop_and_resize(image: np.ndarray, box: Box, out_size: int,
                    interpolation: int = cv2.INTER_LINEAR) -> tuple[np.ndarray, np.ndarray]:
    """Crop the square ``box`` and resize it to ``out_size``; returns ``(crop, A)`` with ``A`` 3x3."""
    A = crop_affine(box, out_size)
    return warp_image(image, A, out_size, interpolation=interpolation), A


def resize_nearest(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a mask to ``(height, width)`` with nearest sampling (for masks stored at another resolution)."""
    mask = np.asarray(mask)
    if mask.shape[:2] == (height, width):
        return mask
    was_bool = mask.dtype == bool
    out = cv2.resize(mask.astype(np.uint8) if was_bool else mask, (width, height), interpolation=cv2.INTER_NEAREST)
    return out.astype(bool) if was_bool else out


# --------------------------------------------------------------------------------------- mirroring
def flip_image(image: np.ndarray) -> np.ndarray:
    """Mirror an image (or mask) left-right."""
    return np.ascontiguousarray(np.asarray(image)[:, ::-1])


def flip_points_2d(uv: np.ndarray, width: int) -> np.ndarray:
    """``u' = W - 1 - u`` for ``(..., 2)`` points."""
    out = np.array(uv, dtype=np.float64, copy=True)
    out[..., 0] = (width - 1) - out[..., 0]
    return out


def flip_intrinsics(K: np.ndarray, width: int) -> np.ndarray:
    """Intrinsics of the mirrored image for mirrored (``x -> -x``) camera-frame points."""
    out = np.array(K, dtype=np.float64, copy=True)
    out[0, 2] = (width - 1) - out[0, 2]
    out[0, 1] = -out[0, 1]
    return out


def flip_points_3d(xyz: np.ndarray) -> np.ndarray:
    """``x -> -x`` for ``(..., 3)`` camera-frame points."""
    out = np.array(xyz, dtype=np.float64, copy=True)
    out[..., 0] = -out[..., 0]
    return out


def flip_xyxy(xyxy: np.ndarray, width: int) -> np.ndarray:
    """Mirror a ``[x1, y1, x2, y2]`` rectangle."""
    x1, y1, x2, y2 = np.asarray(xyxy, dtype=np.float64).reshape(4)
    return np.array([(width - 1) - x2, y1, (width - 1) - x1, y2])


def flip_mano_pose(pose: np.ndarray) -> np.ndarray:
    """Mirror an axis-angle MANO pose ``(..., 16*3)``: each joint's ``(x, y, z) -> (x, -y, -z)``."""
    pose = np.asarray(pose, dtype=np.float64)
    return (pose.reshape(*pose.shape[:-1], -1, 3) * np.array([1.0, -1.0, -1.0])).reshape(pose.shape)


def flip_mano_transl(transl: np.ndarray) -> np.ndarray:
    """Mirror a MANO translation: ``x -> -x`` (exact for mirror-symmetric hand models)."""
    return flip_points_3d(transl)


def flip_horizontal(width: int, **items: Any) -> dict[str, Any]:
    """Mirror several quantities of one left-hand sample at once; ``None`` values pass through.

    Recognised keyword names: ``image``, ``image_hand_only``, any name containing ``mask``, ``uv``
    (2D points), ``K``, ``xyz`` (3D points), ``xyxy`` (box), ``mano_pose``, ``mano_transl``.
    """
    out: dict[str, Any] = {}
    for name, value in items.items():
        if value is None:
            out[name] = None
        elif name in ("image", "image_hand_only") or "mask" in name:
            out[name] = flip_image(value)
        elif name == "uv":
            out[name] = flip_points_2d(value, width)
        elif name == "K":
            out[name] = flip_intrinsics(value, width)
        elif name == "xyz":
            out[name] = flip_points_3d(value)
        elif name == "xyxy":
            out[name] = flip_xyxy(value, width)
        elif name == "mano_pose":
            out[name] = flip_mano_pose(value)
        elif name == "mano_transl":
            out[name] = flip_mano_transl(value)
        else:
            raise ValueError(f"flip_horizontal: unknown item {name!r}")
    return out
