"""Mesh measures shared by the hand model's checks and the synthetic objects."""
from __future__ import annotations

import numpy as np


def signed_volume(verts: np.ndarray, faces: np.ndarray) -> float:
    """Signed volume with boundary loops capped by a fan around their centroid (positive = outward)."""
    faces = np.asarray(faces, dtype=np.int64)
    tri = verts[faces]
    vol = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    key = np.sort(e, axis=1)
    uniq, counts = np.unique(key, axis=0, return_counts=True)
    boundary = {tuple(x) for x in uniq[counts == 1].tolist()}
    if boundary:
        # directed boundary edges as they appear in faces; the cap uses them reversed
        bd = np.array([ed for ed in e.tolist() if tuple(sorted(ed)) in boundary])
        c = verts[np.unique(bd)].mean(axis=0)
        a, b = verts[bd[:, 1]], verts[bd[:, 0]]
        vol += np.einsum("ij,ij->i", np.broadcast_to(c, a.shape), np.cross(a, b)).sum() / 6.0
    return float(vol)
