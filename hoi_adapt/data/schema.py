"""The sample schema: the one contract every dataset class in hoi_adapt returns.

Every loader (synthetic world, Dexter+Object, EgoDexter, STB, RHD, FreiHAND, HO-3D, ObMan, exported
adapted datasets) returns a ``dict`` with exactly the keys below, so batches from any mix of datasets
collate with PyTorch's default collate. A quantity a dataset does not have is filled with zeros and its
``has_*`` flag is 0; it is never left out and never a fake number.

Conventions (everywhere in the project):

* Camera frame: OpenCV — x right, y down, z forward, **metres**. Datasets in other units or frames
  (mm, OpenGL, depth-camera frames) are converted by their loader.
* Pixels: OpenCV — the centre of pixel (col=i, row=j) has coordinates (u=i, v=j); ``uv = K @ xyz / z``.
* ``K`` is the intrinsic matrix *of the returned image* (after cropping/resizing).
* Joint order: OpenPose/FreiHAND (see :mod:`hoi_adapt.hand.joint_maps`); joint 0 is the wrist. A dataset
  whose root is the palm (STB) converts or marks it (see its loader).
* Hands are **right** hands: left-hand samples are mirrored (image, masks, keypoints, K, 3D, MANO) and
  ``was_flipped`` is 1.
* MANO pose is the absolute full pose (``flat_hand_mean=True`` convention): 3 global + 45 articulation
  axis-angle values. Loaders of datasets that store pose relative to ``hands_mean`` add it.
* Images are float32 RGB in [0, 1], channels first, after the dataset's transform.

============================ ================= ======================================================
key                          shape / dtype     meaning
============================ ================= ======================================================
image                        (3,H,W) float32   the input image (hand-object or hand-only)
image_hand_only              (3,H,W) float32   paired hand-only image of the same hand (has_pair)
K                            (3,3) float32     intrinsics of ``image`` in pixels
joints3d                     (21,3) float32    camera-frame joints, metres (has_3d)
joints2d                     (21,2) float32    pixel coordinates in ``image`` (has_2d)
joints3d_valid               (21,) float32     1 where the 3D joint is annotated and valid
joints2d_valid               (21,) float32     1 where the 2D joint is annotated and valid
hand_mask                    (H,W) float32     visible-hand mask of ``image`` (has_mask)
hand_mask_full               (H,W) float32     amodal hand mask incl. occluded parts (has_mask_full)
object_mask                  (H,W) float32     object mask (has_object_mask)
mano_pose                    (48,) float32     absolute axis-angle pose (has_mano)
mano_betas                   (10,) float32     shape (has_mano)
mano_transl                  (3,) float32      MANO translation, camera frame, metres (has_mano)
has_3d, has_2d, has_mask,    () float32        0/1 flags, one per optional quantity
has_mask_full, has_object_mask,
has_mano, has_pair
is_hand_object               () float32        1 if the object is in ``image``
occlusion                    () float32        fraction of hand pixels hidden by the object (-1 unknown)
was_flipped                  () float32        1 if the raw sample was a left hand and was mirrored
dataset                      str               dataset name, e.g. "synthetic", "dexter_object"
sequence                     str               sequence / subject / split id
frame                        int               frame index within the sequence
index                        int               index of the sample in its dataset
============================ ================= ======================================================
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

NUM_JOINTS = 21
MANO_POSE_DIM = 48
MANO_BETA_DIM = 10

FLAG_KEYS: tuple[str, ...] = (
    "has_3d", "has_2d", "has_mask", "has_mask_full", "has_object_mask", "has_mano", "has_pair",
)
SCALAR_KEYS: tuple[str, ...] = FLAG_KEYS + ("is_hand_object", "occlusion", "was_flipped")
META_KEYS: tuple[str, ...] = ("dataset", "sequence", "frame", "index")
IMAGE_KEYS: tuple[str, ...] = ("image", "image_hand_only")
MASK_KEYS: tuple[str, ...] = ("hand_mask", "hand_mask_full", "object_mask")
ALL_KEYS: tuple[str, ...] = (
    IMAGE_KEYS + ("K", "joints3d", "joints2d", "joints3d_valid", "joints2d_valid") + MASK_KEYS
    + ("mano_pose", "mano_betas", "mano_transl") + SCALAR_KEYS + META_KEYS
)


def empty_sample(height: int, width: int) -> dict[str, Any]:
    """A sample with every key present, all quantities zero and all flags 0."""
    s: dict[str, Any] = {
        "image": torch.zeros(3, height, width),
        "image_hand_only": torch.zeros(3, height, width),
        "K": torch.eye(3),
        "joints3d": torch.zeros(NUM_JOINTS, 3),
        "joints2d": torch.zeros(NUM_JOINTS, 2),
        "joints3d_valid": torch.zeros(NUM_JOINTS),
        "joints2d_valid": torch.zeros(NUM_JOINTS),
        "hand_mask": torch.zeros(height, width),
        "hand_mask_full": torch.zeros(height, width),
        "object_mask": torch.zeros(height, width),
        "mano_pose": torch.zeros(MANO_POSE_DIM),
        "mano_betas": torch.zeros(MANO_BETA_DIM),
        "mano_transl": torch.zeros(3),
        "dataset": "",
        "sequence": "",
        "frame": 0,
        "index": 0,
    }
    for key in SCALAR_KEYS:
        s[key] = torch.tensor(0.0)
    s["occlusion"] = torch.tensor(-1.0)
    return s


_SHAPES: dict[str, tuple[int, ...]] = {
    "K": (3, 3), "joints3d": (NUM_JOINTS, 3), "joints2d": (NUM_JOINTS, 2),
    "joints3d_valid": (NUM_JOINTS,), "joints2d_valid": (NUM_JOINTS,),
    "mano_pose": (MANO_POSE_DIM,), "mano_betas": (MANO_BETA_DIM,), "mano_transl": (3,),
}


def validate_sample(sample: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming the first key that breaks the schema (used by tests and loaders)."""
    missing = [k for k in ALL_KEYS if k not in sample]
    if missing:
        raise ValueError(f"sample is missing keys {missing}")
    img = sample["image"]
    if not (isinstance(img, torch.Tensor) and img.dim() == 3 and img.shape[0] == 3 and img.dtype == torch.float32):
        raise ValueError(f"image must be a (3,H,W) float32 tensor, got {getattr(img, 'shape', type(img))}")
    h, w = img.shape[1:]
    if tuple(sample["image_hand_only"].shape) != (3, h, w):
        raise ValueError("image_hand_only must match image's shape")
    for key in MASK_KEYS:
        if tuple(sample[key].shape) != (h, w):
            raise ValueError(f"{key} must be ({h},{w}), got {tuple(sample[key].shape)}")
    for key, shape in _SHAPES.items():
        value = sample[key]
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
            raise ValueError(f"{key} must be a tensor of shape {shape}, got {getattr(value, 'shape', type(value))}")
        if not torch.isfinite(value).all():
            raise ValueError(f"{key} contains NaN/inf (invalid values must be zeroed and flagged instead)")
    for key in SCALAR_KEYS:
        if not isinstance(sample[key], torch.Tensor) or sample[key].dim() != 0:
            raise ValueError(f"{key} must be a 0-d tensor")
    for key in FLAG_KEYS:
        if float(sample[key]) not in (0.0, 1.0):
            raise ValueError(f"{key} must be 0 or 1")


def as_tensor(value: Any, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.as_tensor(np.asarray(value), dtype=dtype)
