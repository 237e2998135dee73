"""The built-in stand-in hand model: a procedural, MANO-compatible hand generated from anatomy, not from MANO.

MANO is licensed (https://mano.is.tue.mpg.de, registration required) and cannot ship with hoi_adapt. Every
part of the pipeline only needs *a* hand model with MANO's interface, so this module builds one
deterministically from a hand-designed skeleton: same keys, shapes and semantics as ``MANO_RIGHT.pkl`` /
``MANO_LEFT.pkl`` (778 vertices, 1538 faces, 16 joints, 10 shape and 135 pose-corrective directions, a 45-D
pose PCA), so ``smplx`` drives it unchanged and the official files can replace it at any time.

Canonical frame (the same as MANO's, checked against MANO's published template joints and ``hands_mean``;
see :data:`CONVENTION_NOTES`): metres; for the RIGHT hand the fingers point along -x from the wrist, the
palm faces -y, the thumb is on the +z side, so a positive rotation about +z curls the fingers. The left
hand is the exact mirror x -> -x.

Mesh construction: rings (closed vertex loops) are lofted along the skeleton and joined by "zipper"
triangle strips. The palm is a tube from the 16-vertex wrist ring (the mesh's only boundary); the thumb
branches off the palm ring at the thenar, the four fingers off the knuckle ring; a branch point is a ring
split into loops that share one "web" edge; every finger is a tube of rings closed by a cap whose pole is
the fingertip vertex. A triangulated disk with V vertices and B boundary vertices has F = 2V - 2 - B faces,
so 778 vertices and one 16-vertex boundary give exactly MANO's 1538 faces.

Shape space (``shapedirs[..., k]``, about one standard deviation of adult variation per unit beta):
see :data:`SHAPE_DIRECTIONS`. Pose correctives (``posedirs``): joint bulges proportional to
``1 - cos(angle)`` of each joint rotation (read from the trace of ``R - I``), which counteract the volume
loss of linear blend skinning at bent knuckles. The pose PCA (``hands_components``) is computed from
:class:`~hoi_adapt.hand.pose_sampler.PoseSampler` samples (first components = grasp synergies);
``hands_mean`` is the sampler's relaxed pose.
"""
from __future__ import annotations

import hashlib
import os
import pickle
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from hoi_adapt.hand.joint_maps import MANO_PARENTS, PALM_ROOT_VERTICES, TIP_VERTEX_PRESETS
from hoi_adapt.hand.pose_sampler import PoseSampler
from hoi_adapt.paths import standin_model_dir
from hoi_adapt.utils.io import npz_bytes as deterministic_npz
from hoi_adapt.utils.io import write_bytes_atomic
from hoi_adapt.utils.mesh import signed_volume
from hoi_adapt.version import __version__

NUM_VERTS = 778
NUM_FACES = 1538
WRIST_RING_SIZE = 16
SIDES = ("right", "left")
PICKLE_PROTOCOL = 2  # like the official (Python 2) MANO files
ROOT_PARENT = 4294967295  # kintree_table root as stored in the official files (uint32 max)

CONVENTION_NOTES = """\
Facts used for the canonical frame (public MANO-based code quoting the official files' values):
* MANO_RIGHT template joints (metres): wrist (0.0957, 0.0064, 0.0062), index1 (0.0076, 0.0012, 0.0269),
  middle1 (0.0010, 0.0049, 0.0028), pinky1 (0.0269, -0.0036, -0.0370), ring1 (0.0139, 0.0024, -0.0205),
  thumb1 (0.0716, -0.0091, 0.0320), thumb3 (0.0297, -0.0137, 0.0702): fingers along -x from the wrist,
  index/thumb on +z, thumb slightly on -y (palmar).
* MANO_RIGHT hands_mean, index1..3: (0.112, -0.043, 0.416), (0.109, 0.066, 0.756), (-0.096, 0.091, 0.188):
  large positive z = flexion; R_z(+a) maps -x to (-cos a, -sin a, 0), so a flexed finger moves to -y: the
  palm faces -y. MANO_LEFT's mean is the right one with (x, -y, -z) per joint (mirror x -> -x); a public
  loader offsets the left root by (-0.0957, 0.0064, 0.0062).
"""

SHAPE_DIRECTIONS: tuple[str, ...] = (
    "overall size (uniform scale about the wrist, 5% per unit)",
    "palm width (6% lateral scale of the palm; fingers move with their knuckles)",
    "finger length (the four fingers 5% longer)",
    "finger thickness (fingers and thumb 7% thicker)",
    "thumb length (5%)",
    "palm thickness (7% dorsal-palmar scale)",
    "palm length (wrist-to-knuckle distance 5%)",
    "index vs ring length (index 3% longer, ring 3% shorter)",
    "palmar soft tissue (thenar/hypothenar/pads 1.5 mm fuller)",
    "overall fleshiness (1 mm along the surface normal)",
)

# --------------------------------------------------------------------------------------------------
# Design skeleton of the RIGHT hand (metres, canonical MANO frame).
WRIST = np.array([0.092, 0.004, 0.003])
FINGER_NAMES = ("index", "middle", "ring", "pinky")  # radial -> ulnar
PART_NAMES = ("palm", "thumb", "index", "middle", "ring", "pinky")
MANO_CHAINS: dict[str, tuple[int, int, int]] = {
    "index": (1, 2, 3), "middle": (4, 5, 6), "pinky": (7, 8, 9), "ring": (10, 11, 12), "thumb": (13, 14, 15),
}
TIP_ORDER = ("thumb", "index", "middle", "ring", "pinky")  # order of TIP_VERTEX_PRESETS entries

_FINGER_SPEC: dict[str, dict[str, Any]] = {
    # MCP position, splay in degrees (+ towards the thumb), phalanx lengths (last one to the tip),
    # cross-section scale, vertices per ring.
    "index": dict(mcp=(0.007, 0.002, 0.026), splay=3.0, lengths=(0.040, 0.024, 0.022), scale=0.97, n=12),
    "middle": dict(mcp=(0.000, 0.003, 0.004), splay=-3.0, lengths=(0.044, 0.028, 0.024), scale=1.00, n=12),
    "ring": dict(mcp=(0.008, 0.001, -0.016), splay=-9.0, lengths=(0.041, 0.027, 0.023), scale=0.95, n=12),
    "pinky": dict(mcp=(0.021, -0.002, -0.034), splay=-18.0, lengths=(0.032, 0.019, 0.021), scale=0.84, n=10),
}
# Finger cross-section (middle finger; scaled per finger) at fractions of the chain, as
# (u knot, half-width, dorsal half-thickness, palmar half-thickness); u in units of (L1, L2, L3) positions.
_FINGER_PROFILE = np.array([
    # knot id: 0 base, 1 mid-P1, 2 PIP, 3 mid-P2, 4 DIP, 5 pad
    [0.0098, 0.0088, 0.0096],
    [0.0092, 0.0079, 0.0088],
    [0.0097, 0.0083, 0.0080],
    [0.0086, 0.0071, 0.0074],
    [0.0082, 0.0066, 0.0068],
    [0.0080, 0.0057, 0.0078],
])
_THUMB_SPEC = dict(
    cmc=(0.072, -0.010, 0.024),
    dirs=((-0.612, -0.153, 0.776), (-0.75, -0.22, 0.62), (-0.84, -0.26, 0.47)),
    lengths=(0.040, 0.031, 0.028),
    pad_hint=(-0.35, -0.75, -0.55),  # pad faces the fingers and the palm (opposition)
    n=12,
)
# Thumb cross-section at (metacarpal, MCP, mid-P1, IP, pad): half-width, dorsal, palmar half-thickness.
_THUMB_PROFILE = np.array([
    [0.0155, 0.0120, 0.0140],
    [0.0112, 0.0095, 0.0098],
    [0.0104, 0.0088, 0.0090],
    [0.0104, 0.0083, 0.0086],
    [0.0098, 0.0070, 0.0090],
])
# Palm stations: x, centre y, centre z, half-width, dorsal / palmar half-thickness, superellipse exponent.
_PALM_STATIONS = np.array([
    [0.092, 0.0040, 0.0030, 0.0270, 0.0155, 0.0155, 2.2],
    [0.080, 0.0030, 0.0010, 0.0310, 0.0150, 0.0165, 2.4],
    [0.070, 0.0020, 0.0000, 0.0340, 0.0145, 0.0165, 2.6],
    [0.062, 0.0015, -0.0010, 0.0355, 0.0140, 0.0155, 2.8],
    [0.042, 0.0010, -0.0030, 0.0380, 0.0135, 0.0140, 3.0],
    [0.024, 0.0010, -0.0030, 0.0390, 0.0130, 0.0135, 3.0],
    [0.006, 0.0010, -0.0030, 0.0400, 0.0125, 0.0125, 3.2],
])
_X_SPLIT = 0.062  # palm station where the thumb branches off
_PALM_RING_SIZES = {0.080: 22, 0.070: 28, 0.049: 34, 0.035: 38}  # sizes before the final adjustment
_SPLIT_PALM_SIZE = 27  # palm part of the split ring (without the two web vertices)
_SPLIT_LOBE_SIZE = 9   # thumb lobe of the split ring (without the two web vertices)

_EPS = 1e-12


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), _EPS)


def _perp(v: np.ndarray, d: np.ndarray) -> np.ndarray:
    return _unit(v - np.dot(v, d) * d)


def _smoothstep(u: np.ndarray, centre: float, half: float) -> np.ndarray:
    t = np.clip((u - centre + half) / (2.0 * half), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


# --------------------------------------------------------------------------------------------------
class _Builder:
    """Accumulates vertices (with part labels) and faces; rings are lists of vertex ids in CCW order."""

    def __init__(self) -> None:
        self.verts: list[np.ndarray] = []
        self.part: list[int] = []
        self.faces: list[tuple[int, int, int]] = []

    def add(self, points: np.ndarray, part: str) -> np.ndarray:
        points = np.atleast_2d(points)
        start = len(self.verts)
        self.verts.extend(points)
        self.part.extend([PART_NAMES.index(part)] * len(points))
        return np.arange(start, start + len(points))

    def pos(self, ids: np.ndarray) -> np.ndarray:
        return np.asarray([self.verts[i] for i in ids])

    def zipper(self, lower: np.ndarray, upper: np.ndarray, centre_lo: np.ndarray, centre_up: np.ndarray,
               e1: np.ndarray, e2: np.ndarray) -> None:
        """Triangulate the band between two loops that both run CCW about ``e1 x e2`` (outward normals).

        Vertices are matched by their angle about the loop centres in the (e1, e2) plane, so loops of
        different sizes join without twisting.
        """
        def angles(ids: np.ndarray, centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            rel = self.pos(ids) - centre
            ang = np.mod(np.arctan2(rel @ e2, rel @ e1), 2 * np.pi)
            start = int(np.argmin(ang))
            ids = np.roll(ids, -start)
            ang = np.unwrap(np.roll(ang, -start))
            return ids, ang

        a_ids, a_ang = angles(np.asarray(lower), centre_lo)
        b_ids, b_ang = angles(np.asarray(upper), centre_up)
        m, n = len(a_ids), len(b_ids)
        a_next = np.append(a_ang[1:], a_ang[0] + 2 * np.pi)
        b_next = np.append(b_ang[1:], b_ang[0] + 2 * np.pi)
        i = j = 0
        while i < m or j < n:
            if j == n or (i < m and a_next[i] <= b_next[j]):
                self.faces.append((a_ids[i], a_ids[(i + 1) % m], b_ids[j % n]))
                i += 1
            else:
                self.faces.append((a_ids[i % m], b_ids[(j + 1) % n], b_ids[j]))
                j += 1

    def quads(self, lower: np.ndarray, upper: np.ndarray) -> None:
        """Band between two loops of equal size with a 1-1 vertex correspondence (shorter diagonals)."""
        n = len(lower)
        for i in range(n):
            a, b = lower[i], lower[(i + 1) % n]
            c, d = upper[(i + 1) % n], upper[i]
            pa, pb, pc, pd = self.pos(np.array([a, b, c, d]))
            if np.linalg.norm(pa - pc) <= np.linalg.norm(pb - pd):
                self.faces += [(a, b, c), (a, c, d)]
            else:
                self.faces += [(a, b, d), (b, c, d)]

    def cap(self, ring: np.ndarray, pole: int) -> None:
        n = len(ring)
        for i in range(n):
            self.faces.append((ring[i], ring[(i + 1) % n], pole))


def _section(centre: np.ndarray, e1: np.ndarray, e2: np.ndarray, angles: np.ndarray, half_w: float,
             half_d: float, half_p: float, k: float = 2.0) -> np.ndarray:
    """Points of a superellipse cross-section: dorsal (e1) and palmar half-thicknesses differ."""
    c, s = np.cos(angles), np.sin(angles)
    ce = np.sign(c) * np.abs(c) ** (2.0 / k)
    se = np.sign(s) * np.abs(s) ** (2.0 / k)
    h = np.where(c >= 0, half_d, half_p)
    return centre + (h * ce)[:, None] * e1 + (half_w * se)[:, None] * e2


# --------------------------------------------------------------------------------------------------
class _Chain:
    """A finger (or thumb) skeleton: base joint, two more joints, tip; per-segment directions."""

    def __init__(self, base: np.ndarray, dirs: list[np.ndarray], lengths: tuple[float, float, float],
                 up_hint: np.ndarray) -> None:
        self.dirs = [_unit(np.asarray(d, dtype=np.float64)) for d in dirs]
        self.lengths = np.asarray(lengths, dtype=np.float64)
        pts = [np.asarray(base, dtype=np.float64)]
        for d, length in zip(self.dirs, self.lengths, strict=True):
            pts.append(pts[-1] + d * length)
        self.points = np.stack(pts)  # base, joint2, joint3, tip
        self.knots = np.concatenate([[0.0], np.cumsum(self.lengths)])
        self.up_hint = np.asarray(up_hint, dtype=np.float64)

    def at(self, u: float) -> tuple[np.ndarray, np.ndarray]:
        """Point and direction at arc length ``u`` (directions blended over 4 mm around the joints)."""
        seg = int(np.clip(np.searchsorted(self.knots, u, side="right") - 1, 0, 2))
        point = self.points[seg] + self.dirs[seg] * (u - self.knots[seg])
        d = self.dirs[0]
        for j in (1, 2):
            w = float(_smoothstep(np.array(u), self.knots[j], 0.004))
            d = (1 - w) * d + w * self.dirs[j]
        return point, _unit(d)

    def frame(self, u: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Centre, direction, dorsal axis e1 and e2 = d x e1 at arc length ``u``."""
        p, d = self.at(u)
        e1 = _perp(self.up_hint, d)
        return p, d, e1, np.cross(d, e1)

    def project(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Arc-length coordinate (unclamped before the base) and distance to the chain polyline."""
        best_u = np.zeros(len(pts))
        best_d = np.full(len(pts), np.inf)
        for seg in range(3):
            rel = pts - self.points[seg]
            t = rel @ self.dirs[seg]
            tc = np.clip(t, 0.0 if seg > 0 else -np.inf, self.lengths[seg] if seg < 2 else np.inf)
            dist = np.linalg.norm(rel - tc[:, None] * self.dirs[seg], axis=1)
            better = dist < best_d - 1e-12
            best_d = np.where(better, dist, best_d)
            best_u = np.where(better, self.knots[seg] + tc, best_u)
        return best_u, best_d


def _finger_chain(name: str) -> _Chain:
    spec = _FINGER_SPEC[name]
    a = np.deg2rad(spec["splay"])
    d = np.array([-np.cos(a), 0.0, np.sin(a)])
    return _Chain(np.array(spec["mcp"]), [d, d, d], spec["lengths"], np.array([0.0, 1.0, 0.0]))


def _thumb_chain() -> _Chain:
    dirs = [np.array(d) for d in _THUMB_SPEC["dirs"]]
    pad = _unit(np.array(_THUMB_SPEC["pad_hint"]))
    return _Chain(np.array(_THUMB_SPEC["cmc"]), dirs, _THUMB_SPEC["lengths"], -pad)


def _finger_profile_at(ch: Any, scale: float, u: Any) -> Any:
    """``_finger_profile`` with the chain and scale bound first (a callback of ``_fingertip``)."""
    return _finger_profile(ch, u, scale)


def _finger_profile(chain: _Chain, u: np.ndarray, scale: float) -> np.ndarray:
    L1, L2, L3 = chain.lengths
    knots = np.array([0.0, 0.45 * L1, L1, L1 + 0.5 * L2, L1 + L2, L1 + L2 + 0.45 * L3])
    return np.stack([np.interp(u, knots, _FINGER_PROFILE[:, c]) for c in range(3)], -1) * scale


def _thumb_profile(chain: _Chain, u: np.ndarray) -> np.ndarray:
    L1, L2, L3 = chain.lengths
    knots = np.array([0.5 * L1, L1, L1 + 0.5 * L2, L1 + L2, L1 + L2 + 0.45 * L3])
    return np.stack([np.interp(u, knots, _THUMB_PROFILE[:, c]) for c in range(3)], -1)


def _palm_params(x: float) -> np.ndarray:
    xs = _PALM_STATIONS[::-1, 0]
    return np.array([np.interp(x, xs, _PALM_STATIONS[::-1, c]) for c in range(1, 7)])


_PALM_E1 = np.array([0.0, 1.0, 0.0])   # dorsal
_PALM_D = np.array([-1.0, 0.0, 0.0])   # distal
_PALM_E2 = np.cross(_PALM_D, _PALM_E1)  # ulnar (-z)


def _palm_centre(x: float) -> np.ndarray:
    p = _palm_params(x)
    return np.array([x, p[0], p[1]])


def _palm_outline(x: float, phi: np.ndarray) -> np.ndarray:
    """Palm cross-section at ``x`` (superellipse) plus thenar and hypothenar bulges on the palmar side."""
    cy, cz, w, hd, hp, k = _palm_params(x)
    pts = _section(np.array([x, cy, cz]), _PALM_E1, _PALM_E2, phi, w, hd, hp, k)
    # thenar (radial-palmar, towards phi = 240 deg) fades out distally, hypothenar (ulnar-palmar, 125 deg)
    thenar = 0.0075 * np.exp(-((x - 0.072) / 0.016) ** 2)
    hypo = 0.0025 * np.exp(-((x - 0.050) / 0.025) ** 2)
    bump = thenar * np.exp(-((np.angle(np.exp(1j * (phi - np.deg2rad(235))))) / 0.6) ** 2)
    bump += hypo * np.exp(-((np.angle(np.exp(1j * (phi - np.deg2rad(125))))) / 0.45) ** 2)
    radial = _unit(pts - np.array([x, cy, cz]))
    radial[:, 0] = 0.0
    return pts + bump[:, None] * _unit(radial)


def _polar(points: np.ndarray, centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rel = points - centre
    a, b = rel @ _PALM_E1, rel @ _PALM_E2
    return np.mod(np.arctan2(b, a), 2 * np.pi), np.hypot(a, b)


def _palm_ring(x: float, n: int) -> np.ndarray:
    """``n`` palm outline points at ``x``, evenly spaced in arc length, starting near the dorsal centre."""
    phi = np.linspace(0, 2 * np.pi, 721)[:-1]
    dense = _palm_outline(x, phi)
    seg = np.linalg.norm(np.roll(dense, -1, 0) - dense, axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    targets = (np.arange(n) + 0.5) / n * s[-1]
    phi_t = np.interp(targets, s, np.append(phi, 2 * np.pi))
    return _palm_outline(x, phi_t)


def _palm_radius(x: float, theta: np.ndarray) -> np.ndarray:
    """Polar radius of the palm outline at ``x`` for polar angles ``theta`` (palm frame)."""
    phi = np.linspace(0, 2 * np.pi, 1441)[:-1]
    ang, rad = _polar(_palm_outline(x, phi), _palm_centre(x))
    order = np.argsort(ang)
    ang, rad = ang[order], rad[order]
    return np.interp(np.mod(theta, 2 * np.pi), np.concatenate([ang - 2 * np.pi, ang, ang + 2 * np.pi]),
                     np.concatenate([rad, rad, rad]))


# --------------------------------------------------------------------------------------------------
def _build_geometry(palm_extra: int = 0) -> dict[str, Any]:
    """Build the right-hand mesh; returns vertices, faces, labels and the bookkeeping for joints/weights."""
    B = _Builder()
    chains = {name: _finger_chain(name) for name in FINGER_NAMES}
    chains["thumb"] = _thumb_chain()
    joint_sets: dict[int, list[int]] = {}
    ring_of: dict[str, dict[str, np.ndarray]] = {name: {} for name in chains}

    # ---- palm: wrist ring and the rings up to the thumb split -----------------------------------
    rings: list[tuple[np.ndarray, np.ndarray]] = []  # (ids, centre)
    wrist = B.add(_palm_ring(0.092, WRIST_RING_SIZE), "palm")
    joint_sets[0] = list(wrist)
    rings.append((wrist, _palm_centre(0.092)))
    for x in (0.080, 0.070):
        ids = B.add(_palm_ring(x, _PALM_RING_SIZES[x]), "palm")
        B.zipper(rings[-1][0], ids, rings[-1][1], _palm_centre(x), _PALM_E1, _PALM_E2)
        rings.append((ids, _palm_centre(x)))

    # ---- split ring: palm outline united with the oblique section of the thumb metacarpal -----------
    thumb = chains["thumb"]
    x_s = _X_SPLIT
    c_s = _palm_centre(x_s)
    d1 = thumb.dirs[0]
    t_s = (thumb.points[0, 0] - x_s) / -d1[0]
    axis_pt = thumb.points[0] + d1 * t_s
    e1t = _perp(thumb.up_hint, d1)
    e2t = np.cross(d1, e1t)
    hw_t, hd_t, hp_t = _THUMB_PROFILE[0]

    def lobe(psi: np.ndarray) -> np.ndarray:
        """Oblique section (plane x = x_s) of the metacarpal's elliptic cylinder."""
        c, s = np.cos(psi), np.sin(psi)
        h = np.where(c >= 0, hd_t, hp_t)
        off = (h * c)[:, None] * e1t + (hw_t * s)[:, None] * e2t
        lam = -off[:, 0] / d1[0]
        return axis_pt + off + lam[:, None] * d1

    psi = np.linspace(0, 2 * np.pi, 2881)[:-1]
    lp = lobe(psi)
    th, rad = _polar(lp, c_s)
    outside = rad > _palm_radius(x_s, th) + 1e-5
    if outside.all() or not outside.any():
        raise RuntimeError("thumb lobe does not cross the palm outline")
    # the outside set is one arc of psi; find its ends (rolled so that the arc is contiguous)
    k0 = int(np.flatnonzero(~outside)[0])
    rolled = np.roll(np.arange(len(psi)), -k0)
    out_r = outside[rolled]
    first, last = int(np.flatnonzero(out_r)[0]), int(np.flatnonzero(out_r)[-1])
    psi_lo, psi_hi = psi[rolled[first]], psi[rolled[last]]
    if psi_hi < psi_lo:
        psi_hi += 2 * np.pi
    lobe_psi = np.linspace(psi_lo, psi_hi, _SPLIT_LOBE_SIZE + 2)
    lobe_pts = lobe(lobe_psi)
    th_lobe, _ = _polar(lobe_pts, c_s)
    if np.unwrap(th_lobe)[-1] < np.unwrap(th_lobe)[0]:  # make the lobe run CCW (increasing polar angle)
        lobe_pts = lobe_pts[::-1]
        th_lobe = th_lobe[::-1]
    b_pt, a_pt = lobe_pts[0], lobe_pts[-1]  # web notch vertices (palmar b, dorsal a)
    th_b, th_a = th_lobe[0], th_lobe[-1]
    # palm part: outline points from a round to b (CCW), spaced evenly in the outline parameter
    phi = np.linspace(0, 2 * np.pi, 1441)[:-1]
    dense = _palm_outline(x_s, phi)
    th_dense, _ = _polar(dense, c_s)
    span = np.mod(th_b - th_a, 2 * np.pi)
    rel = np.mod(th_dense - th_a, 2 * np.pi)
    keep = (rel > 0.04 * span) & (rel < 0.96 * span)
    order = np.argsort(rel[keep])
    arc = dense[keep][order]
    seg = np.linalg.norm(np.diff(arc, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    pick = np.interp((np.arange(_SPLIT_PALM_SIZE) + 0.5) / _SPLIT_PALM_SIZE * s[-1], s, np.arange(len(arc)))
    palm_part = arc[np.clip(np.round(pick).astype(int), 0, len(arc) - 1)]
    a_id = B.add(a_pt, "palm")[0]
    b_id = B.add(b_pt, "palm")[0]
    lobe_ids = B.add(lobe_pts[1:-1], "thumb")
    palm_ids = B.add(palm_part, "palm")
    split_ring = np.concatenate([[a_id], palm_ids, [b_id], lobe_ids])
    B.zipper(rings[-1][0], split_ring, rings[-1][1], c_s, _PALM_E1, _PALM_E2)
    palm_loop = np.concatenate([[a_id], palm_ids, [b_id]])
    thumb_loop = np.concatenate([[b_id], lobe_ids, [a_id]])
    rings.append((palm_loop, c_s))

    # ---- palm rings up to the knuckles ----------------------------------------------------------
    for x in (0.049, 0.035):
        n = _PALM_RING_SIZES[x] + (palm_extra // 2 if x == 0.049 else palm_extra - palm_extra // 2)
        ids = B.add(_palm_ring(x, n), "palm")
        B.zipper(rings[-1][0], ids, rings[-1][1], _palm_centre(x), _PALM_E1, _PALM_E2)
        rings.append((ids, _palm_centre(x)))

    # ---- web ring: the four finger loops side by side, neighbours sharing a dorsal/palmar vertex ---
    web_u, web_palmar_extra = 0.008, 0.004
    loops_pts: dict[str, np.ndarray] = {}
    for name in FINGER_NAMES:
        spec, ch = _FINGER_SPEC[name], chains[name]
        n = spec["n"]
        phis = np.pi / 2 - np.pi / n + 2 * np.pi * np.arange(n) / n
        pts = []
        for phi_k in phis:
            u = web_u + web_palmar_extra * max(0.0, -np.cos(phi_k))
            c, d, e1, e2 = ch.frame(u)
            hw, hd, hp = _finger_profile(ch, np.array([u]), spec["scale"])[0]
            pts.append(_section(c, e1, e2, np.array([phi_k]), hw, hd, hp)[0])
        loops_pts[name] = np.asarray(pts)
    # ids: own vertices per finger; shared ones between neighbours (radial f, ulnar g)
    loop_ids: dict[str, list[int | None]] = {name: [None] * _FINGER_SPEC[name]["n"] for name in FINGER_NAMES}
    for f, g in zip(FINGER_NAMES[:-1], FINGER_NAMES[1:], strict=True):
        ng = _FINGER_SPEC[g]["n"]
        dorsal = 0.5 * (loops_pts[f][0] + loops_pts[g][ng // 2 + 1])
        palmar = 0.5 * (loops_pts[f][1] + loops_pts[g][ng // 2])
        dorsal[1] = max(dorsal[1], 0.5 * (chains[f].points[0, 1] + chains[g].points[0, 1]) + 0.0012)
        d_id, p_id = B.add(np.stack([dorsal, palmar]), "palm")
        loop_ids[f][0], loop_ids[f][1] = int(d_id), int(p_id)
        loop_ids[g][ng // 2 + 1], loop_ids[g][ng // 2] = int(d_id), int(p_id)
    for name in FINGER_NAMES:
        own = [k for k, v in enumerate(loop_ids[name]) if v is None]
        ids = B.add(loops_pts[name][own], name)
        for k, i in zip(own, ids, strict=True):
            loop_ids[name][k] = int(i)
    # finger loops in CCW order: k = n/2+1 .. n-1, 0 .. n/2
    finger_loop: dict[str, np.ndarray] = {}
    for name in FINGER_NAMES:
        n = _FINGER_SPEC[name]["n"]
        order = list(range(n // 2 + 1, n)) + list(range(0, n // 2 + 1))
        finger_loop[name] = np.array([loop_ids[name][k] for k in order])
    # the web ring in palm CCW order: dorsal parts radial->ulnar, then palmar parts ulnar->radial
    web: list[int] = []
    for idx, name in enumerate(FINGER_NAMES):
        n = _FINGER_SPEC[name]["n"]
        dorsal_k = list(range(n // 2 + 1, n)) + [0]
        if idx > 0:
            dorsal_k = dorsal_k[1:]
        web += [loop_ids[name][k] for k in dorsal_k]
    for idx, name in enumerate(reversed(FINGER_NAMES)):
        n = _FINGER_SPEC[name]["n"]
        palmar_k = list(range(1, n // 2 + 1))
        if idx > 0:
            palmar_k = palmar_k[1:]
        web += [loop_ids[name][k] for k in palmar_k]
    web_ids = np.array(web)

    # ---- knuckle ring: 1-1 with the web ring, on the palm outline at each finger's MCP ----------------
    web_pos = B.pos(web_ids)
    c_k = _palm_centre(0.006)
    cy, cz, w_k, hd_k, hp_k, k_k = _palm_params(0.006)
    n_dorsal = sum(_FINGER_SPEC[f]["n"] // 2 for f in FINGER_NAMES) - (len(FINGER_NAMES) - 1)
    knuckle = []
    for i, vid in enumerate(web_ids):
        owner = [name for name in FINGER_NAMES if vid in finger_loop[name]]
        x = float(np.mean([chains[f].points[0, 0] for f in owner])) + 0.0015
        # same lateral position as the web vertex, on the palm's superellipse (dorsal part of the ring first)
        zr = np.clip((web_pos[i, 2] - cz) / w_k, -0.985, 0.985)
        dorsal = i < n_dorsal
        h = hd_k if dorsal else hp_k
        y = cy + (1 if dorsal else -1) * h * (1 - np.abs(zr) ** k_k) ** (1 / k_k)
        if dorsal:  # knuckle bumps
            y += sum(0.0022 * np.exp(-((web_pos[i, 2] - chains[f].points[0, 2]) / 0.0065) ** 2) for f in FINGER_NAMES)
        knuckle.append(np.array([x, y, cz + zr * w_k]))
    knuckle_ids = B.add(np.asarray(knuckle), "palm")
    B.zipper(rings[-1][0], knuckle_ids, rings[-1][1], c_k, _PALM_E1, _PALM_E2)
    B.quads(knuckle_ids, web_ids)
    for name in FINGER_NAMES:
        mine = [knuckle_ids[i] for i, vid in enumerate(web_ids) if vid in finger_loop[name]]
        joint_sets[MANO_CHAINS[name][0]] = mine + list(finger_loop[name])

    # ---- fingers ------------------------------------------------------------------------------
    for name in FINGER_NAMES:
        spec, ch = _FINGER_SPEC[name], chains[name]
        L1, L2, L3 = ch.lengths
        n = spec["n"]
        stations = [
            ("a", 0.5 * L1), ("pip-", L1 - 0.0055), ("pip", L1), ("pip+", L1 + 0.0055), ("mid2", L1 + 0.5 * L2),
            ("dip-", L1 + L2 - 0.0045), ("dip", L1 + L2), ("dip+", L1 + L2 + 0.0045), ("pad", L1 + L2 + 0.50 * L3),
        ]
        prev_ids = finger_loop[name]
        prev_c = ch.frame(web_u)[0]
        phis = np.pi / 2 - np.pi / n + 2 * np.pi * np.arange(n) / n
        order = list(range(n // 2 + 1, n)) + list(range(0, n // 2 + 1))
        for tag, u in stations:
            c, d, e1, e2 = ch.frame(u)
            hw, hd, hp = _finger_profile(ch, np.array([u]), spec["scale"])[0]
            bulge = 1.04 if tag in ("pip", "dip") else 1.0
            pts = _section(c, e1, e2, phis[order], hw * bulge, hd * bulge, hp, k=2.15)
            ids = B.add(pts, name)
            B.zipper(prev_ids, ids, prev_c, c, e1, e2)
            ring_of[name][tag] = ids
            prev_ids, prev_c = ids, c
        joint_sets[MANO_CHAINS[name][1]] = list(ring_of[name]["pip"])
        joint_sets[MANO_CHAINS[name][2]] = list(ring_of[name]["dip"])
        _fingertip(B, ch, name, prev_ids, prev_c, ring_of, partial(_finger_profile_at, ch, spec["scale"]))

    # ---- thumb ---------------------------------------------------------------------------------
    L1, L2, L3 = thumb.lengths
    n = _THUMB_SPEC["n"]
    phis = 2 * np.pi * (np.arange(n) + 0.5) / n
    prev_ids, prev_c = thumb_loop, axis_pt
    for tag, u in (("mcp", L1), ("mid1", L1 + 0.5 * L2), ("ip-", L1 + L2 - 0.005), ("ip", L1 + L2),
                   ("ip+", L1 + L2 + 0.005), ("pad", L1 + L2 + 0.50 * L3)):
        c, d, e1, e2 = thumb.frame(u)
        hw, hd, hp = _thumb_profile(thumb, np.array([u]))[0]
        bulge = 1.04 if tag in ("mcp", "ip") else 1.0
        ids = B.add(_section(c, e1, e2, phis, hw * bulge, hd * bulge, hp, k=2.15), "thumb")
        B.zipper(prev_ids, ids, prev_c, c, e1, e2)
        ring_of["thumb"][tag] = ids
        prev_ids, prev_c = ids, c
    joint_sets[14] = list(ring_of["thumb"]["mcp"])
    joint_sets[15] = list(ring_of["thumb"]["ip"])
    _fingertip(B, thumb, "thumb", prev_ids, prev_c, ring_of, lambda uu: _thumb_profile(thumb, uu))

    verts = np.asarray(B.verts)
    # thumb CMC: palm and lobe vertices around it (it sits inside the thenar)
    cmc = thumb.points[0]
    near = np.flatnonzero(np.linalg.norm(verts - cmc, axis=1) < 0.030)
    joint_sets[13] = [int(i) for i in near if B.part[i] in (0, 1)]

    design_joints = np.zeros((16, 3))
    design_joints[0] = WRIST
    for name, chain_ids in MANO_CHAINS.items():
        for level, jid in enumerate(chain_ids):
            design_joints[jid] = chains[name].points[level]
    return dict(
        verts=verts, faces=np.asarray(B.faces, dtype=np.int64), part=np.asarray(B.part), chains=chains,
        joint_sets=joint_sets, design_joints=design_joints, ring_of=ring_of, web_ids=web_ids,
        knuckle_ids=knuckle_ids, wrist_ids=wrist,
    )


def _fingertip(B: _Builder, ch: _Chain, name: str, prev_ids: np.ndarray, prev_c: np.ndarray,
               ring_of: dict[str, dict[str, np.ndarray]], profile) -> None:
    """Rounded cap: one smaller ring and the pole (the fingertip vertex, slightly towards the pad)."""
    L1, L2, L3 = ch.lengths
    u_pad = L1 + L2 + 0.50 * L3
    u_tip = L1 + L2 + L3
    n_prev = len(prev_ids)
    m = 8 if n_prev >= 12 else 6
    frac = 0.58
    u = u_pad + frac * (u_tip - u_pad)
    c, d, e1, e2 = ch.frame(u)
    hw, hd, hp = profile(np.array([u_pad]))[0] * np.sqrt(1 - frac**2)
    c = c - 0.0012 * e1  # the pad is fuller than the nail side
    phis = 2 * np.pi * (np.arange(m) + 0.5) / m
    ids = B.add(_section(c, e1, e2, phis, hw, hd, hp), name)
    B.zipper(prev_ids, ids, prev_c, c, e1, e2)
    ring_of[name]["cap"] = ids
    tip_c, _, e1t, _ = ch.frame(u_tip)
    pole = B.add(tip_c - 0.0015 * e1t, name)[0]
    B.cap(ids, pole)
    ring_of[name]["tip"] = np.array([pole])


# --------------------------------------------------------------------------------------------------
def _exact_regressor_row(verts: np.ndarray, ids: list[int], target: np.ndarray) -> np.ndarray:
    """Non-negative weights over ``ids`` summing to 1 whose weighted mean is exactly ``target``.

    Closest to uniform in the least-squares sense (equality-constrained projection); vertices that would
    get negative weight are dropped and the projection repeated (an active-set loop).
    """
    active = np.array(sorted(set(ids)), dtype=np.int64)
    for _ in range(len(active)):
        k = len(active)
        M = np.vstack([verts[active].T, np.ones((1, k))])  # 4 x k
        b = np.append(target, 1.0)
        u = np.full(k, 1.0 / k)
        w = u + M.T @ np.linalg.lstsq(M @ M.T, b - M @ u, rcond=None)[0]  # planar rings are rank-deficient
        if (w >= -1e-12).all() and np.abs(M @ w - b).max() < 1e-9:
            row = np.zeros(len(verts))
            row[active] = np.clip(w, 0.0, None)
            return row / row.sum()
        active = active[w > 1e-9]
        if len(active) < 4:
            break
    raise RuntimeError(f"joint {target} is not inside the hull of its vertex ring")


def _skinning_weights(verts: np.ndarray, part: np.ndarray, chains: dict[str, _Chain]) -> np.ndarray:
    """Smooth LBS weights: rigid segments with smoothstep blends around each joint; palm -> knuckles."""
    W = np.zeros((len(verts), 16))
    blend = {"index": (0.010, 0.006, 0.005), "middle": (0.010, 0.006, 0.005), "ring": (0.010, 0.006, 0.005),
             "pinky": (0.009, 0.005, 0.0045), "thumb": (0.012, 0.007, 0.006)}
    influence = np.zeros((len(verts), 5))  # how much each chain's base joint pulls the palm
    for c_idx, name in enumerate(("thumb",) + FINGER_NAMES):
        ch, (h0, h1, h2) = chains[name], blend[name]
        j1, j2, j3 = MANO_CHAINS[name]
        u, dist = ch.project(verts)
        mine = part == PART_NAMES.index(name)
        base_centre = 0.006 if name == "thumb" else 0.0
        s0 = _smoothstep(u, base_centre, h0)
        s1 = _smoothstep(u, ch.knots[1], h1)
        s2 = _smoothstep(u, ch.knots[2], h2)
        W[mine, 0] = 1 - s0[mine]
        W[mine, j1] = s0[mine] - s1[mine]
        W[mine, j2] = s1[mine] - s2[mine]
        W[mine, j3] = s2[mine]
        # palm vertices near this chain's base follow its first joint
        if name == "thumb":  # the thenar follows the metacarpal; the index side of the palm does not
            lateral = 1 - _smoothstep(dist, 0.016, 0.006)
            window = _smoothstep(u, 0.004, 0.012) * (1 - _smoothstep(u, 0.042, 0.010))
            influence[:, c_idx] = window * lateral
        else:
            radius = float(_FINGER_PROFILE[0, 0] * _FINGER_SPEC[name]["scale"])
            rel = verts - ch.points[0]
            along = rel @ ch.dirs[0]
            lat_vec = rel - along[:, None] * ch.dirs[0]
            side = np.abs(lat_vec @ _perp(np.array([0.0, 0.0, 1.0]), ch.dirs[0]))
            lateral = 1 - _smoothstep(side, radius + 0.002, 0.004)
            influence[:, c_idx] = _smoothstep(along, 0.0, h0) * lateral
    palm = part == 0
    total = influence[palm].sum(axis=1, keepdims=True)
    scale = np.where(total > 1.0, 1.0 / np.maximum(total, _EPS), 1.0)
    inf = influence[palm] * scale
    W[palm] = 0.0
    W[palm, 0] = 1.0 - inf.sum(axis=1)
    for c_idx, name in enumerate(("thumb",) + FINGER_NAMES):
        W[palm, MANO_CHAINS[name][0]] += inf[:, c_idx]
    W = np.clip(W, 0.0, None)
    return W / W.sum(axis=1, keepdims=True)


def _vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    fn = np.cross(verts[faces[:, 1]] - verts[faces[:, 0]], verts[faces[:, 2]] - verts[faces[:, 0]])
    vn = np.zeros_like(verts)
    for k in range(3):
        np.add.at(vn, faces[:, k], fn)
    return _unit(vn)


def _shape_dirs(verts: np.ndarray, faces: np.ndarray, W: np.ndarray, joints: np.ndarray,
                chains: dict[str, _Chain]) -> np.ndarray:
    """Ten documented shape directions (see SHAPE_DIRECTIONS), blended by the skinning weights."""
    V = len(verts)
    S = np.zeros((V, 3, 10))
    wrist = joints[0]
    normals = _vertex_normals(verts, faces)
    w_palm = W[:, 0]
    chain_w = {name: W[:, list(ids)].sum(axis=1) for name, ids in MANO_CHAINS.items()}
    base_of = {name: joints[ids[0]] for name, ids in MANO_CHAINS.items()}
    z_mid = float(np.mean([base_of[f][2] for f in FINGER_NAMES]))
    y_mid = float(_palm_centre(0.04)[1])

    def rigid_blend(palm_field: np.ndarray, base_disp) -> np.ndarray:
        out = w_palm[:, None] * palm_field
        for name in MANO_CHAINS:
            out += chain_w[name][:, None] * base_disp(name)[None]
        return out

    S[:, :, 0] = 0.05 * (verts - wrist)
    ez, ey, ex = np.eye(3)[2], np.eye(3)[1], np.eye(3)[0]
    S[:, :, 1] = rigid_blend(0.06 * (verts[:, 2:3] - z_mid) * ez, lambda n: 0.06 * (base_of[n][2] - z_mid) * ez)
    for name in FINGER_NAMES + ("thumb",):
        ch = chains[name]
        u, _ = ch.project(verts)
        u = np.clip(u, 0.0, None)
        along = _unit(ch.points[3] - ch.points[0])
        radial = verts - (ch.points[0] + np.clip(u, 0, ch.knots[-1])[:, None] * along)
        w = chain_w[name][:, None]
        if name == "thumb":
            S[:, :, 4] += w * 0.05 * u[:, None] * along
        else:
            S[:, :, 2] += w * 0.05 * u[:, None] * along
        S[:, :, 3] += w * 0.07 * radial
        if name == "index":
            S[:, :, 7] += w * 0.03 * u[:, None] * along
        if name == "ring":
            S[:, :, 7] -= w * 0.03 * u[:, None] * along
    S[:, :, 5] = rigid_blend(0.07 * (verts[:, 1:2] - y_mid) * ey, lambda n: 0.07 * (base_of[n][1] - y_mid) * ey)
    S[:, :, 6] = rigid_blend(0.05 * (verts[:, 0:1] - wrist[0]) * ex, lambda n: 0.05 * (base_of[n][0] - wrist[0]) * ex)
    palmar = np.clip(-normals[:, 1], 0.0, None)
    S[:, :, 8] = 0.0015 * (palmar**2)[:, None] * normals
    S[:, :, 9] = 0.0010 * normals
    return S


def _pose_dirs(verts: np.ndarray, W: np.ndarray, joints: np.ndarray, chains: dict[str, _Chain]) -> np.ndarray:
    """Knuckle bulges: outward push around joint j proportional to ``1 - cos(angle_j) = -tr(R_j - I) / 2``."""
    P = np.zeros((len(verts), 3, 135))
    for name, ids in MANO_CHAINS.items():
        ch = chains[name]
        for level, jid in enumerate(ids):
            if name == "thumb" and level == 0:
                continue  # the CMC sits deep in the thenar: no skin knuckle to bulge
            d = ch.dirs[level]
            rel = verts - joints[jid]
            along = rel @ d
            radial = rel - along[:, None] * d
            dist = np.linalg.norm(radial, axis=1)
            parent = MANO_PARENTS[jid]
            near = np.clip(W[:, jid] + W[:, parent], 0.0, 1.0)
            gauss = np.exp(-(along / 0.006) ** 2) * near * (dist < 0.025)
            dorsal = 0.5 + 0.5 * np.clip(_unit(radial) @ _perp(ch.up_hint, d), 0.0, None)
            disp = 0.0018 * (gauss * dorsal)[:, None] * _unit(radial)
            base = 9 * (jid - 1)
            for diag in (0, 4, 8):
                P[:, :, base + diag] = -0.5 * disp
    return P


def _pose_pca(joints: np.ndarray, tips: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """hands_mean (relaxed pose), hands_components (PCA of 1554 sampled poses) and their coefficients."""
    sampler = PoseSampler(joints, seed=20200614, side="right", tips=tips)
    mean = sampler.relaxed_pose()
    samples = sampler.sample(1554, "mixed")
    X = samples - mean
    cov = np.einsum("ni,nj->ij", X, X) / len(X)
    evals, evecs = np.linalg.eigh(cov)
    comps = evecs[:, ::-1].T.copy()  # rows, by decreasing variance
    big = np.argmax(np.abs(comps), axis=1)
    comps *= np.sign(comps[np.arange(45), big])[:, None]  # deterministic signs
    coeffs = np.einsum("ni,ki->nk", X, comps)
    return mean, comps, coeffs


# --------------------------------------------------------------------------------------------------
def _reorder(verts: np.ndarray, geom: dict[str, Any]) -> np.ndarray:
    """Permutation new -> old putting fingertip poles and palm-root vertices at the preset indices."""
    ring_of = geom["ring_of"]
    targets: dict[int, int] = {}
    for f_idx, name in enumerate(TIP_ORDER):
        pole = int(ring_of[name]["tip"][0])
        wanted = sorted({p[f_idx] for p in TIP_VERTEX_PRESETS.values()})
        main = TIP_VERTEX_PRESETS["smplx"][f_idx]
        targets[main] = pole
        # cap vertices by closeness to the pole, pad side first
        cap = ring_of[name]["cap"]
        ch = geom["chains"][name]
        _, _, e1, _ = ch.frame(ch.knots[-1])
        score = np.linalg.norm(verts[cap] - verts[pole], axis=1) + 0.002 * (verts[cap] - verts[pole]) @ e1
        others = [i for i in wanted if i != main]
        # most widely used alternatives first (FreiHAND / HO-3D), then manopth, then mks0601
        popularity = {i: sum(p[f_idx] == i for p in TIP_VERTEX_PRESETS.values()) for i in others}
        others.sort(key=lambda i: (-popularity[i], i))
        for idx, vid in zip(others, np.asarray(cap)[np.argsort(score)], strict=False):
            targets[idx] = int(vid)
    # palm root: a palmar vertex at the palm centre (95) and dorsal vertices above it (22, 218)
    centre = _palm_centre(0.040)
    palm_ids = np.flatnonzero(geom["part"] == 0)
    rel = verts[palm_ids] - centre
    palmar = palm_ids[np.argsort(np.linalg.norm(rel - np.array([0, -0.02, 0.0]), axis=1))]
    dorsal = palm_ids[np.argsort(np.linalg.norm(rel - np.array([0, 0.02, 0.0]), axis=1))]
    ids95 = PALM_ROOT_VERTICES["manopth"][0]
    targets[ids95] = int(palmar[0])
    targets[PALM_ROOT_VERTICES["manopth"][1]] = int(dorsal[0])
    targets[PALM_ROOT_VERTICES["obman"][1]] = int(dorsal[1])
    if len(set(targets.values())) != len(targets):
        raise RuntimeError("two preset indices were assigned the same vertex")
    new_to_old = np.full(len(verts), -1, dtype=np.int64)
    for new, old in targets.items():
        new_to_old[new] = old
    rest = [i for i in range(len(verts)) if i not in set(targets.values())]
    new_to_old[new_to_old < 0] = rest
    return new_to_old


def build_standin(side: str = "right") -> dict[str, Any]:
    """Generate the stand-in model arrays (MANO key layout, J_regressor dense) for ``side``; deterministic."""
    if side not in SIDES:
        raise ValueError(f"side must be 'right' or 'left', got {side!r}")
    right = _build_right()
    return right if side == "right" else mirror_model(right)


_CACHE: dict[str, dict[str, Any]] = {}


def _build_right() -> dict[str, Any]:
    if "right" in _CACHE:
        return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in _CACHE["right"].items()}
    geom = _build_geometry(0)
    extra = NUM_VERTS - len(geom["verts"])
    if extra != 0:
        geom = _build_geometry(extra)
    verts, faces = geom["verts"], geom["faces"]
    if len(verts) != NUM_VERTS or len(faces) != NUM_FACES:
        raise RuntimeError(f"stand-in mesh has {len(verts)} vertices / {len(faces)} faces")
    joints = geom["design_joints"]
    J_reg = np.stack([_exact_regressor_row(verts, geom["joint_sets"][j], joints[j]) for j in range(16)])
    W = _skinning_weights(verts, geom["part"], geom["chains"])
    shapedirs = _shape_dirs(verts, faces, W, joints, geom["chains"])
    posedirs = _pose_dirs(verts, W, joints, geom["chains"])
    tips = np.stack([verts[geom["ring_of"][name]["tip"][0]] for name in TIP_ORDER])
    hands_mean, comps, coeffs = _pose_pca(joints, tips)

    new_to_old = _reorder(verts, geom)
    old_to_new = np.argsort(new_to_old)
    kintree = np.array([[ROOT_PARENT] + list(MANO_PARENTS[1:]), list(range(16))], dtype=np.int64)
    out: dict[str, Any] = {
        "v_template": verts[new_to_old],
        "f": old_to_new[faces].astype(np.int64),
        "J_regressor": J_reg[:, new_to_old],
        "weights": W[new_to_old],
        "kintree_table": kintree,
        "shapedirs": shapedirs[new_to_old],
        "posedirs": posedirs[new_to_old],
        "hands_components": comps,
        "hands_mean": hands_mean,
        "hands_coeffs": coeffs,
        "J": J_reg[:, new_to_old] @ verts[new_to_old],
        "bs_style": "lbs",
        "bs_type": "lrotmin",
        "standin_notice": standin_notice(),
    }
    _CACHE["right"] = out
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in out.items()}


_MIRROR = np.array([-1.0, 1.0, 1.0])
_POSE_MIRROR = np.tile(np.array([1.0, -1.0, -1.0]), 15)


def mirror_model(arrays: dict[str, Any]) -> dict[str, Any]:
    """Exact mirror (x -> -x) of a MANO-layout model: the left hand from the right one and vice versa.

    Faces are re-wound so normals stay outward; pose-space arrays map axis-angle (x, y, z) to (x, -y, -z);
    pose correctives transform as ``P[v, a, (r, c)] * m_a * m_r * m_c`` with ``m = (-1, 1, 1)``.
    """
    out = dict(arrays)
    out["v_template"] = arrays["v_template"] * _MIRROR
    out["f"] = arrays["f"][:, [0, 2, 1]].copy()
    out["shapedirs"] = arrays["shapedirs"] * _MIRROR[None, :, None]
    sign_rc = np.outer(_MIRROR, _MIRROR).reshape(9)
    out["posedirs"] = arrays["posedirs"] * _MIRROR[None, :, None] * np.tile(sign_rc, 15)[None, None, :]
    out["hands_components"] = arrays["hands_components"] * _POSE_MIRROR[None]
    out["hands_mean"] = arrays["hands_mean"] * _POSE_MIRROR
    if "J" in arrays:
        out["J"] = arrays["J"] * _MIRROR
    return out


# --------------------------------------------------------------------------------------------------
def _generator_id() -> str:
    """Hash of the generator's source, so cached files are rebuilt whenever the code changes."""
    here = Path(__file__).resolve().parent
    h = hashlib.sha256()
    try:
        for name in ("standin.py", "pose_sampler.py", "joint_maps.py"):
            h.update((here / name).read_bytes())
    except OSError:  # sources not shipped (e.g. a frozen install): the version alone identifies the generator
        return "unknown"
    return h.hexdigest()[:12]


def _package_version() -> str:
    try:
        return __version__
    except ImportError:  # hoi_adapt imported as a namespace package (stale editable install)
        from importlib.metadata import version

        return version("hoi_adapt")


def standin_notice() -> str:
    return (
        f"NOT MANO: procedural stand-in hand model generated by hoi_adapt {_package_version()} "
        f"(generator {_generator_id()}), MANO key layout, for use where the licensed MANO files "
        "(https://mano.is.tue.mpg.de) are unavailable. Results obtained with it are not MANO results."
    )


def standin_file_names(side: str) -> tuple[str, str]:
    return f"STANDIN_MANO_{side.upper()}.pkl", f"STANDIN_MANO_{side.upper()}.npz"


def _pickle_bytes(arrays: dict[str, Any]) -> bytes:
    import scipy.sparse as sp

    data = {k: v for k, v in arrays.items()}
    data["J_regressor"] = sp.csc_matrix(arrays["J_regressor"])
    data["f"] = arrays["f"].astype(np.uint32)
    data["kintree_table"] = arrays["kintree_table"].astype(np.uint32)
    return pickle.dumps(data, protocol=PICKLE_PROTOCOL)


def npz_bytes(arrays: dict[str, Any]) -> bytes:
    """Deterministic, compressed ``.npz`` bytes of the model arrays (two generations are byte-identical)."""
    return deterministic_npz(arrays, compress=True)


def _write_if_different(path: Path, data: bytes) -> bool:
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return False
    write_bytes_atomic(path, data)
    os.chmod(path, 0o644)  # the temporary file was created 0600; the cache may be shared
    return True


def _npz_notice(path: Path) -> str | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            return str(z["standin_notice"]) if "standin_notice" in z.files else None
    except Exception:  # noqa: BLE001 - any unreadable file simply gets regenerated
        return None


def ensure_standin_files(folder: str | Path | None = None, verify: bool = False) -> dict[str, Path]:
    """Write the stand-in ``.pkl``/``.npz`` files for both sides if absent or different; return the pkl paths.

    Fast path: when both files exist and the ``.npz`` carries the current generator's notice (which
    includes a hash of the generator source) nothing is generated. ``verify=True`` regenerates and
    byte-compares. Files are written atomically, so processes racing here write identical bytes and a
    reader never sees a partial file.
    """
    folder = Path(folder) if folder is not None else standin_model_dir()
    folder.mkdir(parents=True, exist_ok=True)
    notice = standin_notice()
    paths: dict[str, Path] = {}
    for side in SIDES:
        pkl_name, npz_name = standin_file_names(side)
        pkl, npz = folder / pkl_name, folder / npz_name
        paths[side] = pkl
        if not verify and pkl.is_file() and npz.is_file() and _npz_notice(npz) == notice:
            continue
        arrays = build_standin(side)
        _write_if_different(pkl, _pickle_bytes(arrays))
        _write_if_different(npz, npz_bytes(arrays))
    return paths


def standin_npz_path(side: str = "right", folder: str | Path | None = None) -> Path:
    """Path of the stand-in ``.npz`` for ``side`` (generated on first use)."""
    pkl = ensure_standin_files(folder)[side]
    return pkl.with_suffix(".npz")


# --------------------------------------------------------------------------------------------------
def mesh_report(verts: np.ndarray, faces: np.ndarray, check_intersections: bool = True) -> dict[str, Any]:
    """Topology and geometry checks used by the tests and by ``hoi-adapt hand-model``.

    Returns counts of boundary loops and their sizes, non-manifold edges, vertices whose faces do not form
    one fan, degenerate and duplicate faces, inconsistently oriented edges, the signed volume with the
    boundary capped, and the number of intersecting non-adjacent triangle pairs.
    """
    faces = np.asarray(faces, dtype=np.int64)
    V = len(verts)
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    key = np.sort(e, axis=1)
    uniq, inv, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    inv = inv.ravel()
    boundary_edges = uniq[counts == 1]
    # directed-edge consistency: each interior edge must appear once in each direction
    from collections import Counter

    directed = Counter(map(tuple, e.tolist()))
    boundary_set = {tuple(x) for x in boundary_edges.tolist()}
    dup_directed = sum(c - 1 for c in directed.values() if c > 1)
    inconsistent = sum(1 for (a, b) in directed if (b, a) not in directed and (min(a, b), max(a, b)) not in boundary_set)
    # boundary loops
    adj: dict[int, list[int]] = {}
    for a, b in boundary_edges.tolist():
        adj.setdefault(a, []).append(b)
        adj.setdefault(b, []).append(a)
    loops, seen = [], set()
    for start in adj:
        if start in seen:
            continue
        size, prev, cur = 0, None, start
        while True:
            seen.add(cur)
            size += 1
            nxt = [n for n in adj[cur] if n != prev]
            if not nxt or nxt[0] == start or nxt[0] in seen:
                break
            prev, cur = cur, nxt[0]
        loops.append(size)
    # one fan per vertex: faces around a vertex connected through shared edges
    bad_fans = 0
    vf: list[list[int]] = [[] for _ in range(V)]
    for fi, tri in enumerate(faces.tolist()):
        for vtx in tri:
            vf[vtx].append(fi)
    for vtx in range(V):
        fl = vf[vtx]
        if not fl:
            bad_fans += 1
            continue
        comp = {fl[0]}
        frontier = [fl[0]]
        while frontier:
            cur = frontier.pop()
            cur_edges = {frozenset(p) for p in ((faces[cur][0], faces[cur][1]), (faces[cur][1], faces[cur][2]), (faces[cur][2], faces[cur][0])) if vtx in p}
            for other in fl:
                if other in comp:
                    continue
                o = faces[other]
                oe = {frozenset(p) for p in ((o[0], o[1]), (o[1], o[2]), (o[2], o[0])) if vtx in p}
                if cur_edges & oe:
                    comp.add(other)
                    frontier.append(other)
        bad_fans += len(comp) != len(fl)
    tri = verts[faces]
    area2 = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    degenerate = int((area2 < 1e-12).sum()) + int((faces[:, 0] == faces[:, 1]).sum() + (faces[:, 1] == faces[:, 2]).sum() + (faces[:, 0] == faces[:, 2]).sum())
    dup_faces = len(faces) - len(np.unique(np.sort(faces, axis=1), axis=0))
    report: dict[str, Any] = dict(
        num_verts=V, num_faces=len(faces), boundary_loops=sorted(loops), nonmanifold_edges=int((counts > 2).sum()),
        bad_fans=int(bad_fans), degenerate_faces=degenerate, duplicate_faces=int(dup_faces),
        inconsistent_edges=int(inconsistent + dup_directed),
        signed_volume=float(signed_volume(verts, faces)), min_edge=float(np.linalg.norm(
            verts[uniq[:, 0]] - verts[uniq[:, 1]], axis=1).min()),
    )
    if check_intersections:
        report["self_intersections"] = int(count_self_intersections(verts, faces))
    return report


def count_self_intersections(verts: np.ndarray, faces: np.ndarray, eps: float = 1e-9) -> int:
    """Number of (edge, triangle) pairs that cross, over edge/triangle pairs sharing no vertex."""
    faces = np.asarray(faces, dtype=np.int64)
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges = np.unique(np.sort(e, axis=1), axis=0)
    p, q = verts[edges[:, 0]], verts[edges[:, 1]]
    tri = verts[faces]
    emin, emax = np.minimum(p, q), np.maximum(p, q)
    tmin, tmax = tri.min(axis=1), tri.max(axis=1)
    hits = 0
    chunk = 256
    for s in range(0, len(edges), chunk):
        sl = slice(s, s + chunk)
        overlap = np.all((emin[sl, None] <= tmax[None] + eps) & (emax[sl, None] >= tmin[None] - eps), axis=2)
        ei, fi = np.nonzero(overlap)
        ei = ei + s
        share = (edges[ei, 0:1] == faces[fi]).any(axis=1) | (edges[ei, 1:2] == faces[fi]).any(axis=1)
        ei, fi = ei[~share], fi[~share]
        if len(ei) == 0:
            continue
        o, d = p[ei], q[ei] - p[ei]
        a, b, c = tri[fi, 0], tri[fi, 1], tri[fi, 2]
        e1, e2 = b - a, c - a
        h = np.cross(d, e2)
        det = np.einsum("ij,ij->i", e1, h)
        ok = np.abs(det) > 1e-18
        inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
        sv = o - a
        u = np.einsum("ij,ij->i", sv, h) * inv
        qv = np.cross(sv, e1)
        v = np.einsum("ij,ij->i", d, qv) * inv
        t = np.einsum("ij,ij->i", e2, qv) * inv
        hit = ok & (u > eps) & (v > eps) & (u + v < 1 - eps) & (t > eps) & (t < 1 - eps)
        hits += int(hit.sum())
    return hits


__all__ = [
    "build_standin", "ensure_standin_files", "standin_npz_path", "standin_notice", "standin_file_names",
    "mirror_model", "mesh_report", "count_self_intersections", "npz_bytes", "SHAPE_DIRECTIONS",
    "CONVENTION_NOTES", "NUM_VERTS", "NUM_FACES",
]
