"""Dataset views of the synthetic world, returning the common sample schema.

One class serves the method's four streams by choosing which image is the input, whether the paired
hand-only image comes along, and whether pose labels are visible:

* labelled hand-only (source):      ``image="hand", labels=True``
* hand-object without pose (target): ``image="hoi", labels=False`` (visible-hand mask only, like HO-3D ``segr``)
* synthetic pairs (source):          ``image="hoi", pair=True, labels=True``
* hand-object test (target):         ``image="hoi", labels=True``
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from hoi_adapt.data.crop import flip_horizontal
from hoi_adapt.data.formats import world as fmt
from hoi_adapt.data.image_io import read_image
from hoi_adapt.data.schema import empty_sample
from hoi_adapt.render.cameras import resize_intrinsics
from hoi_adapt.utils.errors import ConfigError, DataFileError


class SyntheticHandDataset(Dataset):
    """A split of the synthetic world as schema samples.

    Args:
        root: world folder written by ``hoi-adapt synth``.
        split: split name (e.g. ``source_hand``, ``target_hoi``).
        image: ``"hand"`` (hand-only image as input) or ``"hoi"`` (hand-object image as input).
        pair: also return the hand-only twin as ``image_hand_only``.
        labels: expose pose labels (3D/2D joints, MANO); False hides them (weak supervision).
        amodal_masks: expose the full hand mask of hand-object images (False mimics real HOI data,
            where only the visible-hand mask exists).
        out_size: resize images to this size (K follows); None keeps the stored size.
        transform: callable applied to the finished sample (augmentation).
        limit: use only the first ``limit`` samples.
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        image: Literal["hand", "hoi"] = "hand",
        pair: bool = False,
        labels: bool = True,
        amodal_masks: bool = False,
        out_size: int | None = None,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        limit: int | None = None,
    ) -> None:
        if image not in ("hand", "hoi"):
            raise ConfigError(f"SyntheticHandDataset: image must be 'hand' or 'hoi', got {image!r}")
        if pair and image != "hoi":
            raise ConfigError("SyntheticHandDataset: pair=True pairs a hand-object input with its hand-only twin; use image='hoi'")
        self.root = Path(root)
        self.split = split
        self.image = image
        self.pair = pair
        self.labels = labels
        self.amodal_masks = amodal_masks
        self.out_size = out_size
        self.transform = transform
        self.ann = fmt.load_annotations(self.root, split)
        n = len(self.ann["index"])
        self.length = n if limit is None else min(n, int(limit))
        if self.length == 0:
            raise DataFileError(self.root / split / fmt.ANNOTATIONS_FILE, "split has no samples")
        if image == "hoi" and not bool(self.ann["has_object"][: self.length].all()):
            raise DataFileError(self.root / split, "split has no hand-object images; use image='hand'")

    def __len__(self) -> int:
        return self.length

    def _load(self, kind: str, index: int) -> np.ndarray:
        return read_image(fmt.image_path(self.root, self.split, kind, index))

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not 0 <= i < self.length:
            raise IndexError(i)
        a = self.ann
        idx = int(a["index"][i])
        rgb = self._load(self.image, idx)
        masks = self._load("mask", idx).astype(np.float32) / 255.0
        hand_only = self._load("hand", idx) if (self.pair and self.image == "hoi") else None
        K = a["K"][i].astype(np.float64)
        joints2d = a["joints2d"][i].astype(np.float64)
        joints3d = a["joints3d"][i].astype(np.float64)
        pose = np.concatenate([a["mano_global_orient"][i], a["mano_hand_pose"][i]]).astype(np.float64)
        transl = a["mano_transl"][i].astype(np.float64)
        flipped = str(a["side"][i]) == "left"
        if flipped:  # the schema serves right hands: mirror everything of a left-hand sample
            f = flip_horizontal(rgb.shape[1], image=rgb, mask=masks, image_hand_only=hand_only, uv=joints2d, K=K,
                                xyz=joints3d, mano_pose=pose, mano_transl=transl)
            rgb, masks, hand_only, joints2d, K = f["image"], f["mask"], f["image_hand_only"], f["uv"], f["K"]
            joints3d, pose, transl = f["xyz"], f["mano_pose"], f["mano_transl"]
        h, w = rgb.shape[:2]
        if self.out_size is not None and (h, w) != (self.out_size, self.out_size):
            size = (self.out_size, self.out_size)
            scale = resize_intrinsics(np.eye(3), (h, w), size)
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            masks = cv2.resize(masks, size, interpolation=cv2.INTER_NEAREST)
            if hand_only is not None:
                hand_only = cv2.resize(hand_only, size, interpolation=cv2.INTER_AREA)
            K = scale @ K
            joints2d = joints2d @ scale[:2, :2].T + scale[:2, 2]
            h, w = size
        s = empty_sample(h, w)
        s["image"] = torch.from_numpy(rgb.transpose(2, 0, 1).copy()).float() / 255.0
        s["K"] = torch.from_numpy(K).float()
        if self.image == "hand":
            s["hand_mask"] = torch.from_numpy(masks[..., 1].copy())
            s["hand_mask_full"] = s["hand_mask"].clone()
            s["has_mask"] = s["has_mask_full"] = torch.tensor(1.0)
            s["occlusion"] = torch.tensor(0.0)
        else:
            s["hand_mask"] = torch.from_numpy(masks[..., 0].copy())
            s["object_mask"] = torch.from_numpy(masks[..., 2].copy())
            s["has_mask"] = s["has_object_mask"] = torch.tensor(1.0)
            s["is_hand_object"] = torch.tensor(1.0)
            s["occlusion"] = torch.tensor(float(a["occlusion"][i]))
            if self.amodal_masks:
                s["hand_mask_full"] = torch.from_numpy(masks[..., 1].copy())
                s["has_mask_full"] = torch.tensor(1.0)
        if hand_only is not None:
            s["image_hand_only"] = torch.from_numpy(hand_only.transpose(2, 0, 1).copy()).float() / 255.0
            s["has_pair"] = torch.tensor(1.0)
        if self.labels:
            s["joints3d"] = torch.from_numpy(joints3d).float()
            s["joints2d"] = torch.from_numpy(joints2d).float()
            s["joints3d_valid"] = torch.ones(21)
            s["joints2d_valid"] = torch.ones(21)
            s["mano_pose"] = torch.from_numpy(pose).float()
            s["mano_betas"] = torch.from_numpy(a["mano_betas"][i]).float()
            s["mano_transl"] = torch.from_numpy(transl).float()
            s["has_3d"] = s["has_2d"] = s["has_mano"] = torch.tensor(1.0)
        s["dataset"] = "synthetic"
        s["sequence"] = self.split
        s["frame"] = idx
        s["index"] = i
        s["was_flipped"] = torch.tensor(float(flipped))
        if self.transform is not None:
            s = self.transform(s)
        return s
