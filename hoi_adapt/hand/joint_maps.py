"""The one place that knows 21-joint orders, MANO joint names and fingertip vertex presets.

The project's canonical order is OpenPose/FreiHAND: ``0 W, 1-4 thumb (MCP->tip), 5-8 index, 9-12 middle,
13-16 ring, 17-20 pinky``. Every other order is described by a gather index ``to_openpose`` with
``openpose = src[to_openpose]`` (datasets.md §0); the inverse is its argsort. Index tables are facts about
data formats, restated from datasets.md.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

ArrayT = TypeVar("ArrayT")

OPENPOSE_NAMES: tuple[str, ...] = (
    "wrist",
    "thumb_mcp", "thumb_pip", "thumb_dip", "thumb_tip",
    "index_mcp", "index_pip", "index_dip", "index_tip",
    "middle_mcp", "middle_pip", "middle_dip", "middle_tip",
    "ring_mcp", "ring_pip", "ring_dip", "ring_tip",
    "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip",
)
"""OpenPose names; for the thumb 'mcp/pip/dip' are MANO's thumb_1..3 (CMC, MCP, IP)."""

FINGERS: tuple[str, ...] = ("thumb", "index", "middle", "ring", "pinky")
OPENPOSE_TIPS: tuple[int, ...] = (4, 8, 12, 16, 20)
OPENPOSE_ROOT = 0
OPENPOSE_MIDDLE_MCP = 9
OPENPOSE_PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19)
OPENPOSE_BONES: tuple[tuple[int, int], ...] = tuple((p, c) for c, p in enumerate(OPENPOSE_PARENTS) if p >= 0)

MANO_JOINT_NAMES: tuple[str, ...] = (
    "wrist", "index1", "index2", "index3", "middle1", "middle2", "middle3",
    "pinky1", "pinky2", "pinky3", "ring1", "ring2", "ring3", "thumb1", "thumb2", "thumb3",
)
MANO_PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14)
"""MANO's kinematic tree over the 16 joints (``kintree_table[0]`` with the root set to -1)."""

# Gather indices: openpose = src[TO_OPENPOSE[name]]   (datasets.md §0, [V])
TO_OPENPOSE: dict[str, tuple[int, ...]] = {
    "openpose": tuple(range(21)),
    # MANO 16 joints + tips appended in thumb, index, middle, ring, pinky order.
    "mano": (0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20),
    # STB: 0 = palm centre, then pinky..thumb each MCP->tip.
    "stb": (0, 17, 18, 19, 20, 13, 14, 15, 16, 9, 10, 11, 12, 5, 6, 7, 8, 1, 2, 3, 4),
    # RHD (one hand): 0 = wrist, then thumb..pinky each tip->MCP.
    "rhd": (0, 4, 3, 2, 1, 8, 7, 6, 5, 12, 11, 10, 9, 16, 15, 14, 13, 20, 19, 18, 17),
    # InterHand2.6M (one hand): fingers tip->base, wrist last.
    "interhand": (20, 3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12, 19, 18, 17, 16),
}
ALIASES: dict[str, str] = {"freihand": "openpose", "mpii": "openpose", "snap": "openpose", "ho3d": "mano", "mano_tips": "mano"}

# Fingertip vertex presets (thumb, index, middle, ring, pinky) on the 778-vertex MANO mesh (datasets.md §0).
TIP_VERTEX_PRESETS: dict[str, tuple[int, int, int, int, int]] = {
    "smplx": (744, 320, 443, 554, 671),
    "freihand": (744, 320, 443, 555, 672),
    "ho3d": (744, 333, 444, 555, 672),
    "manopth": (745, 317, 444, 556, 673),
    "manopth_left": (745, 317, 445, 556, 673),
    "boukhayma": (745, 333, 444, 555, 672),
    "mks0601": (728, 353, 442, 576, 694),
}
TIP_VERTEX_PRESETS["minimal_hand"] = TIP_VERTEX_PRESETS["ho3d"]

PALM_ROOT_VERTICES: dict[str, tuple[int, int]] = {"manopth": (95, 22), "obman": (95, 218)}
"""Vertex pairs whose mean some codebases use as a palm root."""


def canonical_order(name: str) -> str:
    """Normalise an order name (aliases allowed); raise a clear error for unknown names."""
    key = name.lower()
    key = ALIASES.get(key, key)
    if key not in TO_OPENPOSE:
        known = sorted(set(TO_OPENPOSE) | set(ALIASES))
        raise ValueError(f"unknown joint order {name!r}; known orders: {', '.join(known)}")
    return key


def to_openpose_index(order: str) -> np.ndarray:
    return np.asarray(TO_OPENPOSE[canonical_order(order)], dtype=np.int64)


def from_openpose_index(order: str) -> np.ndarray:
    """Gather index with ``src = openpose[idx]`` (the inverse permutation)."""
    return np.argsort(to_openpose_index(order)).astype(np.int64)


def permutation(src: str, dst: str) -> np.ndarray:
    """Gather index ``idx`` with ``joints_dst = joints_src[..., idx, :]``."""
    return to_openpose_index(src)[from_openpose_index(dst)]


def convert(joints: ArrayT, src: str, dst: str, axis: int = -2) -> ArrayT:
    """Reorder a joint array (numpy or torch) from order ``src`` to order ``dst`` along ``axis``."""
    idx = permutation(src, dst)
    if joints.shape[axis] != 21:  # type: ignore[attr-defined]
        raise ValueError(f"expected 21 joints on axis {axis}, got shape {tuple(joints.shape)}")  # type: ignore[attr-defined]
    if isinstance(joints, np.ndarray):
        return np.take(joints, idx, axis=axis)  # type: ignore[return-value]
    import torch

    return torch.index_select(joints, axis % joints.dim(), torch.as_tensor(idx, device=joints.device))  # type: ignore[attr-defined,return-value]


def tip_vertices(preset: str | Sequence[int]) -> tuple[int, int, int, int, int]:
    """Fingertip vertex indices from a preset name or an explicit 5-tuple."""
    if isinstance(preset, str):
        if preset not in TIP_VERTEX_PRESETS:
            raise ValueError(f"unknown fingertip preset {preset!r}; known: {', '.join(sorted(TIP_VERTEX_PRESETS))}")
        return TIP_VERTEX_PRESETS[preset]
    tips = tuple(int(i) for i in preset)
    if len(tips) != 5:
        raise ValueError(f"fingertip vertices need 5 indices (thumb..pinky), got {len(tips)}")
    return tips  # type: ignore[return-value]


def mano16_to_openpose_with_tips(joints16: ArrayT, tips: ArrayT) -> ArrayT:
    """Append 5 tip points (thumb..pinky) to MANO's 16 joints and reorder to OpenPose."""
    if isinstance(joints16, np.ndarray):
        full = np.concatenate([joints16, tips], axis=-2)
    else:
        import torch

        full = torch.cat([joints16, tips], dim=-2)  # type: ignore[list-item]
    return convert(full, "mano", "openpose")
