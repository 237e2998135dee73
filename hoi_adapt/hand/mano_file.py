"""Read and write MANO model files without chumpy.

The official ``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl`` are Python-2 pickles holding chumpy objects and a
``scipy.sparse`` joint regressor. They are read through :func:`hoi_adapt.utils.safe_pickle.load_pickle`
(restricted unpickler; chumpy ``Ch``/``Select`` and sparse matrices become stubs that are evaluated with
numpy), so neither chumpy nor an old numpy is needed. A clean ``.npz`` (written by :func:`write_mano_npz`
or ``data_prep/convert_mano.py``) is read with ``allow_pickle=False``. Either way the result is a dict of
plain float64 / int64 arrays with validated shapes.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from hoi_adapt.hand.joint_maps import MANO_PARENTS
from hoi_adapt.utils.errors import DataFileError, ModelFileError
from hoi_adapt.utils.io import file_digest, npz_bytes, write_bytes_atomic
from hoi_adapt.utils.safe_pickle import load_pickle

MANO_HINT = (
    "MANO is obtained from https://mano.is.tue.mpg.de (registration required); "
    "data_prep/convert_mano.py writes a clean .npz from the official .pkl"
)
OFFICIAL_MD5: dict[str, str] = {
    "right": "fd5a9d35f914987cf1cc04ffe338caa1",  # MANO_RIGHT.pkl v1.2 (datasets.md §1)
    "left": "11aeaca8631aa20db964d4eba491e885",   # MANO_LEFT.pkl v1.2
}
REQUIRED_SHAPES: dict[str, tuple[int, ...]] = {
    "v_template": (778, 3),
    "f": (1538, 3),
    "J_regressor": (16, 778),
    "weights": (778, 16),
    "kintree_table": (2, 16),
    "shapedirs": (778, 3, 10),
    "posedirs": (778, 3, 135),
    "hands_components": (45, 45),
    "hands_mean": (45,),
}
OPTIONAL_SHAPES: dict[str, tuple[int | None, ...]] = {"hands_coeffs": (None, 45), "J": (16, 3)}
STRING_KEYS: tuple[str, ...] = ("bs_style", "bs_type", "standin_notice")
INT_KEYS: tuple[str, ...] = ("f", "kintree_table")
ROOT_PARENT = 4294967295


def side_from_name(path: str | Path) -> str | None:
    """'right' / 'left' when the file name says so (``MANO_RIGHT.pkl``, ``standin_mano_left.npz``)."""
    name = Path(path).name.upper()
    has_r, has_l = "RIGHT" in name, "LEFT" in name
    if has_r == has_l:
        return None
    return "right" if has_r else "left"


def side_from_geometry(arrays: dict[str, np.ndarray]) -> str:
    """'right' if the regressed wrist lies on +x of the middle MCP (MANO's canonical frame), else 'left'."""
    J = arrays["J_regressor"] @ arrays["v_template"]
    return "right" if J[0, 0] > J[4, 0] else "left"


def file_md5(path: str | Path) -> str:
    return file_digest(path, "md5")


def official_match(path: str | Path) -> str | None:
    """'right' / 'left' if the file's MD5 equals the official MANO v1.2 file's, else None (never raises)."""
    try:
        digest = file_md5(path)
    except OSError:
        return None
    for side, md5 in OFFICIAL_MD5.items():
        if digest == md5:
            return side
    return None


def _error(path: Path, problem: str) -> ModelFileError:
    return ModelFileError(path, problem, MANO_HINT)


def _read_raw(path: Path) -> Any:
    if not path.exists():
        raise _error(path, "file not found")
    if not path.is_file():
        raise _error(path, "not a file")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic == b"PK\x03\x04":  # zip archive = .npz
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except ValueError as exc:
            raise _error(path, f"the .npz holds pickled objects, which are not loaded ({exc})") from None
        except (OSError, zipfile.BadZipFile, EOFError) as exc:
            raise _error(path, f"not a readable .npz ({type(exc).__name__}: {exc})") from None

    try:
        return load_pickle(path)
    except DataFileError as exc:
        raise _error(path, exc.problem) from None


def _as_array(path: Path, key: str, value: Any, dtype: type) -> np.ndarray:
    if hasattr(value, "toarray") and not isinstance(value, np.ndarray):  # scipy.sparse matrix
        value = value.toarray()
    try:
        arr = np.asarray(value)
        if arr.dtype == object:
            raise TypeError("holds Python objects")
        arr = arr.astype(dtype)
    except (TypeError, ValueError, OverflowError) as exc:
        raise _error(path, f"key {key!r} is not a numeric array ({exc})") from None
    return arr


def validate_mano_arrays(raw: Any, path: str | Path = "<arrays>") -> dict[str, Any]:
    """Check keys, shapes, dtypes and finiteness; return plain float64 / int64 arrays (and strings)."""
    path = Path(path)
    if not isinstance(raw, dict):
        raise _error(path, f"expected a dict of MANO arrays, found {type(raw).__name__}")
    missing = [k for k in REQUIRED_SHAPES if k not in raw]
    if missing:
        raise _error(path, f"missing key(s) {', '.join(missing)}; is this a MANO model file?")
    out: dict[str, Any] = {}
    for key, shape in {**REQUIRED_SHAPES, **OPTIONAL_SHAPES}.items():
        if key not in raw:
            continue
        arr = _as_array(path, key, raw[key], np.int64 if key in INT_KEYS else np.float64)
        if arr.ndim != len(shape) or any(s is not None and a != s for a, s in zip(arr.shape, shape, strict=True)):
            want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
            raise _error(path, f"key {key!r} has shape {arr.shape}, expected {want}")
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise _error(path, f"key {key!r} contains non-finite values")
        out[key] = arr
    for key in STRING_KEYS:
        if key in raw:
            value = raw[key]
            if isinstance(value, np.ndarray) and value.shape == ():
                value = value.item()
            if isinstance(value, bytes):
                value = value.decode("latin1")
            if not isinstance(value, str):
                raise _error(path, f"key {key!r} should be a string, found {type(value).__name__}")
            out[key] = value
    f = out["f"]
    if f.min() < 0 or f.max() >= 778:
        raise _error(path, f"face indices must lie in [0, 778), found [{f.min()}, {f.max()}]")
    kin = out["kintree_table"]
    if list(kin[0, 1:]) != list(MANO_PARENTS[1:]) or list(kin[1]) != list(range(16)):
        raise _error(path, f"kintree_table does not describe MANO's 16-joint hand tree: {kin.tolist()}")
    if out.get("bs_style", "lbs") != "lbs":
        raise _error(path, f"bs_style {out['bs_style']!r} is not supported (only 'lbs')")
    return out


def load_mano_arrays(path: str | Path) -> dict[str, Any]:
    """Load an official MANO ``.pkl`` (no chumpy needed) or a clean ``.npz`` into validated numpy arrays.

    Returns float64 arrays ``v_template (778,3)``, ``J_regressor (16,778)`` (dense), ``weights (778,16)``,
    ``shapedirs (778,3,10)``, ``posedirs (778,3,135)``, ``hands_components (45,45)``, ``hands_mean (45,)``,
    int64 ``f (1538,3)`` and ``kintree_table (2,16)``, optional ``hands_coeffs``, ``J``, and the strings
    ``bs_style``, ``bs_type``, ``standin_notice`` when present.

    Raises:
        ModelFileError: missing file, not a pickle / npz, not a dict, a missing key, a wrong shape or
            non-finite values; the message names the file and says where MANO comes from.
    """
    path = Path(path)
    return validate_mano_arrays(_read_raw(path), path)


def write_mano_npz(arrays: dict[str, Any], path: str | Path) -> Path:
    """Atomically write validated MANO arrays as a plain ``.npz`` (no pickled objects, fixed timestamps)."""
    path = Path(path)
    clean = validate_mano_arrays(arrays, path)
    ordered = {k: clean[k] for k in (*REQUIRED_SHAPES, *OPTIONAL_SHAPES, *STRING_KEYS) if k in clean}
    write_bytes_atomic(path, npz_bytes(ordered, compress=True))
    os.chmod(path, 0o644)  # the atomic temporary file was created 0600
    return path


def summarize(arrays: dict[str, Any], path: str | Path | None = None) -> str:
    """Human-readable summary: side, shapes, stand-in or MANO, official MD5 match."""
    lines = []
    if path is not None:
        p = Path(path)
        match = official_match(p)
        lines.append(f"file: {p}")
        lines.append(f"official MANO v1.2 file (MD5): {'yes, ' + match if match else 'no'}")
    lines.append(f"side (geometry): {side_from_geometry(arrays)}")
    if path is not None and side_from_name(path):
        lines.append(f"side (file name): {side_from_name(path)}")
    lines.append("stand-in: " + ("yes - " + arrays["standin_notice"] if "standin_notice" in arrays else "no"))
    for key, value in arrays.items():
        if isinstance(value, np.ndarray):
            lines.append(f"  {key:<17} {str(value.shape):<14} {value.dtype}")
        elif key != "standin_notice":
            lines.append(f"  {key:<17} {value!r}")
    return "\n".join(lines)


__all__ = [
    "MANO_HINT", "OFFICIAL_MD5", "REQUIRED_SHAPES", "load_mano_arrays", "validate_mano_arrays", "write_mano_npz",
    "side_from_name", "side_from_geometry", "official_match", "file_md5", "summarize",
]
