"""Wavefront ``.obj`` meshes: a writer for predicted hands and a minimal reader for round-trip checks.

The writer emits only ``v x y z`` and ``f a b c`` lines (1-based indices), which every mesh viewer and
library (Blender, MeshLab, trimesh, Open3D, PyTorch3D) reads. Coordinates are written as given: hoi_adapt
writes camera-frame metres (OpenCV axes) with outward-wound faces, and says so in the header comment.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hoi_adapt.utils.errors import DataFileError
from hoi_adapt.utils.io import atomic_path

#: Significant digits of written coordinates: 1e-8 relative, far below a micrometre for hand meshes.
OBJ_DIGITS = 9


def _as_mesh(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces)
    if v.ndim != 2 or v.shape[1] != 3:
        raise ValueError(f"vertices must be (V, 3), got {v.shape}")
    if f.ndim != 2 or f.shape[1] < 3 or not np.issubdtype(f.dtype, np.integer):
        raise ValueError(f"faces must be an integer (F, 3+) array, got {f.dtype} {f.shape}")
    if not np.isfinite(v).all():
        raise ValueError("vertices contain NaN or inf")
    if f.size and (f.min() < 0 or f.max() >= len(v)):
        raise ValueError(f"face indices must be in [0, {len(v) - 1}], got [{f.min()}, {f.max()}]")
    return v, f.astype(np.int64)


def write_obj(path: str | Path, vertices: np.ndarray, faces: np.ndarray, comments: Sequence[str] = ()) -> Path:
    """Write a mesh atomically as ``.obj``.

    Args:
        path: output file.
        vertices: (V, 3) positions.
        faces: (F, 3) (or (F, k) polygons) 0-based vertex indices; winding is kept as given.
        comments: header lines written as ``# ...`` (units, frame, provenance).

    Returns:
        The path written.
    """
    v, f = _as_mesh(vertices, faces)
    lines = [f"# {c}" for line in comments for c in str(line).splitlines()]
    fmt = f"v %.{OBJ_DIGITS}g %.{OBJ_DIGITS}g %.{OBJ_DIGITS}g"
    lines += [fmt % tuple(p) for p in v]
    lines += ["f " + " ".join(str(int(i) + 1) for i in face) for face in f]
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _index(token: str, n_vertices: int, path: Path, lineno: int) -> int:
    head = token.split("/", 1)[0]
    try:
        idx = int(head)
    except ValueError:
        raise DataFileError(path, f"line {lineno}: bad face index {token!r}") from None
    if idx == 0 or abs(idx) > n_vertices:
        raise DataFileError(path, f"line {lineno}: face index {idx} out of range (file has {n_vertices} vertices so far)")
    return idx - 1 if idx > 0 else n_vertices + idx  # negative indices count back from the last vertex


def read_obj(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read vertices and faces of a simple ``.obj`` (``v`` and ``f`` lines; other records are ignored).

    Faces may use ``v/vt/vn`` tokens and negative indices; polygons are fan-triangulated.

    Returns:
        ``(vertices (V, 3) float64, faces (F, 3) int64)`` with 0-based indices.

    Raises:
        DataFileError: missing file or malformed ``v``/``f`` lines (with the line number).
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(path, "mesh file not found")
    verts: list[list[float]] = []
    faces: list[tuple[int, int, int]] = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            parts = line.split()
            if not parts or parts[0].startswith("#"):
                continue
            if parts[0] == "v":
                try:
                    xyz = [float(x) for x in parts[1:4]]
                except ValueError:
                    raise DataFileError(path, f"line {lineno}: bad vertex {line.strip()!r}") from None
                if len(xyz) != 3:
                    raise DataFileError(path, f"line {lineno}: vertex needs 3 coordinates, got {len(xyz)}")
                verts.append(xyz)
            elif parts[0] == "f":
                idx = [_index(t, len(verts), path, lineno) for t in parts[1:]]
                if len(idx) < 3:
                    raise DataFileError(path, f"line {lineno}: face needs at least 3 vertices, got {len(idx)}")
                faces.extend((idx[0], idx[k], idx[k + 1]) for k in range(1, len(idx) - 1))
    return np.asarray(verts, dtype=np.float64).reshape(-1, 3), np.asarray(faces, dtype=np.int64).reshape(-1, 3)
