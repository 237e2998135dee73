"""Camera views for synthetic samples: choose a view that gives the wanted occlusion, and a crop K.

Occlusion is estimated before rendering by casting rays from the camera to the camera-facing hand
vertices and intersecting them with the object's approximating ellipsoid: vectorised numpy over many
candidate views, far cheaper than a probe render. The recorded occlusion is always measured from the
final render.
"""
from __future__ import annotations

import numpy as np


def vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals for verts (V,3) or (M,V,3)."""
    a, b, c = verts[..., faces[:, 0], :], verts[..., faces[:, 1], :], verts[..., faces[:, 2], :]
    fn = np.cross(b - a, c - a)
    normals = np.zeros_like(verts)
    index = (slice(None),) * (verts.ndim - 2)
    for k in range(3):
        np.add.at(normals, index + (faces[:, k],), fn)
    return normals / np.maximum(np.linalg.norm(normals, axis=-1, keepdims=True), 1e-12)


def estimate_occlusion(
    verts: np.ndarray, normals: np.ndarray, centre: np.ndarray, rotation: np.ndarray, semi_axes: np.ndarray
) -> np.ndarray:
    """Fraction of camera-facing hand vertices hidden behind an ellipsoid, per view.

    Args:
        verts, normals: (M,V,3) camera-frame hand vertices / normals for M candidate views.
        centre: (M,3) ellipsoid centres; rotation: (M,3,3) object->camera; semi_axes: (3,).
    """
    facing = np.einsum("mvi,mvi->mv", normals, verts) < 0
    inv = 1.0 / semi_axes
    o = np.einsum("mji,mj->mi", rotation, -centre) * inv  # camera origin in the unit-sphere frame
    d = np.einsum("mji,mvj->mvi", rotation, verts) * inv  # ray direction (t=1 at the vertex)
    a = np.einsum("mvi,mvi->mv", d, d)
    b = 2.0 * np.einsum("mvi,mi->mv", d, o)
    c = np.einsum("mi,mi->m", o, o)[:, None] - 1.0
    disc = b * b - 4 * a * c
    sq = np.sqrt(np.maximum(disc, 0.0))
    t0 = (-b - sq) / (2 * a)
    hidden = (disc > 0) & (t0 > 0) & (t0 < 0.999)
    counts = np.maximum(facing.sum(1), 1)
    return (hidden & facing).sum(1) / counts


def crop_intrinsics(verts_cam: np.ndarray, out_size: int, focal: float, margin: float, jitter: np.ndarray) -> np.ndarray:
    """Intrinsics of a square ``out_size`` crop centred on the projected hand.

    The virtual full-frame camera has focal length ``focal`` and its principal point on the optical axis;
    the crop covers ``margin`` times the hand's projected extent, shifted by ``jitter`` (fractions of
    the crop size) so the hand is not always exactly centred.
    """
    uv = focal * verts_cam[:, :2] / verts_cam[:, 2:3]
    lo, hi = uv.min(0), uv.max(0)
    size = float((hi - lo).max()) * margin
    centre = 0.5 * (lo + hi) + jitter * size
    scale = out_size / size
    # Pixel centres: full-frame u maps to crop u' = (u - (centre - size/2)) * scale - 0.5.
    offset = (size / 2 - centre) * scale - 0.5
    return np.array([[focal * scale, 0, offset[0]], [0, focal * scale, offset[1]], [0, 0, 1.0]])
