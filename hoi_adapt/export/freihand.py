"""The FreiHAND-style JSON variant of an export (layout and conventions: :mod:`hoi_adapt.data.formats.adapted`).

Tools written for FreiHAND (datasets.md §9) read ``training_{K,xyz,mano,scale}.json`` lists indexed by the
sample id plus ``training/rgb/%08d.jpg``; the export writes the JPEGs per batch and these lists at the end.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from hoi_adapt.data.formats import adapted as fmt
from hoi_adapt.utils.errors import ConfigError

ROOT_JOINT = 9
"""OpenPose middle MCP: the keypoint FreiHAND's ``pose_by_root`` places at ``uv_root`` / ``scale``."""


def freihand_mano(ann: Mapping[str, np.ndarray], hands_mean: np.ndarray) -> np.ndarray:
    """(N, 61) FreiHAND MANO vectors: pose relative to ``hands_mean`` (48), betas (10), uv_root (2), scale (1)."""
    hands_mean = np.asarray(hands_mean, dtype=np.float64).reshape(-1)
    if hands_mean.shape != (45,):
        raise ConfigError(f"hands_mean must have 45 values, got {hands_mean.size}")
    K = ann["K"].astype(np.float64)
    root = ann["joints3d"][:, ROOT_JOINT].astype(np.float64)
    uvw = np.einsum("nij,nj->ni", K, root)
    uv_root = uvw[:, :2] / uvw[:, 2:3]
    focal = 0.5 * (K[:, 0, 0] + K[:, 1, 1])
    scale = focal / root[:, 2]
    pose = np.concatenate([ann["mano_global_orient"].astype(np.float64),
                           ann["mano_hand_pose"].astype(np.float64) - hands_mean[None]], axis=1)
    return np.concatenate([pose, ann["mano_betas"].astype(np.float64), uv_root, scale[:, None]], axis=1)


def bone_scale(joints3d: np.ndarray) -> np.ndarray:
    """FreiHAND's ``scale``: length of the middle finger's proximal bone, ``||xyz[9] - xyz[10]||``."""
    j = np.asarray(joints3d, dtype=np.float64)
    return np.linalg.norm(j[:, 9] - j[:, 10], axis=-1)


def write_freihand_json(out: Path, ann: Mapping[str, np.ndarray], hands_mean: np.ndarray) -> dict[str, str]:
    """Write the four JSON lists into ``out/freihand``; returns ``{relative path: sha256}``.

    The list index is the sample id = ``int(key)``; keys must therefore be ``0..N-1`` (an export's are).
    """
    keys = [int(k) for k in ann["key"]]
    if keys != list(range(len(keys))):
        raise ConfigError("the FreiHAND variant needs sample keys 0..N-1 in order")
    lists = {
        "training_K.json": ann["K"].astype(np.float64).tolist(),
        "training_xyz.json": ann["joints3d"].astype(np.float64).tolist(),
        "training_mano.json": freihand_mano(ann, hands_mean)[:, None, :].tolist(),  # (1, 61) per sample, as FreiHAND
        "training_scale.json": bone_scale(ann["joints3d"]).tolist(),
    }
    digests = {}
    for name, value in lists.items():
        rel = f"{fmt.FREIHAND_DIR}/{name}"
        digests[rel] = fmt.write_file(out, rel, json.dumps(value).encode("utf-8"))
    return digests


__all__ = ["freihand_mano", "bone_scale", "write_freihand_json", "ROOT_JOINT"]
