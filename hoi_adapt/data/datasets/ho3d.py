"""HO-3D v2 / v3 (Hampali et al., CVPR 2020): real right hands holding YCB objects, 640x480.

Format (datasets.md §7)::

    <root>/train.txt  evaluation.txt                 lines "SEQ/0000"
    <root>/{train,evaluation}/<SEQ>/rgb/0000.png     (v2) | 0000.jpg (v3)
                                   /meta/0000.pkl    latin1 pickle (restricted unpickler)
                                   /depth/0000.png   (R + 256 G) * 0.00012498664727900177 m
                                   /segr/0000.png    segmentation (train; optional, see below)

Meta keys used: ``camMat`` (3,3), ``handJoints3D`` (train (21,3) in MANO+tips order; evaluation (3,) =
the wrist only), ``handPose`` (48,) absolute (flat_hand_mean=True), ``handBeta`` (10,), ``handTrans``
(3,), ``handBoundingBox`` (evaluation, ``[x1, y1, x2, y2]``), ``objRot`` (None = unannotated frame).

Conversions:

* all 3D values are metres in the **OpenGL** camera frame (hand at negative z); joints go to OpenCV with
  ``F = diag(1, -1, -1)`` and are reordered MANO+tips -> OpenPose;
* MANO: the global orientation becomes ``F @ R(global)``; since MANO rotates about its rest root joint
  J0 and the posed wrist equals ``J0 + transl``, the exact translation is
  ``transl_cv = F (transl + J0) - J0 = transl + (F - I) @ wrist_gl``, computed from the annotated wrist
  (no MANO model needed). The articulation (45 values) is frame-independent;
* evaluation split: only joint 0 (the wrist) is valid; the crop comes from ``handBoundingBox``.
* train frames with ``objRot is None`` or without hand joints are skipped (evaluation frames are all
  kept, in ``evaluation.txt`` order, as the challenge submission needs).

Segmentation ([U]): the folder name (``segr`` in datasets.md, ``seg`` in some v3 copies) and the channel
coding are not documented by the dataset. The loader looks for ``segr/`` then ``seg/`` (png or jpg),
resizes the mask to the image (nearest; copies exist at reduced resolution) and reads the hand from the
**blue** channel (a public HO-3D v3 script takes OpenCV channel 0 = blue as the hand) and the object from
the green channel (unconfirmed), thresholded at > 127. Override with ``seg_hand_channel`` /
``seg_object_channel`` (None disables that mask) or ``use_seg=False``.

``version="auto"`` picks v2 (png) or v3 (jpg) from the first listed frame.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from hoi_adapt.data.datasets.base import (
    OPENGL_TO_OPENCV,
    HandDataset,
    LayoutEntry,
    RawRecord,
    _str_column,
    as_float_array,
    read_text_lines,
    rigid,
)
from hoi_adapt.data.image_io import read_depth_two_channel, read_three_channel
from hoi_adapt.utils.errors import ConfigError, DataFileError
from hoi_adapt.utils.safe_pickle import load_pickle

SPLIT_DIRS = {"train": "train", "test": "evaluation"}
PUBLISHED_SIZES = {("v2", "train"): 66034, ("v2", "evaluation"): 11524, ("v3", "train"): 78297, ("v3", "evaluation"): 20137}
DEPTH_SCALE_M = 0.00012498664727900177
RGB_EXT = {"v2": ".png", "v3": ".jpg"}
SEG_DIRS = ("segr", "seg")
_CH = {"r": 0, "g": 1, "b": 2}


def read_ho3d_depth(path: str | Path) -> np.ndarray:
    """HO-3D depth PNG in metres: ``(R + 256 G) * 0.00012498664727900177``."""
    return read_depth_two_channel(path, high="g", low="r", scale=DEPTH_SCALE_M)


def opengl_to_opencv_mano(pose: np.ndarray, transl: np.ndarray, wrist_gl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MANO pose/translation from the OpenGL to the OpenCV camera frame (see module docstring)."""
    pose = np.array(pose, dtype=np.float64).reshape(48)
    R_cv = OPENGL_TO_OPENCV @ cv2.Rodrigues(pose[:3].reshape(3, 1))[0]
    pose[:3] = cv2.Rodrigues(R_cv)[0].ravel()
    wrist = np.asarray(wrist_gl, np.float64).reshape(3)
    transl_cv = np.asarray(transl, np.float64).reshape(3) + (OPENGL_TO_OPENCV - np.eye(3)) @ wrist
    return pose, transl_cv


def _numeric(value: Any, path: Path, key: str) -> np.ndarray:
    try:
        if isinstance(value, (str, bytes)):
            raise ValueError
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataFileError(path, f"{key}: not a numeric array") from None


def parse_split_file(path: Path) -> list[tuple[str, str]]:
    """``SEQ/frame`` lines -> [(seq, frame)]; malformed lines name the file and line number."""
    out = []
    for no, line in enumerate(read_text_lines(path), start=1):
        text = line.strip()
        if not text:
            continue
        parts = text.split("/")
        if len(parts) != 2 or not parts[0] or not parts[1].isdigit():
            raise DataFileError(path, f"line {no}: expected 'SEQUENCE/frame' (e.g. 'ABF10/0000'), got {text[:60]!r}")
        out.append((parts[0], parts[1]))
    return out


class HO3D(HandDataset):
    """HO-3D v2/v3 (see module docstring).

    Args:
        version: ``"auto"``, ``"v2"`` or ``"v3"``.
        use_seg: load segmentation masks when present (train split).
        seg_hand_channel / seg_object_channel: RGB channel name of the hand / object in the segmentation
            image, or None.
        **kwargs: see :class:`~hoi_adapt.data.datasets.base.HandDataset`.
    """

    name = "ho3d"
    SPLITS = {"train": "train", "test": "test", "evaluation": "test"}
    DEFAULT_FLIP_LEFT = False  # right hands only
    INDEX_VERSION = 1

    def __init__(self, root: str | Path, split: str = "train", *, version: str = "auto", use_seg: bool = True,
                 seg_hand_channel: str | None = "b", seg_object_channel: str | None = "g", **kwargs: Any) -> None:
        super().__init__(root, split, **kwargs)
        if version not in ("auto", "v2", "v3"):
            raise ConfigError(f"version must be 'auto', 'v2' or 'v3', got {version!r}")
        for ch in (seg_hand_channel, seg_object_channel):
            if ch is not None and ch not in _CH:
                raise ConfigError(f"segmentation channels must be 'r', 'g', 'b' or None, got {ch!r}")
        self.use_seg = bool(use_seg)
        self.seg_hand_channel = seg_hand_channel
        self.seg_object_channel = seg_object_channel
        sub = SPLIT_DIRS[self.split]
        self.split_file = self.root / f"{sub}.txt"
        self.split_dir = self.root / sub
        if not self.split_file.is_file():
            raise DataFileError(self.split_file, "split file not found", "expected <root>/train.txt and <root>/evaluation.txt")
        if not self.split_dir.is_dir():
            raise DataFileError(self.split_dir, "split folder not found")
        self._entries = parse_split_file(self.split_file)
        if not self._entries:
            raise DataFileError(self.split_file, "no frames listed")
        self.version = self._detect_version() if version == "auto" else version
        self._init_index()

    def _detect_version(self) -> str:
        seq, fid = self._entries[0]
        base = self.split_dir / seq / "rgb" / fid
        for ver, ext in RGB_EXT.items():
            if base.with_suffix(ext).is_file():
                return ver
        raise DataFileError(base.with_suffix(".png"), "first listed frame has no rgb image (.png for v2 or .jpg for v3)")

    def _meta_path(self, seq: str, fid: str) -> Path:
        return self.split_dir / seq / "meta" / f"{fid}.pkl"

    def _index_options(self) -> dict[str, Any]:
        return {"version": self.version}

    def _watched_paths(self) -> list[Path]:
        return [self.split_file] + [self._meta_path(s, f) for s, f in self._entries]

    def _parse_meta(self, seq: str, fid: str) -> dict[str, Any] | None:
        """One meta pickle -> index values, or None to skip the frame."""
        path = self._meta_path(seq, fid)
        meta = load_pickle(path)
        if not isinstance(meta, dict):
            raise DataFileError(path, f"expected a dict, got {type(meta).__name__}")
        train = self.split == "train"
        if train and "objRot" in meta and meta["objRot"] is None:
            return None
        if meta.get("camMat") is None:
            raise DataFileError(path, "missing key 'camMat'")
        K = as_float_array(meta["camMat"], (3, 3), path, "camMat")
        joints = np.full((21, 3), np.nan)
        hj = meta.get("handJoints3D")
        if hj is None:
            if train:
                return None
            n_joints = 0
        else:
            arr = _numeric(hj, path, "handJoints3D")
            if arr.shape == (21, 3):
                joints, n_joints = arr, 21
            elif arr.size == 3:
                joints[0], n_joints = arr.reshape(3), 1
            else:
                raise DataFileError(path, f"handJoints3D: expected shape (21, 3) or (3,), got {arr.shape}")
        mano = {}
        for key, n in (("handPose", 48), ("handBeta", 10), ("handTrans", 3)):
            if meta.get(key) is not None:
                mano[key] = as_float_array(_numeric(meta[key], path, key).reshape(-1), (n,), path, key)
        bbox = np.full(4, np.nan)
        if meta.get("handBoundingBox") is not None:
            bbox = as_float_array(_numeric(meta["handBoundingBox"], path, "handBoundingBox").reshape(-1), (4,), path,
                                  "handBoundingBox")
        has_mano = len(mano) == 3 and n_joints > 0
        return {"K": K, "joints": joints, "n_joints": n_joints, "bbox": bbox, "has_mano": has_mano,
                "pose": mano.get("handPose", np.zeros(48)) if has_mano else np.zeros(48),
                "betas": mano.get("handBeta", np.zeros(10)) if has_mano else np.zeros(10),
                "trans": mano.get("handTrans", np.zeros(3)) if has_mano else np.zeros(3)}

    def _build_index(self) -> dict[str, np.ndarray]:
        rows: dict[str, list[Any]] = {k: [] for k in ("sequence", "fid", "K", "joints", "n_joints", "bbox", "has_mano",
                                                       "pose", "betas", "trans")}
        entries = self._entries
        iterator: Any = entries
        if len(entries) > 2000:
            from tqdm import tqdm

            iterator = tqdm(entries, desc=f"indexing HO-3D {self.split}", unit="frame")
        for seq, fid in iterator:
            try:
                values = self._parse_meta(seq, fid)
            except DataFileError as exc:
                self._problem(exc.path, exc.problem)
                continue
            if values is None:
                continue
            rows["sequence"].append(seq)
            rows["fid"].append(fid)
            for key, value in values.items():
                rows[key].append(value)
        if not rows["sequence"]:
            return {"sequence": _str_column([])}
        cols = {"sequence": _str_column(rows["sequence"]), "fid": _str_column(rows["fid"]),
                "n_joints": np.asarray(rows["n_joints"], dtype=np.int64), "has_mano": np.asarray(rows["has_mano"], dtype=bool)}
        for key in ("K", "joints", "bbox", "pose", "betas", "trans"):
            cols[key] = np.stack(rows[key]).astype(np.float64)
        return cols

    def _record(self, i: int) -> RawRecord:
        ix = self._index
        seq, fid = str(ix["sequence"][i]), str(ix["fid"][i])
        joints = ix["joints"][i]
        rec = RawRecord(image=self.split_dir / seq / "rgb" / f"{fid}{RGB_EXT[self.version]}", K=ix["K"][i],
                        joints3d=joints, order="mano", to_camera=rigid(OPENGL_TO_OPENCV), is_hand_object=1.0,
                        sequence=seq, frame=int(fid), extra={"files": [self._meta_path(seq, fid)]})
        if ix["has_mano"][i]:
            rec.mano_pose, rec.mano_transl = opengl_to_opencv_mano(ix["pose"][i], ix["trans"][i], joints[0])
            rec.mano_betas = ix["betas"][i]
        if np.isfinite(ix["bbox"][i]).all():
            rec.bbox = ix["bbox"][i]
        if self.use_seg:
            seg = self._seg_path(seq, fid)
            if seg is not None:
                rec.extra["seg_path"] = seg
                rec.extra["files"].append(seg)
        return rec

    def _seg_path(self, seq: str, fid: str) -> Path | None:
        for folder in SEG_DIRS:
            for ext in (".png", ".jpg"):
                p = self.split_dir / seq / folder / f"{fid}{ext}"
                if p.is_file():
                    return p
        return None

    def _masks(self, rec: RawRecord, height: int, width: int) -> dict[str, np.ndarray]:
        path = rec.extra.get("seg_path")
        if path is None:
            return {}
        seg = read_three_channel(path, rgb=True, what="segmentation")
        out = {}
        if self.seg_hand_channel is not None:
            out["hand_mask"] = seg[:, :, _CH[self.seg_hand_channel]] > 127
        if self.seg_object_channel is not None:
            out["object_mask"] = seg[:, :, _CH[self.seg_object_channel]] > 127
        return out

    def depth_path(self, i: int) -> Path:
        """Depth PNG of sample ``i`` (decode with :func:`read_ho3d_depth`)."""
        ix = self._index
        return self.split_dir / str(ix["sequence"][i]) / "depth" / f"{ix['fid'][i]}.png"

    def size_checks(self) -> list[tuple[str, int, int]]:
        sub = SPLIT_DIRS[self.split]
        return [(f"frames listed in {sub}.txt ({self.version})", len(self._entries), PUBLISHED_SIZES[(self.version, sub)])]

    @classmethod
    def expected_layout(cls, split: str | None = None) -> list[LayoutEntry]:
        subs = [SPLIT_DIRS[cls.SPLITS[split]]] if split else list(SPLIT_DIRS.values())
        out = []
        for sub in subs:
            out += [LayoutEntry(f"{sub}.txt", kind="file",
                                note=f"frame list (v2: {PUBLISHED_SIZES[('v2', sub)]:,}, "
                                     f"v3: {PUBLISHED_SIZES[('v3', sub)]:,} lines)"),
                    LayoutEntry(f"{sub}/*/rgb", count_glob="*.*"),
                    LayoutEntry(f"{sub}/*/meta", count_glob="*.pkl"),
                    LayoutEntry(f"{sub}/*/depth", count_glob="*.png", required=False)]
            if sub == "train":
                out.append(LayoutEntry("train/*/segr", count_glob="*.*", required=False, note="segmentation (or seg/)"))
        out += [LayoutEntry("calibration", required=False, note="v3 only"),
                LayoutEntry("manual_annotations", required=False, note="v3 only")]
        return out
