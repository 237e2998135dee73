"""Place an object in a posed hand so that the fingers wrap around it or touch it.

Works on the 21-joint skeleton in OpenPose order (any hand model, stand-in or MANO), in the hand's own
frame. The object's size comes from the grasp aperture, so a fist holds a thick object, a pinch a small
one, and an open hand supports an object on its palm.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FINGER_HALF_THICKNESS = 0.008  # metres: distance from a finger's joint axis to its pad surface
PALM_HALF_THICKNESS = 0.014


@dataclass
class Placement:
    """Where the object sits: rotation (object frame -> hand frame), centre, and its grasp radius."""

    rotation: np.ndarray  # (3,3)
    centre: np.ndarray  # (3,)
    radius: float


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-9)


def palm_frame(joints: np.ndarray, side: str = "right") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Palm centre, palmar normal (pointing out of the palm) and the radial->ulnar width axis."""
    wrist, index_mcp, middle_mcp, pinky_mcp = joints[0], joints[5], joints[9], joints[17]
    centre = (wrist + index_mcp + middle_mcp + joints[13] + pinky_mcp) / 5.0
    normal = _unit(np.cross(index_mcp - wrist, pinky_mcp - wrist))
    if side == "left":
        normal = -normal
    width = _unit(pinky_mcp - index_mcp)
    return centre, normal, width


def _frame_with_axis(axis: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A rotation whose third column is ``axis``, randomly spun about it."""
    z = _unit(axis)
    helper = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = _unit(np.cross(helper, z))
    y = np.cross(z, x)
    spin = rng.uniform(0, 2 * np.pi)
    c, s = np.cos(spin), np.sin(spin)
    x, y = c * x + s * y, -s * x + c * y
    return np.stack([x, y, z], axis=1)


def place_object(joints: np.ndarray, kind: str, rng: np.random.Generator, side: str = "right") -> Placement:
    """Object placement for a hand posed with grasp ``kind`` (power/pinch/tripod/open/...)."""
    centre_palm, normal, width = palm_frame(joints, side)
    tips = joints[[4, 8, 12, 16, 20]]
    if kind == "pinch":
        a, b = joints[4], joints[8]
        centre = 0.5 * (a + b) + 0.004 * normal
        radius = max(0.5 * float(np.linalg.norm(a - b)) - 0.5 * FINGER_HALF_THICKNESS, 0.009)
        axis = _unit(np.cross(b - a, normal) + 0.3 * rng.normal(size=3))
    elif kind == "tripod":
        pts = joints[[4, 8, 12]]
        centre = pts.mean(0) + 0.004 * normal
        radius = max(float(np.linalg.norm(pts - centre, axis=1).mean()) - 0.5 * FINGER_HALF_THICKNESS, 0.01)
        axis = _unit(normal + 0.4 * rng.normal(size=3))
    elif kind in ("open", "spread"):
        radius = float(rng.uniform(0.022, 0.045))
        centre = centre_palm + normal * (PALM_HALF_THICKNESS + radius * 0.9)
        centre = centre + 0.35 * (joints[9] - centre_palm)  # towards the knuckles, where it rests
        axis = _unit(width + 0.5 * rng.normal(size=3))
    else:  # power / relaxed / anything wrapping
        pads = np.concatenate([tips[1:], joints[[6, 10, 14, 18]], tips[:1]])
        palm_surface = centre_palm + normal * PALM_HALF_THICKNESS
        centre = 0.5 * (palm_surface + pads.mean(0))
        radius = float(np.median(np.linalg.norm(pads - centre, axis=1))) - FINGER_HALF_THICKNESS
        axis = _unit(width + 0.15 * rng.normal(size=3))
    radius = float(np.clip(radius, 0.009, 0.06))
    centre = centre + rng.normal(scale=0.002, size=3)
    return Placement(rotation=_frame_with_axis(axis, rng), centre=centre, radius=radius)
