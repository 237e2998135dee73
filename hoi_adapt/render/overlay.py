"""Shaded mesh drawn over a photo, for visualisation: PyTorch3D only, so no OpenGL/EGL stack is needed.

Only the mesh's projected bounding box is rasterised (the principal point is shifted into that crop), so
cost follows the hand's size on screen, not the photo's: overlays on 640x480 or larger frames stay cheap
on CPU.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from hoi_adapt.render.cameras import project
from hoi_adapt.render.renderer import HandObjectRenderer
from hoi_adapt.render.shading import Lighting

ArrayLike = np.ndarray | torch.Tensor

#: Default overlay colour: light blue, visible on skin and on most backgrounds.
OVERLAY_COLOR: tuple[float, float, float] = (0.55, 0.75, 1.0)


def _as_tensor(x: ArrayLike, dtype: torch.dtype) -> torch.Tensor:
    return x.detach().to("cpu", dtype) if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x), dtype=dtype)


def overlay(
    image: ArrayLike,
    verts: ArrayLike,
    faces: ArrayLike,
    K: ArrayLike,
    color: Sequence[float] = OVERLAY_COLOR,
    alpha: float = 0.5,
    lighting: Lighting | None = None,
) -> np.ndarray:
    """Blend a shaded rendering of one mesh over ``image``.

    Args:
        image: (H, W, 3) uint8 RGB image, any size.
        verts: (V, 3) OpenCV camera-frame vertices (metres).
        faces: (F, 3) faces, outward winding.
        K: (3, 3) intrinsics of ``image``.
        color: mesh albedo, linear RGB in [0, 1].
        alpha: opacity of the mesh over the image.
        lighting: shading (default head-light).

    Returns:
        (H, W, 3) uint8 image; pixels the mesh does not cover are unchanged.
    """
    img = np.asarray(image.detach().cpu() if isinstance(image, torch.Tensor) else image)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"image must be an (H, W, 3) uint8 array, got {img.dtype} {img.shape}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    height, width = img.shape[:2]
    v = _as_tensor(verts, torch.float32)
    f = _as_tensor(faces, torch.int64)
    k = _as_tensor(K, torch.float32)
    if v.dim() != 2 or v.shape[1] != 3 or tuple(k.shape) != (3, 3):
        raise ValueError(f"verts must be (V, 3) and K (3, 3), got {tuple(v.shape)} and {tuple(k.shape)}")

    # Crop to the projected bounding box (whole image if any vertex is behind the camera).
    x0, y0, x1, y1 = 0, 0, width, height
    if bool((v[:, 2] > 0).all()):
        uv = project(v[None], k[None])[0]
        x0 = max(0, math.floor(float(uv[:, 0].min())) - 1)
        y0 = max(0, math.floor(float(uv[:, 1].min())) - 1)
        x1 = min(width, math.ceil(float(uv[:, 0].max())) + 2)
        y1 = min(height, math.ceil(float(uv[:, 1].max())) + 2)
        if x1 <= x0 or y1 <= y0:
            return img.copy()
    k_crop = k.clone()
    k_crop[0, 2] -= x0
    k_crop[1, 2] -= y0

    renderer = HandObjectRenderer(image_size=(y1 - y0, x1 - x0), faces_per_pixel=1, lighting=lighting)
    with torch.no_grad():
        out = renderer(v[None], f, k_crop[None], hand_colors=torch.tensor(color, dtype=torch.float32))
    rgb = out.hand_image[0].clamp(0.0, 1.0).numpy() * 255.0
    cov = out.hand_alpha[0].numpy()[..., None] * alpha

    result = img.copy()
    crop = result[y0:y1, x0:x1].astype(np.float32)
    result[y0:y1, x0:x1] = np.clip(np.rint(crop * (1.0 - cov) + rgb * cov), 0, 255).astype(np.uint8)
    return result
