"""RHD, the Rendered Hand Pose Dataset v1.1 (Zimmermann & Brox, ICCV 2017): synthetic, 320x320.

Format (datasets.md §8)::

    <root>/{training,evaluation}/color/%05d.png  mask/%05d.png  depth/%05d.png
    <root>/{training,evaluation}/anno_{training,evaluation}.pickle

The pickle (latin1, read with the restricted unpickler) is a dict keyed by int sample id; each value has
``uv_vis`` (42,3) pixels + visibility, ``xyz`` (42,3) metres (camera frame, OpenCV axes) and ``K`` (3,3).
Rows 0-20 are the left hand, 21-41 the right hand, each in RHD order (wrist, then each finger tip->MCP).

One hand per sample is returned: ``hand_select="visible"`` (default, Minimal-Hand-pytorch) takes the hand
with more visible keypoints (``uv_vis[:, 2] == 1``), ``"mask"`` (hand3d) the hand with more mask pixels;
ties go to the right hand. Left hands are mirrored (``flip_left=True``). The visible hand mask is the
chosen hand's label range in ``mask/``: 2-17 left, 18-33 right (0 background, 1 person; the per-part ids
inside each range are [U] and not needed). All 21 joints are annotated (the visibility flag is about
occlusion, so it does not invalidate a joint). Splits: ``train``/``training``, ``test``/``evaluation``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hoi_adapt.data.datasets.base import HandDataset, LayoutEntry, RawRecord, as_float_array
from hoi_adapt.data.image_io import read_depth_two_channel, read_mask
from hoi_adapt.utils.errors import ConfigError, DataFileError
from hoi_adapt.utils.safe_pickle import load_pickle

SPLIT_DIRS = {"train": "training", "test": "evaluation"}
PUBLISHED_SIZES = {"training": 41258, "evaluation": 2728}
LEFT_LABELS = (2, 17)
RIGHT_LABELS = (18, 33)
DEPTH_SCALE_M = 5.0 / 65535.0


def read_rhd_depth(path: str | Path) -> np.ndarray:
    """RHD depth PNG in metres: ``(R * 256 + G) / 65535 * 5``."""
    return read_depth_two_channel(path, high="r", low="g", scale=DEPTH_SCALE_M)


def hand_mask_from_labels(labels: np.ndarray, left: bool) -> np.ndarray:
    lo, hi = LEFT_LABELS if left else RIGHT_LABELS
    return (labels >= lo) & (labels <= hi)


class RHD(HandDataset):
    """Rendered Hand Pose Dataset (see module docstring).

    Args:
        hand_select: ``"visible"`` (default) or ``"mask"``.
        **kwargs: see :class:`~hoi_adapt.data.datasets.base.HandDataset`.
    """

    name = "rhd"
    SPLITS = {"train": "train", "training": "train", "test": "test", "evaluation": "test"}
    INDEX_VERSION = 1

    def __init__(self, root: str | Path, split: str = "train", *, hand_select: str = "visible", **kwargs: Any) -> None:
        super().__init__(root, split, **kwargs)
        if hand_select not in ("visible", "mask"):
            raise ConfigError(f"hand_select must be 'visible' or 'mask', got {hand_select!r}")
        self.hand_select = hand_select
        sub = SPLIT_DIRS[self.split]
        self.split_dir = self.root / sub
        if not self.split_dir.is_dir():
            hint = ("pass the parent folder" if self.root.name == sub else "expected <root>/{training,evaluation}/")
            raise DataFileError(self.split_dir, "split folder not found", hint)
        self.anno_path = self.split_dir / f"anno_{sub}.pickle"
        for folder in ("color", "mask"):
            if not (self.split_dir / folder).is_dir():
                raise DataFileError(self.split_dir / folder, "expected folder not found")
        self._init_index()

    def _watched_paths(self) -> list[Path]:
        return [self.anno_path]

    def _build_index(self) -> dict[str, np.ndarray]:
        data = load_pickle(self.anno_path)
        if not isinstance(data, dict):
            raise DataFileError(self.anno_path, f"expected a dict of samples, got {type(data).__name__}")
        ids, uvs, xyzs, Ks = [], [], [], []
        def is_id(k: Any) -> bool:
            return isinstance(k, (int, np.integer)) and not isinstance(k, bool)

        for key in sorted(data, key=lambda k: (0, int(k), "") if is_id(k) else (1, 0, str(k))):
            item = data[key]
            where = f"sample {key!r}"
            try:
                if not is_id(key):
                    raise DataFileError(self.anno_path, f"{where}: keys must be int sample ids")
                if not isinstance(item, dict):
                    raise DataFileError(self.anno_path, f"{where}: expected a dict, got {type(item).__name__}")
                missing = [k for k in ("uv_vis", "xyz", "K") if k not in item]
                if missing:
                    raise DataFileError(self.anno_path, f"{where}: missing keys {missing}")
                uv = as_float_array(item["uv_vis"], (42, 3), self.anno_path, f"{where} uv_vis")
                xyz = as_float_array(item["xyz"], (42, 3), self.anno_path, f"{where} xyz")
                K = as_float_array(item["K"], (3, 3), self.anno_path, f"{where} K")
            except DataFileError as exc:
                self._problem(exc.path, exc.problem)
                continue
            ids.append(int(key))
            uvs.append(uv)
            xyzs.append(xyz)
            Ks.append(K)
        if not ids:
            return {"id": np.zeros(0, dtype=np.int64)}
        return {"id": np.asarray(ids, dtype=np.int64), "uv_vis": np.stack(uvs).astype(np.float32),
                "xyz": np.stack(xyzs).astype(np.float32), "K": np.stack(Ks)}

    def _paths(self, sample_id: int) -> tuple[Path, Path]:
        name = f"{sample_id:05d}.png"
        return self.split_dir / "color" / name, self.split_dir / "mask" / name

    def _record(self, i: int) -> RawRecord:
        ix = self._index
        sid = int(ix["id"][i])
        image, mask_path = self._paths(sid)
        uv_vis = ix["uv_vis"][i].astype(np.float64)
        labels = None
        if self.hand_select == "mask":
            labels = read_mask(mask_path)
            left = int(hand_mask_from_labels(labels, True).sum()) > int(hand_mask_from_labels(labels, False).sum())
        else:
            vis = uv_vis[:, 2] == 1
            left = int(vis[:21].sum()) > int(vis[21:].sum())
        rows = slice(0, 21) if left else slice(21, 42)
        return RawRecord(image=image, K=ix["K"][i], joints3d=ix["xyz"][i][rows].astype(np.float64),
                         joints2d=uv_vis[rows, :2], order="rhd", is_left=left, is_hand_object=0.0,
                         sequence=SPLIT_DIRS[self.split], frame=sid,
                         extra={"mask_path": mask_path, "mask_labels": labels, "files": [mask_path]})

    def _masks(self, rec: RawRecord, height: int, width: int) -> dict[str, np.ndarray]:
        labels = rec.extra["mask_labels"]
        if labels is None:
            labels = read_mask(rec.extra["mask_path"])
        return {"hand_mask": hand_mask_from_labels(labels, rec.is_left)}

    def size_checks(self) -> list[tuple[str, int, int]]:
        sub = SPLIT_DIRS[self.split]
        return [(f"samples in anno_{sub}.pickle", len(self), PUBLISHED_SIZES[sub])]

    @classmethod
    def expected_layout(cls, split: str | None = None) -> list[LayoutEntry]:
        subs = [SPLIT_DIRS[cls.SPLITS[split]]] if split else list(SPLIT_DIRS.values())
        out = []
        for sub in subs:
            n = PUBLISHED_SIZES[sub]
            out += [LayoutEntry(f"{sub}/anno_{sub}.pickle", kind="file"),
                    LayoutEntry(f"{sub}/color", count_glob="*.png", expected_count=n),
                    LayoutEntry(f"{sub}/mask", count_glob="*.png", expected_count=n),
                    LayoutEntry(f"{sub}/depth", count_glob="*.png", expected_count=n, required=False)]
        return out
