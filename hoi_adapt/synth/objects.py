"""Low-poly object meshes held by the synthetic hands.

All primitives are surfaces of revolution (a profile lathed around the z axis) or a torus, which gives
one code path with outward winding by construction and a face budget of a few hundred faces (the CPU
rasteriser costs pixels x faces). Each mesh also carries an approximating ellipsoid (its semi-axes), a
cheap stand-in for its extent.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hoi_adapt.utils.mesh import signed_volume

FAMILIES: tuple[str, ...] = ("sphere", "ellipsoid", "cylinder", "capsule", "box", "cone", "torus", "bottle")


@dataclass
class ObjectMesh:
    """A mesh in its own frame (centred, main axis z) plus an approximating ellipsoid."""

    verts: np.ndarray  # (V,3) float64, metres
    faces: np.ndarray  # (F,3) int64, outward winding
    semi_axes: np.ndarray  # (3,) semi-axes of an ellipsoid approximating the object
    family: str
    uv: np.ndarray  # (V,2) surface parameters in [0,1] (around, along) for procedural textures


def lathe(profile_r: np.ndarray, profile_z: np.ndarray, segments: int, square: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Revolve a profile (r_i, z_i), whose first and last points lie on the axis (r=0), around z.

    Returns vertices, outward-wound faces and (around, along) parameters. ``square`` places 4 segments at
    45 degrees and scales to the profile radius, giving a square prism (a box) from the same code path.
    """
    r = np.asarray(profile_r, dtype=np.float64)
    z = np.asarray(profile_z, dtype=np.float64)
    if r[0] != 0 or r[-1] != 0:
        raise ValueError("profile must start and end on the axis")
    rings = len(r) - 2
    angles = 2 * np.pi * np.arange(segments) / segments + (np.pi / segments if square else 0.0)
    ring_scale = 1.0 / np.cos(np.pi / segments) if square else 1.0
    cos, sin = np.cos(angles) * ring_scale, np.sin(angles) * ring_scale
    ring_verts = np.stack(
        [np.outer(r[1:-1], cos), np.outer(r[1:-1], sin), np.repeat(z[1:-1, None], segments, axis=1)], axis=-1
    ).reshape(-1, 3)
    verts = np.concatenate([[[0.0, 0.0, z[0]]], ring_verts, [[0.0, 0.0, z[-1]]]])
    top = len(verts) - 1
    seg = np.arange(segments)
    nxt = (seg + 1) % segments
    faces = [np.stack([np.zeros(segments, int), 1 + nxt, 1 + seg], axis=1)]  # bottom fan (z[0] end)
    for k in range(rings - 1):
        a, b = 1 + k * segments + seg, 1 + k * segments + nxt
        c, d = a + segments, b + segments
        faces += [np.stack([a, b, d], axis=1), np.stack([a, d, c], axis=1)]
    last = 1 + (rings - 1) * segments
    faces.append(np.stack([np.full(segments, top), last + seg, last + nxt], axis=1))
    faces_arr = np.concatenate(faces).astype(np.int64)
    along = np.concatenate([[0.0], np.repeat(np.linspace(0, 1, rings + 2)[1:-1], segments), [1.0]])
    around = np.concatenate([[0.0], np.tile(seg / segments, rings), [0.0]])
    # Winding: the profile goes from z[0] to z[-1]; make faces outward for profiles that increase in z.
    if signed_volume(verts, faces_arr) < 0:
        faces_arr = faces_arr[:, ::-1].copy()
    return verts, faces_arr, np.stack([around, along], axis=1)


def torus_mesh(major: float, minor: float, rings: int = 16, sides: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Torus around z with outward winding."""
    i = np.arange(rings)
    j = np.arange(sides)
    phi = 2 * np.pi * i / rings
    theta = 2 * np.pi * j / sides
    rr = major + minor * np.cos(theta)[None, :]
    verts = np.stack(
        [rr * np.cos(phi)[:, None], rr * np.sin(phi)[:, None], np.broadcast_to(minor * np.sin(theta), (rings, sides))],
        axis=-1,
    ).reshape(-1, 3)
    a = (i[:, None] * sides + j[None, :]).ravel()
    b = (((i[:, None] + 1) % rings) * sides + j[None, :]).ravel()
    c = (((i[:, None] + 1) % rings) * sides + ((j[None, :] + 1) % sides)).ravel()
    d = (i[:, None] * sides + ((j[None, :] + 1) % sides)).ravel()
    faces = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)]).astype(np.int64)
    if signed_volume(verts, faces) < 0:
        faces = faces[:, ::-1].copy()
    uv = np.stack([np.repeat(i / rings, sides), np.tile(j / sides, rings)], axis=1)
    return verts, faces, uv


def _arc(n: int, z0: float, z1: float, r: float, cap: float) -> tuple[np.ndarray, np.ndarray]:
    """Profile of a body of radius r from z0 to z1 with rounded ends of height ``cap``."""
    t = np.linspace(0, np.pi / 2, n)
    r_lo, z_lo = r * np.sin(t), z0 + cap * (1 - np.cos(t))
    r_hi, z_hi = r * np.sin(t[::-1]), z1 - cap * (1 - np.cos(t[::-1]))
    return np.concatenate([r_lo, r_hi]), np.concatenate([z_lo, z_hi])


def make_object(family: str, size: float, rng: np.random.Generator, segments: int = 14) -> ObjectMesh:
    """A random object of ``family`` whose grasped cross-section radius is about ``size`` metres."""
    if family not in FAMILIES:
        raise ValueError(f"unknown object family {family!r}; known: {', '.join(FAMILIES)}")
    r = float(size)
    if family in ("sphere", "ellipsoid"):
        n = 9
        t = np.linspace(0, np.pi, n)
        ax = np.array([r, r, r]) if family == "sphere" else r * rng.uniform([0.8, 0.6, 1.2], [1.1, 0.9, 1.8])
        pr, pz = np.sin(t), -np.cos(t)
        pr[0] = pr[-1] = 0.0
        verts, faces, uv = lathe(pr, pz, segments)
        verts = verts * ax
        semi = ax
    elif family in ("cylinder", "box"):
        half = r * rng.uniform(1.3, 2.6)
        pr = np.array([0.0, r, r, r, r, 0.0])
        pz = np.array([-half, -half, -half / 3, half / 3, half, half])
        square = family == "box"
        verts, faces, uv = lathe(pr, pz, 4 if square else segments, square=square)
        if square:
            verts[:, 0] *= rng.uniform(0.7, 1.3)
            semi = np.array([np.abs(verts[:, 0]).max(), np.abs(verts[:, 1]).max(), half]) * np.sqrt(3)
        else:
            semi = np.array([r * np.sqrt(1.5), r * np.sqrt(1.5), half * np.sqrt(1.5)])
    elif family == "capsule":
        half = r * rng.uniform(1.5, 2.5)
        pr, pz = _arc(5, -half, half, r, r)
        pr[0] = pr[-1] = 0.0
        verts, faces, uv = lathe(pr, pz, segments)
        semi = np.array([r, r, half]) * 1.15
    elif family == "cone":
        h = r * rng.uniform(2.0, 3.0)
        pr = np.array([0.0, r * 1.3, r * 0.9, r * 0.45, 0.0])
        pz = np.array([-h / 2, -h / 2, -h / 6, h / 6, h / 2])
        verts, faces, uv = lathe(pr, pz, segments)
        semi = np.array([1.3 * r, 1.3 * r, h / 2]) * 1.2
    elif family == "bottle":
        h = r * rng.uniform(2.5, 3.5)
        pr = np.array([0.0, r, r, r, 0.75 * r, 0.4 * r, 0.4 * r, 0.0])
        pz = h * np.array([-0.5, -0.5, -0.1, 0.15, 0.28, 0.36, 0.5, 0.5])
        verts, faces, uv = lathe(pr, pz, segments)
        semi = np.array([r, r, h / 2]) * 1.25
    else:  # torus: grasped around its tube
        minor = r * rng.uniform(0.35, 0.6)
        major = r * rng.uniform(1.4, 2.0)
        verts, faces, uv = torus_mesh(major, minor, rings=16, sides=8)
        semi = np.array([major + minor, major + minor, minor])
    return ObjectMesh(verts=verts, faces=faces, semi_axes=np.asarray(semi, dtype=np.float64), family=family, uv=uv)


def texture_colors(mesh: ObjectMesh, palette: np.ndarray, pattern: str, rng: np.random.Generator) -> np.ndarray:
    """Per-vertex RGB in [0,1]: a solid colour or a procedural pattern over the surface parameters."""
    base = palette[rng.integers(len(palette))]
    second = palette[rng.integers(len(palette))]
    around, along = mesh.uv[:, 0], mesh.uv[:, 1]
    if pattern == "solid":
        weight = np.zeros(len(mesh.verts))
    elif pattern == "stripes":
        weight = (np.floor(along * rng.integers(3, 7)) % 2).astype(np.float64)
    elif pattern == "rings":
        weight = (np.floor(around * rng.integers(2, 5) * 2) % 2).astype(np.float64)
    elif pattern == "checker":
        k = rng.integers(2, 5)
        weight = ((np.floor(along * k) + np.floor(around * 2 * k)) % 2).astype(np.float64)
    elif pattern == "noise":
        weight = rng.uniform(0, 1, len(mesh.verts))
    else:
        raise ValueError(f"unknown texture pattern {pattern!r}")
    colors = base[None, :] * (1 - weight[:, None]) + second[None, :] * weight[:, None]
    return np.clip(colors, 0.0, 1.0)
