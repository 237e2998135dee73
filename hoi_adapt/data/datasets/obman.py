"""ObMan (Hasson et al., CVPR 2019): synthetic MANO hands grasping ShapeNet objects, 256x256.

Format (datasets.md §10)::

    <root>/{train,val,test}/rgb/%08d.jpg        hand + object render     -> ``image``
                           /rgb_hand/%08d.jpg   hand-only render         -> ``image_hand_only`` (has_pair)
                           /segm/%08d.png       label channels (OpenCV BGR order, see below)
                           /meta/%08d.pkl       latin1 pickle (restricted unpickler)

Sample ids are the sorted meta file names. Meta keys used: ``coords_2d`` (21,2) pixels, ``coords_3d``
(21,3) metres in an OpenGL-like camera frame (moved to OpenCV with ``diag(1, -1, -1)``), ``side``
(``"left"``/``"right"``; left hands are mirrored, ``flip_left=True``). The joint order is OpenPose (the
manopth pipeline) [I]. The camera is fixed, ``K = [[480, 0, 128], [0, 480, 128], [0, 0, 1]]`` (it implies
256x256 images; pass ``K`` for a re-rendered copy).

``segm`` PNG, channels in OpenCV (BGR) order: 0 = labels of the hand+object render, 1 = of the hand-only
render, 2 = of the object-only render; labels 21-24 hand (21/23 left, 22/24 right), 100 object. So:
``hand_mask`` (visible hand in ``image``) = channel 0 in 21-24, ``hand_mask_full`` (the whole hand,
amodal) = channel 1 in 21-24, ``object_mask`` = channel 0 == 100, and ``occlusion`` = the fraction of
the full hand hidden in ``image``. All four hand labels are accepted whatever ``side`` says (one hand
per image), so a label/side disagreement cannot silently empty the mask.

MANO: the meta holds ``hand_pose``/``pca_pose`` but no shape or translation in the documented keys,
so ``has_mano = 0``. Split sizes (about 141k / 6k / 6k) are unconfirmed [U].
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from hoi_adapt.data.datasets.base import (
    OPENGL_TO_OPENCV,
    HandDataset,
    LayoutEntry,
    RawRecord,
    _str_column,
    as_float_array,
    natural_key,
    rigid,
)
from hoi_adapt.data.image_io import read_three_channel
from hoi_adapt.utils.errors import ConfigError, DataFileError
from hoi_adapt.utils.safe_pickle import load_pickle

K_OBMAN = np.array([[480.0, 0.0, 128.0], [0.0, 480.0, 128.0], [0.0, 0.0, 1.0]])
HAND_LABELS = (21, 22, 23, 24)
OBJECT_LABEL = 100


class ObMan(HandDataset):
    """ObMan hand-object / hand-only pairs (see module docstring).

    Args:
        K: camera intrinsics (default the fixed ObMan camera).
        **kwargs: see :class:`~hoi_adapt.data.datasets.base.HandDataset`.
    """

    name = "obman"
    SPLITS = {"train": "train", "val": "val", "test": "test"}
    INDEX_VERSION = 1

    def __init__(self, root: str | Path, split: str = "train", *, K: np.ndarray | None = None, **kwargs: Any) -> None:
        super().__init__(root, split, **kwargs)
        self.K = K_OBMAN.copy() if K is None else np.asarray(K, dtype=np.float64)
        if self.K.shape != (3, 3):
            raise ConfigError(f"K must be 3x3, got shape {self.K.shape}")
        self.split_dir = self.root / self.split
        if not self.split_dir.is_dir():
            hint = "pass the parent folder" if self.root.name == self.split else "expected <root>/{train,val,test}/"
            raise DataFileError(self.split_dir, "split folder not found", hint)
        for folder in ("rgb", "meta"):
            if not (self.split_dir / folder).is_dir():
                raise DataFileError(self.split_dir / folder, "expected folder not found")
        self.meta_dir = self.split_dir / "meta"
        self._meta_names = sorted((n for n in os.listdir(self.meta_dir) if n.endswith(".pkl") and not n.startswith(".")),
                                  key=natural_key)
        self._init_index()

    def _watched_paths(self) -> list[Path]:
        return [self.meta_dir] + [self.meta_dir / n for n in self._meta_names]

    def _build_index(self) -> dict[str, np.ndarray]:
        ids, j2d, j3d, left = [], [], [], []
        for name in self._meta_names:
            path = self.meta_dir / name
            try:
                meta = load_pickle(path)
                if not isinstance(meta, dict):
                    raise DataFileError(path, f"expected a dict, got {type(meta).__name__}")
                missing = [k for k in ("coords_2d", "coords_3d", "side") if k not in meta]
                if missing:
                    raise DataFileError(path, f"missing keys {missing}")
                uv = as_float_array(meta["coords_2d"], (21, 2), path, "coords_2d")
                xyz = as_float_array(meta["coords_3d"], (21, 3), path, "coords_3d")
                side = meta["side"].decode() if isinstance(meta["side"], bytes) else str(meta["side"])
                if side not in ("left", "right"):
                    raise DataFileError(path, f"side must be 'left' or 'right', got {side!r}")
            except DataFileError as exc:
                self._problem(exc.path, exc.problem)
                continue
            ids.append(Path(name).stem)
            j2d.append(uv)
            j3d.append(xyz)
            left.append(side == "left")
        if not ids:
            return {"id": _str_column([])}
        return {"id": _str_column(ids), "joints2d": np.stack(j2d), "joints3d": np.stack(j3d),
                "is_left": np.asarray(left, dtype=bool)}

    def _record(self, i: int) -> RawRecord:
        ix = self._index
        sid = str(ix["id"][i])
        hand_only = self.split_dir / "rgb_hand" / f"{sid}.jpg"
        segm = self.split_dir / "segm" / f"{sid}.png"
        rec = RawRecord(image=self.split_dir / "rgb" / f"{sid}.jpg", K=self.K, joints3d=ix["joints3d"][i],
                        joints2d=ix["joints2d"][i], order="openpose", to_camera=rigid(OPENGL_TO_OPENCV),
                        is_left=bool(ix["is_left"][i]), is_hand_object=1.0, sequence=self.split,
                        frame=int(sid) if sid.isdigit() else i, extra={"files": [self.meta_dir / f"{sid}.pkl"]})
        if (self.split_dir / "rgb_hand").is_dir():
            rec.image_hand_only = hand_only
        if segm.is_file():
            rec.extra["segm_path"] = segm
            rec.extra["files"].append(segm)
        return rec

    def _masks(self, rec: RawRecord, height: int, width: int) -> dict[str, np.ndarray]:
        path = rec.extra.get("segm_path")
        if path is None:
            return {}
        seg = read_three_channel(path, rgb=False, what="segmentation")  # ObMan documents BGR channel order
        visible = np.isin(seg[:, :, 0], HAND_LABELS)
        full = np.isin(seg[:, :, 1], HAND_LABELS)
        if full.any():
            rec.occlusion = float(1.0 - (visible & full).sum() / full.sum())
        return {"hand_mask": visible, "hand_mask_full": full, "object_mask": seg[:, :, 0] == OBJECT_LABEL}

    @classmethod
    def expected_layout(cls, split: str | None = None) -> list[LayoutEntry]:
        splits = [cls.SPLITS[split]] if split else list(cls.SPLITS.values())
        out = []
        for sp in splits:
            out += [LayoutEntry(f"{sp}/rgb", count_glob="*.jpg"),
                    LayoutEntry(f"{sp}/rgb_hand", count_glob="*.jpg", note="hand-only renders (pairs)"),
                    LayoutEntry(f"{sp}/segm", count_glob="*.png"),
                    LayoutEntry(f"{sp}/meta", count_glob="*.pkl"),
                    LayoutEntry(f"{sp}/rgb_obj", required=False, count_glob="*.jpg", note="not used"),
                    LayoutEntry(f"{sp}/depth", required=False, count_glob="*.png", note="not used"),
                    LayoutEntry(f"{sp}/coords2d", required=False, note="not used")]
        return out
