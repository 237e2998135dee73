"""Mesh measures and topology shared by the hand model's checks, the synthetic objects and the renderer."""
from __future__ import annotations

import numpy as np


def signed_volume(verts: np.ndarray, faces: np.ndarray) -> float:
    """Signed volume with the boundary capped by a fan around its centroid (positive = outward).

    Exact for one boundary loop (MANO's wrist) and robust to defective meshes (``mesh_report`` measures those);
    :func:`cap_holes` closes each loop of a clean mesh separately.
    """
    faces = np.asarray(faces, dtype=np.int64)
    tri = verts[faces]
    vol = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0
    bd = boundary_edges(faces)
    if len(bd):
        # the cap uses the boundary edges reversed
        c = verts[np.unique(bd)].mean(axis=0)
        a, b = verts[bd[:, 1]], verts[bd[:, 0]]
        vol += np.einsum("ij,ij->i", np.broadcast_to(c, a.shape), np.cross(a, b)).sum() / 6.0
    return float(vol)


def boundary_edges(faces: np.ndarray) -> np.ndarray:
    """(E, 2) directed edges ``a -> b`` that belong to one face only, in the direction that face lists them."""
    faces = np.asarray(faces, dtype=np.int64)
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    _, inv, counts = np.unique(np.sort(e, axis=1), axis=0, return_inverse=True, return_counts=True)
    return e[counts[inv.ravel()] == 1]


def cap_holes(faces: np.ndarray) -> np.ndarray:
    """``faces`` plus a fan of triangles closing each boundary loop, wound like the faces next to it.

    Why: a closed surface seen from outside shows only front faces, so back faces can be culled before
    rasterising without changing what is seen; an open one (MANO's wrist) shows its inside through the hole.
    The fan uses the loop's own vertices (no new vertex, so vertex arrays and per-vertex data stay valid) and
    pivots on each loop's first vertex; each cap triangle takes a boundary edge reversed, so orientation stays
    consistent across the seam. Loops must be simple (a manifold boundary: one outgoing edge per vertex).
    """
    faces = np.asarray(faces, dtype=np.int64)
    bd = boundary_edges(faces)
    if not len(bd):
        return faces
    nxt = dict(zip(bd[:, 0].tolist(), bd[:, 1].tolist(), strict=True))
    if len(nxt) != len(bd):
        raise ValueError("cap_holes needs a manifold boundary (one outgoing boundary edge per vertex)")
    caps: list[list[int]] = []
    todo = set(nxt)
    while todo:
        pivot = min(todo)
        loop = [pivot]
        while nxt.get(loop[-1]) != pivot:
            if loop[-1] not in nxt or nxt[loop[-1]] in loop or len(loop) > len(bd):
                raise ValueError("cap_holes needs boundary edges that form simple loops (a clean, consistently wound mesh)")
            loop.append(nxt[loop[-1]])
        todo -= set(loop)
        caps += [[pivot, loop[i + 1], loop[i]] for i in range(1, len(loop) - 1)]
    return np.concatenate([faces, np.asarray(caps, dtype=np.int64).reshape(-1, 3)])
