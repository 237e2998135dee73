"""Inputs of ``hoi-adapt predict``: image files and folders, cameras (K) and hand boxes, checked with clear errors."""
from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hoi_adapt.data.image_io import IMAGE_EXTENSIONS, read_image
from hoi_adapt.prediction.index import FolderIndex
from hoi_adapt.prediction.schema import INDEX_FILE
from hoi_adapt.utils.errors import ConfigError, DataFileError
from hoi_adapt.utils.io import file_digest, read_json

DEFAULT_FOCAL_FACTOR = 1.2  # COLMAP ImageReaderOptions.default_focal_length_factor


class PredictWarning(UserWarning):
    """Something the user should know about a prediction (assumed camera, unused box entries, a skipped file ...)."""


class PredictNote(PredictWarning):
    """Information, not a problem (e.g. how many images an earlier run already finished)."""


def _warn(message: str, category: type[PredictWarning] = PredictWarning) -> None:
    warnings.warn(message, category, stacklevel=3)


# ================================================================================== camera and boxes
def default_intrinsics(height: int, width: int) -> np.ndarray:
    """K for an unknown camera: ``fx = fy = 1.2 * max(H, W)`` (COLMAP's default), centred principal point."""
    f = DEFAULT_FOCAL_FACTOR * float(max(height, width))
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def _numbers(text: str, count: int, what: str) -> np.ndarray:
    parts = [p for p in str(text).replace(";", ",").split(",") if p.strip()]
    try:
        values = np.array([float(p) for p in parts], dtype=np.float64)
    except ValueError:
        raise ConfigError(f"{what} {text!r}: expected {count} comma-separated numbers") from None
    if values.size != count:
        raise ConfigError(f"{what} {text!r}: expected {count} comma-separated numbers, got {values.size}")
    if not np.isfinite(values).all():
        raise ConfigError(f"{what} {text!r}: values must be finite")
    return values


def parse_K(text: str) -> np.ndarray:
    """``"fx,fy,cx,cy"`` -> 3x3 intrinsics (pixels)."""
    fx, fy, cx, cy = _numbers(text, 4, "--K")
    return _check_K(np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]]), f"--K {text!r}")


def parse_box(text: str) -> np.ndarray:
    """``"x0,y0,x1,y1"`` -> box array (pixels, pixel-centre convention)."""
    return _check_box_shape(_numbers(text, 4, "--box"), f"--box {text!r}")


def _check_K(K: np.ndarray, where: str) -> np.ndarray:
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3) or not np.isfinite(K).all():
        raise ConfigError(f"{where}: intrinsics must be a finite 3x3 matrix, got shape {K.shape}")
    if not (K[0, 0] > 0 and K[1, 1] > 0):
        raise ConfigError(f"{where}: focal lengths must be positive, got fx={K[0, 0]}, fy={K[1, 1]}")
    if not np.allclose(K[2], [0.0, 0.0, 1.0]) or K[1, 0] != 0.0:
        raise ConfigError(f"{where}: not an intrinsic matrix (last row must be [0, 0, 1], K[1][0] = 0)")
    if abs(K[0, 1]) > 1e-9:
        raise ConfigError(f"{where}: non-zero skew K[0][1] = {K[0, 1]} is not supported")
    return K


def _K_from_value(value: Any, where: str) -> np.ndarray:
    """A K given as a 3x3 nested list, ``[fx, fy, cx, cy]``, ``"fx,fy,cx,cy"`` or ``{fx, fy, cx, cy}``."""
    if isinstance(value, str):
        fx, fy, cx, cy = _numbers(value, 4, where)
    elif isinstance(value, Mapping):
        try:
            fx, fy, cx, cy = (float(value[k]) for k in ("fx", "fy", "cx", "cy"))
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"{where}: a K object needs numbers fx, fy, cx, cy, got keys {sorted(value)}") from None
    else:
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: not a 3x3 matrix or [fx, fy, cx, cy]: {value!r}") from None
        if arr.shape == (3, 3):
            return _check_K(arr, where)
        if arr.shape != (4,):
            raise ConfigError(f"{where}: expected a 3x3 matrix or [fx, fy, cx, cy], got shape {arr.shape}")
        fx, fy, cx, cy = arr
    return _check_K(np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]]), where)


def _check_box_shape(box: Any, where: str) -> np.ndarray:
    try:
        arr = np.asarray(box, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: a box must be 4 numbers [x0, y0, x1, y1], got {box!r}") from None
    if arr.size != 4 or not np.isfinite(arr).all():
        raise ConfigError(f"{where}: a box must be 4 finite numbers [x0, y0, x1, y1], got {box!r}")
    if not (arr[2] > arr[0] and arr[3] > arr[1]):
        raise ConfigError(f"{where}: box {arr.tolist()} needs x1 > x0 and y1 > y0 (format [x0, y0, x1, y1], not x, y, w, h?)")
    return arr


def _check_box_in_image(box: np.ndarray, height: int, width: int, where: str) -> None:
    """A box must overlap the image (pixel-centre extents ``[-0.5, W-0.5] x [-0.5, H-0.5]``)."""
    x0, y0, x1, y1 = box
    if x1 <= -0.5 or y1 <= -0.5 or x0 >= width - 0.5 or y0 >= height - 0.5:
        raise ConfigError(f"{where}: box {box.tolist()} lies outside the {width}x{height} image")


class _PerImage:
    """A value for all images, or per-image entries keyed by file name / path / stem (``"*"``: the rest)."""

    def __init__(self, single: Any = None, mapping: Mapping[str, Any] | None = None, source: str = "") -> None:
        self.single = single
        self.mapping = dict(mapping or {})
        self.source = source
        self.used: set[str] = set()

    def get(self, item: InputImage) -> tuple[Any, str | None]:
        if self.single is not None:
            return self.single, self.source
        for key in item.keys():
            if key in self.mapping:
                self.used.add(key)
                return self.mapping[key], f"{self.source}[{key!r}]"
        if "*" in self.mapping:
            self.used.add("*")
            return self.mapping["*"], f"{self.source}['*']"
        return None, None

    def unused(self) -> list[str]:
        return sorted(set(self.mapping) - self.used - {"*"})


def _K_spec(K: Any) -> _PerImage:
    """Normalise the ``K`` argument: None, a K value, a JSON file path, or a mapping name -> K value."""
    if K is None:
        return _PerImage()
    if isinstance(K, Path) or (isinstance(K, str) and K.lower().endswith(".json")):
        data = read_json(K, "intrinsics")
        where = str(K)
        if isinstance(data, Mapping) and not {"fx", "fy", "cx", "cy"} <= set(data):
            mapping = {str(k): _K_from_value(v, f"{where}: entry {k!r}") for k, v in data.items()}
            return _PerImage(mapping=mapping, source=where)
        return _PerImage(single=_K_from_value(data, where), source=where)
    if isinstance(K, Mapping) and not {"fx", "fy", "cx", "cy"} <= set(K):
        return _PerImage(mapping={str(k): _K_from_value(v, f"K[{k!r}]") for k, v in K.items()}, source="K")
    return _PerImage(single=_K_from_value(K, "K"), source="K")


@dataclass(frozen=True)
class UserBox:
    """A hand box the user gave, with the hand's side when the boxes file names it."""

    xyxy: np.ndarray
    side: str | None = None


def _one_box(value: Any, where: str) -> UserBox:
    if not isinstance(value, Mapping):
        return UserBox(_check_box_shape(value, where))
    if "box" not in value or set(value) - {"box", "side"}:
        raise ConfigError(f'{where}: a box object is {{"box": [x0, y0, x1, y1], "side": "left" | "right"}}, '
                          f"got keys {sorted(value)}")
    side = value.get("side")
    if side not in (None, "left", "right"):
        raise ConfigError(f"{where}: side must be 'left' or 'right', got {side!r}")
    return UserBox(_check_box_shape(value["box"], where), side)


def _user_boxes(value: Any, where: str) -> list[UserBox] | None:
    """One image's boxes: null (automatic), one box (``[x0, y0, x1, y1]`` or ``{"box":, "side":}``) or a list."""
    if value is None:
        return None
    if isinstance(value, str):
        return [UserBox(parse_box(value))]
    if (isinstance(value, (list, tuple, np.ndarray)) and len(value) > 0
            and all(isinstance(v, (Mapping, list, tuple, np.ndarray)) for v in value)):
        return [_one_box(v, f"{where} box {i}") for i, v in enumerate(value)]
    return [_one_box(value, where)]


def _box_spec(boxes: Any) -> _PerImage:
    """Normalise ``boxes``: None, one image's boxes, a JSON file path, or a mapping name -> boxes (null: automatic)."""
    if boxes is None:
        return _PerImage()
    if isinstance(boxes, Path) or (isinstance(boxes, str) and boxes.lower().endswith(".json")):
        data = read_json(boxes, "boxes")
        if not isinstance(data, Mapping):
            raise DataFileError(boxes, "a boxes file maps image file names to [x0, y0, x1, y1] (or lists of boxes)")
        return _PerImage(mapping={str(k): _user_boxes(v, f"{boxes}: entry {k!r}") for k, v in data.items()},
                         source=str(boxes))
    if isinstance(boxes, Mapping) and "box" not in boxes:
        return _PerImage(mapping={str(k): _user_boxes(v, f"boxes[{k!r}]") for k, v in boxes.items()}, source="boxes")
    return _PerImage(single=_user_boxes(boxes, "box"), source="box")


# ========================================================================================== inputs
@dataclass
class InputImage:
    """One input: a file or an in-memory array; ``name`` is the stem of its output files."""

    name: str
    path: Path | None = None
    array: np.ndarray | None = None
    given: str | None = None  # the path as the user wrote it

    def keys(self) -> list[str]:
        """Names a K / box mapping may use for this image (most specific first)."""
        if self.path is None:
            return [self.name]
        keys = [self.given] if self.given else []
        return keys + [str(self.path), self.path.name, self.path.stem]

    def load(self) -> np.ndarray:
        if self.array is not None:
            return self.array

        assert self.path is not None
        return read_image(self.path)

    def fingerprint(self) -> dict[str, Any]:
        """What identifies the content: a file's size, mtime and sha256; an array's shape and sha256."""
        if self.path is None:
            assert self.array is not None
            return {"shape": list(self.array.shape), "sha256": hashlib.sha256(self.array.tobytes()).hexdigest()}
        st = self.path.stat()
        return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": file_digest(self.path)}

    def unchanged(self, recorded: Mapping[str, Any] | None) -> bool:
        """True if the content is the one ``recorded`` by :meth:`fingerprint` (a file's sha256 is only
        computed when its size matches but its mtime does not: a touched or copied file is still the same)."""
        if not isinstance(recorded, Mapping):
            return False
        if self.path is None:
            return self.fingerprint() == dict(recorded)
        try:
            st = self.path.stat()
        except OSError:
            return False
        if st.st_size != recorded.get("size"):
            return False
        return st.st_mtime_ns == recorded.get("mtime_ns") or file_digest(self.path) == recorded.get("sha256")


def _image_files(folder: Path) -> list[Path]:
    ours = set(FolderIndex.read(folder).outputs()) if (folder / INDEX_FILE).is_file() else set()
    files = [p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and p.name not in ours]
    if not files:
        raise DataFileError(folder, f"no images ({', '.join(IMAGE_EXTENSIONS)}) in this folder")
    return files


def _check_array(arr: Any, i: int) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3 or min(arr.shape[:2]) < 1:
        raise ConfigError(f"input array {i}: expected an (H, W, 3) uint8 RGB image, got {arr.dtype} {arr.shape}")
    return np.ascontiguousarray(arr)


def collect_inputs(inputs: Any) -> list[InputImage]:
    """Image files / arrays from a path, a folder, an array or a list of these; unique output stems."""
    if isinstance(inputs, (str, Path, np.ndarray)):
        inputs = [inputs]
    items: list[InputImage] = []
    for i, entry in enumerate(inputs):
        if isinstance(entry, np.ndarray):
            items.append(InputImage(name=f"image_{i:04d}", array=_check_array(entry, i)))
            continue
        path = Path(entry).expanduser()
        if path.is_dir():
            items += [InputImage(name=p.stem, path=p, given=str(p)) for p in _image_files(path)]
        elif path.is_file():
            items.append(InputImage(name=path.stem, path=path, given=str(entry)))
        else:
            raise DataFileError(path, "input image or folder not found")
    if not items:
        raise ConfigError("no input images given")
    seen: dict[str, int] = {}
    for item in items:  # a.jpg and a.png (or same names in two folders) must not share output files
        base = item.name
        if base in seen and item.path is not None:
            base = f"{item.path.stem}_{item.path.suffix.lstrip('.').lower()}"
        name, k = base, 1
        while name in seen:
            name, k = f"{base}_{k}", k + 1
        seen[name] = 1
        item.name = name
    return items
