"""Cameras from OpenCV intrinsics: the one place where hoi_adapt meets PyTorch3D's camera conventions.

hoi_adapt's convention (see :mod:`hoi_adapt.data.schema`): points live in the OpenCV camera frame (x right,
y down, z forward, metres) and the centre of pixel column ``i`` / row ``j`` is ``(u, v) = (i, j)``, with
``uv = K @ xyz / z``.

PyTorch3D differs in two ways, and both are handled here so that no caller ever guesses:

* **Axes.** PyTorch3D's view frame is x left, y up, z forward. The cameras below therefore carry the
  rotation ``R = diag(-1, -1, 1)`` (a 180-degree turn about z, so face winding and handedness are kept)
  and ``T = 0``: *world* coordinates of the PyTorch3D scene are exactly OpenCV camera coordinates, and so
  are light positions and the camera centre used for specular highlights (the origin).
* **Half-pixel offset.** PyTorch3D's rasteriser samples pixel ``i`` at screen coordinate ``i + 0.5``
  (pixel ``i`` spans ``[i, i + 1)``; see the NDC conversion in ``rasterize_meshes`` and pytorch3d issue
  #498 on ``align_corners``). OpenCV samples it at ``u = i``. We therefore give PyTorch3D the principal
  point ``(cx + 0.5, cy + 0.5)``. ``pytorch3d.utils.cameras_from_opencv_projection`` does *not* do this
  (it passes ``cx, cy`` unchanged), so with it every rendering is shifted by half a pixel up-left relative
  to ``K``-projected keypoints; ``tests/test_render_cameras.py`` checks the exact coverage of quads with
  fractional edges, which tells the two apart.

Rectangular images work as they are: ``PerspectiveCameras(in_ndc=False, image_size=(H, W))`` converts screen
to NDC with the same ``min(H, W) / 2`` scale on both axes that the rasteriser uses.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from pytorch3d.renderer import PerspectiveCameras

from hoi_adapt.utils.linalg3 import inv3

#: OpenCV camera frame -> PyTorch3D view frame (x and y flipped). Symmetric, so ``X @ R`` is the same map.
_OPENCV_TO_PYTORCH3D = (-1.0, -1.0, 1.0)

#: Offset added to OpenCV pixel coordinates to get PyTorch3D screen coordinates (pixel centres at i + 0.5).
PIXEL_CENTER_OFFSET = 0.5


def _check_K(K: torch.Tensor) -> None:
    if K.dim() != 3 or tuple(K.shape[1:]) != (3, 3):
        raise ValueError(f"K must have shape (B, 3, 3), got {tuple(K.shape)}")


def _image_size(image_size: Sequence[int]) -> tuple[int, int]:
    if len(image_size) != 2 or any(int(s) <= 0 for s in image_size):
        raise ValueError(f"image_size must be (H, W) with positive sizes, got {tuple(image_size)}")
    return int(image_size[0]), int(image_size[1])


def cameras_from_K(K: torch.Tensor, image_size: Sequence[int]) -> PerspectiveCameras:
    """PyTorch3D cameras that render OpenCV-frame points exactly where ``K`` projects them.

    Args:
        K: (B, 3, 3) intrinsics in pixels of the image being rendered (skew must be 0).
        image_size: (H, W) of that image.

    Returns:
        Screen-space ``PerspectiveCameras`` on ``K``'s device. Meshes are passed in OpenCV camera
        coordinates (they are the cameras' world coordinates); ``zbuf`` comes out as the OpenCV ``z``.
    """
    _check_K(K)
    h, w = _image_size(image_size)
    skew = K[:, 0, 1].abs().max()
    if skew > 1e-6:
        raise ValueError(f"K has a non-zero skew K[:, 0, 1] (max |skew| = {float(skew):.3g}); not supported")
    batch = K.shape[0]
    K = K.to(torch.float32)
    focal = torch.stack([K[:, 0, 0], K[:, 1, 1]], dim=-1)
    principal = K[:, :2, 2] + PIXEL_CENTER_OFFSET
    R = torch.diag(torch.tensor(_OPENCV_TO_PYTORCH3D, device=K.device)).expand(batch, 3, 3)
    return PerspectiveCameras(
        focal_length=focal,
        principal_point=principal,
        R=R,
        T=torch.zeros(batch, 3, device=K.device),
        in_ndc=False,
        image_size=torch.tensor([[h, w]], device=K.device).expand(batch, 2),
        device=K.device,
    )


def project(points: torch.Tensor | np.ndarray, K: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """OpenCV pinhole projection ``uv = (K @ xyz)[:2] / z``.

    Args:
        points: (B, N, 3) camera-frame points (z > 0); numpy: (..., 3) with one K, in float64.
        K: (B, 3, 3) intrinsics; numpy: (3, 3).

    Returns:
        (B, N, 2) pixel coordinates (numpy: (..., 2)); the centre of pixel column i is u = i. Points at
        z = 0 give inf/NaN (numpy) rather than an error: callers mask invalid points themselves.
    """
    if isinstance(points, np.ndarray) or isinstance(K, np.ndarray):
        uvw = np.asarray(points, dtype=np.float64) @ np.asarray(K, dtype=np.float64).T
        with np.errstate(divide="ignore", invalid="ignore"):
            return uvw[..., :2] / uvw[..., 2:3]
    _check_K(K)
    proj = torch.einsum("bij,bnj->bni", K.to(points.dtype), points)
    return proj[..., :2] / proj[..., 2:3]


def backproject(uv: torch.Tensor, depth: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`project`: pixels plus their camera-frame depth ``z`` -> 3D points.

    Args:
        uv: (B, N, 2) pixel coordinates (OpenCV convention).
        depth: (B, N) or (B, N, 1) z in metres.
        K: (B, 3, 3) intrinsics.

    Returns:
        (B, N, 3) camera-frame points.
    """
    _check_K(K)
    if depth.dim() == uv.dim():
        depth = depth[..., 0]
    ones = torch.ones_like(uv[..., :1])
    # inv3: LAPACK, or the closed form while an ONNX export traces the estimator's camera solve
    rays = torch.einsum("bij,bnj->bni", inv3(K.to(uv.dtype)), torch.cat([uv, ones], dim=-1))
    return rays * depth[..., None]


def resize_intrinsics(K: torch.Tensor, src_size: Sequence[int], dst_size: Sequence[int]) -> torch.Tensor:
    """Intrinsics of the same view resampled from (H, W) ``src_size`` to ``dst_size``.

    With the OpenCV pixel-centre convention a resize by s maps u to ``(u + 0.5) s - 0.5``.
    Works for (3,3) or (B,3,3) tensors and numpy arrays.
    """
    sy, sx = dst_size[0] / src_size[0], dst_size[1] / src_size[1]
    if isinstance(K, torch.Tensor):
        S = torch.tensor([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]], dtype=K.dtype, device=K.device)
    else:
        S = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])
    return S @ K
