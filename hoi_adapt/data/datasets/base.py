"""The common machinery of the real-dataset loaders: raw record -> schema sample, and the index cache.

Each dataset module only knows its on-disk format. It scans the files once into an *index* (a dict of
equally long numpy columns, cached as ``.npz``) and turns index row ``i`` into a :class:`RawRecord`:
the image path, the intrinsics, and the joints **in the dataset's own units, camera frame and joint
order**, with NaN marking invalid values. :class:`HandDataset` does everything else, identically for
every dataset:

1. joints: NaN/inf (the parsers turn each dataset's invalid markers into NaN) -> invalid; unit scale
   to metres; ``to_camera`` rigid transform into the OpenCV colour-camera frame; reorder to OpenPose
   (``order`` is a :mod:`hoi_adapt.hand.joint_maps` name or ``"tips"`` for the 5 fingertips);
2. 2D joints: the dataset's own (reordered) or, if it has none, the projection of the valid 3D joints;
3. left hands are mirrored to right hands when ``flip_left`` (image, masks, paired image, 2D, K, 3D,
   MANO, box; ``was_flipped`` = 1);
4. a square crop around the hand (hand box if the dataset gives one, else the valid 2D joints, else
   the hand mask, else the whole image), resized to ``out_size``; K and 2D joints follow the crop;
5. invalid joints are zeroed with their valid flag 0, so a sample never holds NaN;
6. ``transform`` (e.g. augmentation) is applied last to the finished sample dict.

The index cache lives in ``<cache_dir>/index/<dataset>_<split>_<hash>.npz`` where the hash covers the
root path, the index-affecting options and the loader's index version. It stores a signature of the
annotation files (size and mtime of every watched file, mtime of watched folders) and is rebuilt when
that changes. Writes are atomic.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch.utils.data import Dataset

from hoi_adapt.data import crop as C
from hoi_adapt.data.image_io import is_image_file, read_image
from hoi_adapt.data.schema import NUM_JOINTS, empty_sample, validate_sample
from hoi_adapt.hand import joint_maps
from hoi_adapt.paths import cache_dir
from hoi_adapt.render.cameras import project
from hoi_adapt.utils.errors import ConfigError, DataFileError
from hoi_adapt.utils.io import atomic_path

MASK_NAMES: tuple[str, ...] = ("hand_mask", "hand_mask_full", "object_mask")
_MASK_FLAGS = {"hand_mask": "has_mask", "hand_mask_full": "has_mask_full", "object_mask": "has_object_mask"}


@dataclass
class RawRecord:
    """One sample as the dataset stores it (see the module docstring for who converts what)."""

    image: Path
    K: np.ndarray
    """(3,3) intrinsics of the full image, pixels."""
    joints3d: np.ndarray | None = None
    """(J,3) in the dataset's units, frame and joint order; NaN = invalid."""
    joints2d: np.ndarray | None = None
    """(J,2) full-image pixels in the dataset's joint order; NaN = invalid. None: project the 3D joints."""
    order: str = "openpose"
    """A joint_maps order name, or ``"tips"`` (5 fingertips thumb..pinky -> OpenPose 4, 8, 12, 16, 20)."""
    unit_scale: float = 1.0
    """Multiply ``joints3d`` by this to get metres."""
    to_camera: np.ndarray | None = None
    """(3,4) ``[R | t]`` (t in metres) mapping scaled joints into the OpenCV colour-camera frame."""
    is_left: bool = False
    image_hand_only: Path | None = None
    mano_pose: np.ndarray | None = None
    """(48,) absolute axis-angle pose in the OpenCV camera frame (conversion is the dataset's job)."""
    mano_betas: np.ndarray | None = None
    mano_transl: np.ndarray | None = None
    bbox: np.ndarray | None = None
    """(4,) hand box ``[x1, y1, x2, y2]`` in full-image pixels; takes priority for the crop."""
    is_hand_object: float = 0.0
    occlusion: float = -1.0
    sequence: str = ""
    frame: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LayoutEntry:
    """One item of a dataset's expected tree, for ``data_prep/check_dataset.py`` and the README."""

    path: str
    """Relative to the root; may be a glob (``data/*/color``) and list alternatives (``images/B1|B1``)."""
    kind: str = "dir"
    """``"dir"`` or ``"file"``."""
    required: bool = True
    count_glob: str | None = None
    """Files to count below each match of ``path`` (e.g. ``"*.png"``)."""
    expected_count: int | None = None
    """Published total of ``count_glob`` files over all matches (None: unknown)."""
    note: str = ""


# ------------------------------------------------------------------------------------ small helpers
def natural_key(name: str) -> list[Any]:
    """Sort key treating digit runs as numbers, so ``img_2`` < ``img_10`` (and padded names sort as usual)."""
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", name)]


def list_images(folder: Path) -> list[Path]:
    """Image files of ``folder`` in natural order; a missing folder raises ``DataFileError``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFileError(folder, "expected folder not found")
    names = [n for n in os.listdir(folder) if is_image_file(n)]
    return [folder / n for n in sorted(names, key=natural_key)]


def require_dir(path: Path, hint: str | None = None) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise DataFileError(path, "expected folder not found", hint)
    return path


def require_file(path: Path, hint: str | None = None) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataFileError(path, "expected file not found", hint)
    return path


def read_text_lines(path: Path) -> list[str]:
    """Lines of a text file (undecodable bytes become U+FFFD, so a parser can name the line)."""
    path = require_file(path)
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        raise DataFileError(path, f"cannot read file ({exc.strerror or exc})") from None
    if "\x00" in text:
        raise DataFileError(path, "binary data in a text annotation file")
    return text.splitlines()


def load_json(path: Path) -> Any:
    """Parse a JSON file; syntax errors name the line and column."""
    path = require_file(path)
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise DataFileError(path, f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except (UnicodeDecodeError, OSError) as exc:
        raise DataFileError(path, f"cannot read JSON ({exc})") from None


def as_float_array(value: Any, shape: tuple[int, ...], path: Path, what: str) -> np.ndarray:
    """``np.asarray(value, float64)`` checked against ``shape`` (-1 = any); errors name file and key."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataFileError(path, f"{what}: not a numeric array (ragged or non-numeric values)") from None
    if arr.ndim != len(shape) or any(s not in (-1, a) for s, a in zip(shape, arr.shape, strict=True)):
        want = "(" + ", ".join("N" if s == -1 else str(s) for s in shape) + ")"
        raise DataFileError(path, f"{what}: expected shape {want}, got {arr.shape}")
    return arr


def rigid(R: np.ndarray, t: Sequence[float] = (0.0, 0.0, 0.0)) -> np.ndarray:
    """``[R | t]`` as a (3,4) array."""
    out = np.zeros((3, 4))
    out[:, :3] = np.asarray(R, dtype=np.float64)
    out[:, 3] = np.asarray(t, dtype=np.float64)
    return out


OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0])
"""Rotation taking OpenGL camera coordinates (y up, z backward) to OpenCV (y down, z forward)."""


def to_openpose(arr: np.ndarray, order: str) -> np.ndarray:
    """Reorder ``(J, D)`` joints to the 21 OpenPose joints; joints a source lacks become NaN."""
    arr = np.asarray(arr, dtype=np.float64)
    if order == "tips":
        if arr.shape[0] != 5:
            raise ValueError(f"'tips' order needs 5 joints, got {arr.shape[0]}")
        out = np.full((NUM_JOINTS, arr.shape[1]), np.nan)
        out[list(joint_maps.OPENPOSE_TIPS)] = arr
        return out
    return joint_maps.convert(arr, order, "openpose")


def _str_column(values: Sequence[str]) -> np.ndarray:
    return np.array([str(v) for v in values], dtype=np.str_) if len(values) else np.zeros(0, dtype="<U1")


# ------------------------------------------------------------------------------------- index cache
def file_signature(root: Path, paths: Sequence[Path]) -> str:
    """Hash of (relative path, size, mtime) of files and (path, mtime) of folders; missing paths count too."""
    h = hashlib.sha1()
    for p in paths:
        p = Path(p)
        try:
            rel = str(p.relative_to(root))
        except ValueError:
            rel = str(p)
        try:
            st = p.stat()
            kind = "d" if p.is_dir() else "f"
            h.update(f"{rel}\t{kind}\t{0 if kind == 'd' else st.st_size}\t{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{rel}\tmissing\n".encode())
    return h.hexdigest()


def load_index_cache(path: Path, signature: str) -> dict[str, np.ndarray] | None:
    """The cached columns, or None when absent, stale or unreadable."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["__signature__"]) != signature:
                return None
            return {k: data[k] for k in data.files if k != "__signature__"}
    except Exception:  # noqa: BLE001 - a broken cache is simply rebuilt
        return None


def save_index_cache(path: Path, columns: dict[str, np.ndarray], signature: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, __signature__=np.array(signature), **columns)


@dataclass
class EvaluationSetup:
    """How a dataset is read for scoring under a protocol, its quirks resolved by its loader."""

    split: str
    options: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    root_is_palm: bool = False  # joint 0 of the samples is the palm centre (scored by the palm-rooted protocol only)


# ------------------------------------------------------------------------------------ the base class
class HandDataset(Dataset):
    """Schema samples from a real dataset; subclasses implement the ``_build_index``/``_record`` hooks.

    Args:
        root: dataset root folder (see ``data_prep/README.md`` for each tree).
        split: split name; each dataset lists its own (``SPLITS``).
        out_size: side of the square output crop in pixels.
        crop_scale: crop side / hand extent; defaults per dataset (``DEFAULT_CROP_SCALE``).
        crop_min_frac: the smallest crop side as a fraction of the image's longer side.
        crop_source: ``"auto"`` (box, then 2D joints, then mask, then whole image) or one of
            ``"keypoints"``, ``"mask"``, ``"full"`` (falling back to the whole image).
        flip_left: mirror left hands to right hands; None = the dataset's documented default.
        transform: callable applied to the finished sample dict (last step).
        use_cache: read/write the index cache.
        cache_dir: cache root (default :func:`hoi_adapt.paths.cache_dir`).
        strict: raise on malformed annotations; False records them in ``self.problems`` and skips or
            invalidates the affected samples (used by ``data_prep/check_dataset.py``).
        validate: check every sample with :func:`hoi_adapt.data.schema.validate_sample`.
    """

    name: ClassVar[str] = ""
    SPLITS: ClassVar[dict[str, str]] = {}
    """Accepted split names -> canonical split name."""
    INDEX_VERSION: ClassVar[int] = 1
    DEFAULT_CROP_SCALE: ClassVar[float] = 1.5
    DEFAULT_FLIP_LEFT: ClassVar[bool] = True
    root_is_palm: bool = False
    """True when joint 0 of the returned samples is the palm centre, not the wrist (STB option)."""

    def __init__(self, root: str | Path, split: str, *, out_size: int = 128, crop_scale: float | None = None,
                 crop_min_frac: float = 0.08, crop_source: str = "auto", flip_left: bool | None = None,
                 transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None, use_cache: bool = True,
                 cache_dir: str | Path | None = None, strict: bool = True, validate: bool = True) -> None:
        super().__init__()
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DataFileError(self.root, f"{self.name} root folder not found",
                                "pass the folder that holds the dataset (see data_prep/README.md)")
        self.root = self.root.resolve()
        self.split = self._canonical_split(split)
        if int(out_size) < 8:
            raise ConfigError(f"out_size must be >= 8, got {out_size}")
        if crop_source not in ("auto", "keypoints", "mask", "full"):
            raise ConfigError(f"crop_source must be auto|keypoints|mask|full, got {crop_source!r}")
        self.out_size = int(out_size)
        self.crop_scale = float(self.DEFAULT_CROP_SCALE if crop_scale is None else crop_scale)
        self.crop_min_frac = float(crop_min_frac)
        if not self.crop_scale > 0 or not 0 <= self.crop_min_frac <= 4:
            raise ConfigError(f"crop_scale must be > 0 and crop_min_frac in [0, 4], got {crop_scale}, {crop_min_frac}")
        self.crop_source = crop_source
        self.flip_left = self.DEFAULT_FLIP_LEFT if flip_left is None else bool(flip_left)
        self.transform = transform
        self.use_cache = bool(use_cache)
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else None
        self.strict = bool(strict)
        self.validate = bool(validate)
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self._index: dict[str, np.ndarray] = {}
        self._len = 0

    # ------------------------------------------------------------------ subclass hooks
    def _watched_paths(self) -> list[Path]:
        """Annotation files (and image folders) whose change must invalidate the index cache."""
        raise NotImplementedError

    def _index_options(self) -> dict[str, Any]:
        """Options that change the index content (part of the cache key)."""
        return {}

    def _build_index(self) -> dict[str, np.ndarray]:
        """Scan/parse the dataset into equally long numpy columns."""
        raise NotImplementedError

    def _record(self, i: int) -> RawRecord:
        raise NotImplementedError

    def _masks(self, rec: RawRecord, height: int, width: int) -> dict[str, np.ndarray]:
        """Full-resolution boolean masks (subset of ``MASK_NAMES``) for ``rec``; default none.

        May also set ``rec.occlusion`` when the masks allow computing it.
        """
        return {}

    def adjust_joints3d(self, joints3d: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Hook after conversion (metres, OpenCV, OpenPose), before projection; default identity."""
        return joints3d, valid

    @classmethod
    def evaluation_setup(cls, root: Path, split: str, split_given: bool, protocol: str, hand_model: Any | None,
                         options: dict[str, Any]) -> EvaluationSetup:
        """Split and loader options for scoring under ``protocol``; datasets with quirks override this.

        ``split_given`` is False when ``split`` is the registry's default (a loader may then fall back to
        another split it can score); ``hand_model`` is a real MANO model or None.
        """
        return EvaluationSetup(split, dict(options))

    def evaluation_settings(self) -> dict[str, Any]:
        """Loader settings recorded beside an evaluation's scores, beyond the crop settings every loader has."""
        return {}

    @classmethod
    def expected_layout(cls, split: str | None = None) -> list[LayoutEntry]:
        """The expected tree below the root (for the check script); ``split=None``: all splits."""
        return []

    def size_checks(self) -> list[tuple[str, int, int]]:
        """``(what, found, published)`` counts for the check script (empty when nothing is published)."""
        return []

    def record_files(self, i: int) -> list[Path]:
        """Every data file sample ``i`` reads (for the check script)."""
        rec = self._record(i)
        files = [rec.image] + ([rec.image_hand_only] if rec.image_hand_only is not None else [])
        return files + [Path(p) for p in rec.extra.get("files", [])]

    # ------------------------------------------------------------------ setup helpers
    @classmethod
    def _canonical_split(cls, split: str) -> str:
        key = str(split).lower()
        if key not in cls.SPLITS:
            raise ConfigError(f"unknown split {split!r} for dataset {cls.name!r}; known: {', '.join(sorted(cls.SPLITS))}")
        return cls.SPLITS[key]

    def _problem(self, path: Path | str, problem: str, hint: str | None = None) -> None:
        """Raise (strict) or record a data problem."""
        if self.strict:
            raise DataFileError(path, problem, hint)
        self.problems.append(f"{path}: {problem}")

    def _warn(self, message: str) -> None:
        """A suspicious but usable condition (e.g. image/annotation count mismatch)."""
        self.warnings.append(message)
        warnings.warn(f"{self.name}: {message}", stacklevel=3)

    def _cache_path(self) -> Path:
        base = self.cache_dir if self.cache_dir is not None else cache_dir()
        key = json.dumps({"root": str(self.root), "version": self.INDEX_VERSION, "split": self.split,
                          "options": self._index_options()}, sort_keys=True, default=str)
        digest = hashlib.sha1(key.encode()).hexdigest()[:16]
        return base / "index" / f"{self.name}_{self.split}_{digest}.npz"

    def _init_index(self) -> None:
        """Load the index from the cache or build (and cache) it. Subclasses call this at the end of ``__init__``."""
        watched = self._watched_paths()
        signature = file_signature(self.root, watched) + f":v{self.INDEX_VERSION}"
        cols = None
        path = self._cache_path() if self.use_cache else None
        if path is not None:
            cols = load_index_cache(path, signature)
        if cols is None:
            cols = self._build_index()
            if not cols or self._index_length(cols) == 0:
                raise DataFileError(self.root, f"no {self.name} samples found for split {self.split!r}",
                                    "check the folder layout against data_prep/README.md")
            if path is not None and not self.problems:
                try:
                    save_index_cache(path, cols, signature)
                except OSError as exc:
                    warnings.warn(f"could not write the {self.name} index cache {path}: {exc}", stacklevel=2)
        self._index = cols
        self._len = self._index_length(cols)

    def _index_length(self, cols: dict[str, np.ndarray]) -> int:
        """Number of samples described by the index columns (default: their common length)."""
        lengths = {len(v) for v in cols.values()}
        if len(lengths) > 1:  # pragma: no cover - loader bug, not a data problem
            raise RuntimeError(f"{self.name}: index columns of different lengths {lengths}")
        return lengths.pop() if lengths else 0

    # ------------------------------------------------------------------ Dataset API
    def __len__(self) -> int:
        return self._len

    def record(self, i: int) -> RawRecord:
        """The raw record of sample ``i`` (negative indices allowed)."""
        return self._record(self._check_index(i))

    def _check_index(self, i: int) -> int:
        i = int(i)
        if i < 0:
            i += self._len
        if not 0 <= i < self._len:
            raise IndexError(f"{self.name}: index {i} out of range for {self._len} samples")
        return i

    def __getitem__(self, i: int) -> dict[str, Any]:
        i = self._check_index(i)
        sample = self.make_sample(self._record(i), index=i)
        if self.validate:
            validate_sample(sample)
        if self.transform is not None:
            sample = self.transform(sample)
        return sample

    # ------------------------------------------------------------------ record -> sample
    def convert_joints3d(self, rec: RawRecord) -> tuple[np.ndarray, np.ndarray]:
        """(21,3) metres / OpenCV / OpenPose joints (NaN where invalid) and their validity."""
        if rec.joints3d is None:
            return np.full((NUM_JOINTS, 3), np.nan), np.zeros(NUM_JOINTS, dtype=bool)
        j = np.asarray(rec.joints3d, dtype=np.float64) * float(rec.unit_scale)
        if rec.to_camera is not None:
            T = np.asarray(rec.to_camera, dtype=np.float64)
            j = j @ T[:, :3].T + T[:, 3]
        j = to_openpose(j, rec.order)
        valid = np.isfinite(j).all(axis=1)
        j[~valid] = np.nan
        return j, valid

    def convert_joints2d(self, rec: RawRecord, joints3d: np.ndarray, valid3d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(21,2) full-image pixel joints: the dataset's own, else projections of the valid 3D joints."""
        if rec.joints2d is not None:
            uv = to_openpose(np.asarray(rec.joints2d, dtype=np.float64), rec.order)
        else:
            uv = np.full((NUM_JOINTS, 2), np.nan)
            ok = valid3d & (np.nan_to_num(joints3d[:, 2]) > 1e-9)
            if ok.any():
                uv[ok] = project(joints3d[ok], rec.K)
        valid = np.isfinite(uv).all(axis=1)
        uv[~valid] = np.nan
        return uv, valid

    def _crop_box(self, rec_bbox: np.ndarray | None, uv: np.ndarray, valid2d: np.ndarray,
                  masks: dict[str, np.ndarray], height: int, width: int) -> np.ndarray:
        min_size = self.crop_min_frac * max(height, width)
        src = self.crop_source
        if src == "auto" and rec_bbox is not None and np.isfinite(rec_bbox).all():
            return C.crop_box_from_xyxy(rec_bbox, self.crop_scale, min_size)
        if src in ("auto", "keypoints") and valid2d.any():
            return C.crop_box_from_points(uv, valid2d, self.crop_scale, min_size)
        if src in ("auto", "mask") and "hand_mask" in masks and masks["hand_mask"].any():
            return C.crop_box_from_mask(masks["hand_mask"], self.crop_scale, min_size)
        return C.full_image_box(height, width)

    def make_sample(self, rec: RawRecord, index: int = 0) -> dict[str, Any]:
        """Turn one raw record into a schema sample (everything but ``transform``)."""
        image = read_image(rec.image)
        h, w = image.shape[:2]
        j3d, v3d = self.convert_joints3d(rec)
        j3d, v3d = self.adjust_joints3d(j3d, v3d)
        j3d = np.where(v3d[:, None], j3d, np.nan)
        uv, v2d = self.convert_joints2d(rec, j3d, v3d)

        masks: dict[str, np.ndarray] = {}
        for key, m in self._masks(rec, h, w).items():
            if key not in MASK_NAMES:  # pragma: no cover - loader bug
                raise RuntimeError(f"unknown mask {key!r}")
            masks[key] = C.resize_nearest(np.asarray(m).astype(bool), h, w)
        hand_only = None
        if rec.image_hand_only is not None:
            hand_only = read_image(rec.image_hand_only)
            if hand_only.shape != image.shape:
                raise DataFileError(rec.image_hand_only, f"size {hand_only.shape[1]}x{hand_only.shape[0]} differs "
                                    f"from its image {rec.image} ({w}x{h})")

        K = np.asarray(rec.K, dtype=np.float64)
        if K.shape != (3, 3) or not np.isfinite(K).all():
            raise DataFileError(rec.image, f"the intrinsics of this image are not a finite 3x3 matrix: {K.tolist()}")
        mano = None
        if rec.mano_pose is not None and rec.mano_betas is not None and rec.mano_transl is not None:
            mano = (np.asarray(rec.mano_pose, np.float64).reshape(48), np.asarray(rec.mano_betas, np.float64).reshape(10),
                    np.asarray(rec.mano_transl, np.float64).reshape(3))
            if not all(np.isfinite(m).all() for m in mano):
                mano = None
        bbox = None if rec.bbox is None else np.asarray(rec.bbox, dtype=np.float64).reshape(4)

        flipped = bool(rec.is_left and self.flip_left)
        if flipped:
            f = C.flip_horizontal(w, image=image, image_hand_only=hand_only, uv=uv, K=K, xyz=j3d, xyxy=bbox,
                                  **{name: m for name, m in masks.items()})
            image, hand_only, uv, K, j3d, bbox = f["image"], f["image_hand_only"], f["uv"], f["K"], f["xyz"], f["xyxy"]
            masks = {name: f[name] for name in masks}
            if mano is not None:
                mano = (C.flip_mano_pose(mano[0]), mano[1], C.flip_mano_transl(mano[2]))

        box = self._crop_box(bbox, uv, v2d, masks, h, w)
        crop, A = C.crop_and_resize(image, box, self.out_size)
        uv_c = C.transform_points(A, uv)
        K_c = C.crop_intrinsics(K, A)

        s = empty_sample(self.out_size, self.out_size)
        s["image"] = _image_tensor(crop)
        if hand_only is not None:
            s["image_hand_only"] = _image_tensor(C.warp_image(hand_only, A, self.out_size))
            s["has_pair"] = torch.tensor(1.0)
        s["K"] = torch.as_tensor(K_c, dtype=torch.float32)
        s["joints3d"] = torch.as_tensor(np.where(v3d[:, None], j3d, 0.0), dtype=torch.float32)
        s["joints3d_valid"] = torch.as_tensor(v3d, dtype=torch.float32)
        s["joints2d"] = torch.as_tensor(np.where(v2d[:, None], uv_c, 0.0), dtype=torch.float32)
        s["joints2d_valid"] = torch.as_tensor(v2d, dtype=torch.float32)
        s["has_3d"] = torch.tensor(float(v3d.any()))
        s["has_2d"] = torch.tensor(float(v2d.any()))
        for name, m in masks.items():
            s[name] = torch.as_tensor(C.warp_mask(m, A, self.out_size), dtype=torch.float32)
            s[_MASK_FLAGS[name]] = torch.tensor(1.0)
        if mano is not None:
            s["mano_pose"] = torch.as_tensor(mano[0], dtype=torch.float32)
            s["mano_betas"] = torch.as_tensor(mano[1], dtype=torch.float32)
            s["mano_transl"] = torch.as_tensor(mano[2], dtype=torch.float32)
            s["has_mano"] = torch.tensor(1.0)
        s["is_hand_object"] = torch.tensor(float(rec.is_hand_object))
        s["occlusion"] = torch.tensor(float(rec.occlusion))
        s["was_flipped"] = torch.tensor(float(flipped))
        s["dataset"] = self.name
        s["sequence"] = str(rec.sequence)
        s["frame"] = int(rec.frame)
        s["index"] = int(index)
        return s


def _image_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).to(torch.float32).div_(255.0)
