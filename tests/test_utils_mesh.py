"""Mesh topology helpers: boundary edges and capping holes (used to cull back faces of the guidance hand)."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from hoi_adapt.hand.model import HandModel
from hoi_adapt.utils.mesh import boundary_edges, cap_holes, signed_volume


def open_tube(sides: int = 8, rings: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """A cylinder without its two end caps: two boundary loops of ``sides`` vertices, outward winding."""
    angle = 2 * np.pi * np.arange(sides) / sides
    verts = np.array([[np.cos(a), np.sin(a), z] for z in range(rings) for a in angle], dtype=np.float64)
    faces = []
    for r in range(rings - 1):
        for i in range(sides):
            a, b = r * sides + i, r * sides + (i + 1) % sides
            faces += [[a, b, b + sides], [a, b + sides, a + sides]]
    return verts, np.asarray(faces)


def directed_edges(faces: np.ndarray) -> Counter:
    return Counter(map(tuple, np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]).tolist()))


def test_capping_closes_every_loop_with_consistent_winding() -> None:
    verts, faces = open_tube()
    assert len(boundary_edges(faces)) == 16  # two loops of 8
    capped = cap_holes(faces)
    assert len(capped) == len(faces) + 2 * (8 - 2)  # a fan of n - 2 triangles per loop
    assert capped.max() < len(verts)  # no new vertex
    assert len(boundary_edges(capped)) == 0
    edges = directed_edges(capped)
    assert max(edges.values()) == 1 and all((b, a) in edges for a, b in edges)  # closed, one orientation
    octagon_prism = 0.5 * 8 * np.sin(2 * np.pi / 8) * 2.0  # base area x height: the capped tube's volume
    assert signed_volume(verts, capped) == pytest.approx(octagon_prism, rel=1e-9)  # > 0: caps wound outward


def test_hand_wrist_is_capped_and_closed_meshes_are_left_alone() -> None:
    faces = HandModel().faces.numpy()
    capped = cap_holes(faces)
    assert len(boundary_edges(faces)) == 16 and len(boundary_edges(capped)) == 0  # the 16-vertex wrist ring
    np.testing.assert_array_equal(capped[: len(faces)], faces)
    np.testing.assert_array_equal(cap_holes(capped), capped)


def test_boundaries_that_are_not_simple_loops_are_refused() -> None:
    bowtie = np.array([[0, 1, 2], [0, 3, 4]])  # two triangles sharing only vertex 0: two boundary edges leave it
    with pytest.raises(ValueError, match="manifold"):
        cap_holes(bowtie)
    verts, faces = open_tube()
    flipped = faces.copy()
    flipped[0] = flipped[0, [0, 2, 1]]  # one face wound inward: its edges no longer pair up into loops
    with pytest.raises(ValueError):
        cap_holes(flipped)
