"""The FreiHAND-style JSON variant of an export (layout and conventions: :mod:`hoi_adapt.data.formats.adapted`).

Tools written for FreiHAND (datasets.md §9) read ``training_{K,xyz,mano,scale}.json`` lists indexed by the
sample id plus ``training/rgb/%08d.jpg``; the export writes the JPEGs per batch and these lists at the end.

The lists are self-consistent in FreiHAND's own convention: ``training_xyz`` holds the *kinematic* skeleton of the
exported MANO parameters (MANO's skinning joints plus fingertip vertices, ``hand.model.SKELETONS``), so re-posing
``training_mano`` the FreiHAND way (pose relative to ``hands_mean``, root joint 9 placed at ``uv_root`` and
depth ``focal / scale``) gives back ``training_xyz`` to float precision. The export's own annotations keep the
estimator's skeleton (its manifest names the definition).
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hoi_adapt.data.formats import adapted as fmt
from hoi_adapt.utils.errors import ConfigError

ROOT_JOINT = 9
"""OpenPose middle MCP: the keypoint FreiHAND's ``pose_by_root`` places at ``uv_root`` / ``scale``."""


def kinematic_joints(ann: Mapping[str, np.ndarray], hand_model: Any, chunk: int = 256) -> np.ndarray:
    """(N, 21, 3) kinematic skeleton (camera frame, metres) of the annotations' MANO parameters (absolute pose)."""
    parts = []
    with torch.no_grad():
        for s in range(0, len(ann["mano_betas"]), chunk):
            cut = {k: torch.as_tensor(np.asarray(ann[k][s:s + chunk], np.float32))
                   for k in ("mano_global_orient", "mano_hand_pose", "mano_betas", "mano_transl")}
            out = hand_model(cut["mano_global_orient"], cut["mano_hand_pose"], cut["mano_betas"], cut["mano_transl"])
            parts.append(hand_model.skeleton(out, "kinematic").double().cpu().numpy())
    return np.concatenate(parts) if parts else np.zeros((0, 21, 3))


def freihand_mano(ann: Mapping[str, np.ndarray], hands_mean: np.ndarray, xyz: np.ndarray | None = None) -> np.ndarray:
    """(N, 61) FreiHAND MANO vectors: pose relative to ``hands_mean`` (48), betas (10), uv_root (2), scale (1).

    ``xyz``: the skeleton whose root joint 9 ``uv_root``/``scale`` place (default the annotations' ``joints3d``)."""
    hands_mean = np.asarray(hands_mean, dtype=np.float64).reshape(-1)
    if hands_mean.shape != (45,):
        raise ConfigError(f"hands_mean must have 45 values, got {hands_mean.size}")
    K = ann["K"].astype(np.float64)
    root = (ann["joints3d"] if xyz is None else xyz)[:, ROOT_JOINT].astype(np.float64)
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


def write_freihand_json(out: Path, ann: Mapping[str, np.ndarray], hand_model: Any) -> dict[str, str]:
    """Write the four JSON lists into ``out/freihand`` (kinematic skeleton, see above); returns ``{relative path: sha256}``.

    The list index is the sample id = ``int(key)``; keys must therefore be ``0..N-1`` (an export's are).
    """
    keys = [int(k) for k in ann["key"]]
    if keys != list(range(len(keys))):
        raise ConfigError("the FreiHAND variant needs sample keys 0..N-1 in order")
    xyz = kinematic_joints(ann, hand_model)
    hands_mean = hand_model.hands_mean.detach().cpu().numpy()
    lists = {
        "training_K.json": ann["K"].astype(np.float64).tolist(),
        "training_xyz.json": xyz.tolist(),
        "training_mano.json": freihand_mano(ann, hands_mean, xyz)[:, None, :].tolist(),  # (1, 61) per sample, as FreiHAND
        "training_scale.json": bone_scale(xyz).tolist(),
    }
    digests = {}
    for name, value in lists.items():
        rel = f"{fmt.FREIHAND_DIR}/{name}"
        digests[rel] = fmt.write_file(out, rel, json.dumps(value).encode("utf-8"))
    return digests


__all__ = ["freihand_mano", "kinematic_joints", "bone_scale", "write_freihand_json", "ROOT_JOINT"]
