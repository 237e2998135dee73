"""Atomic writes: a crash never leaves a half-written file under its final name."""
from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from hoi_adapt.utils.errors import DataFileError


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(path: str | Path, obj: Any, indent: int | None = 1) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=indent, sort_keys=False))


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in blocks (checkpoints and datasets can be large)."""
    import hashlib

    digest = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def npz_bytes(arrays: Any, compress: bool = False) -> bytes:
    """An ``.npz`` archive whose bytes depend only on the arrays (fixed timestamps and member order).

    ``np.savez`` stamps the current time into the zip entries; reproducible files (generated models,
    resumable exports) need identical bytes for identical data. Object arrays are refused (no pickle).
    """
    import io
    import zipfile

    import numpy as np

    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        for name, value in arrays.items():
            arr = np.asarray(value)
            if arr.dtype == object:
                raise TypeError(f"array {name!r} has dtype object; store str/number arrays only")
            member = io.BytesIO()
            arr = np.ascontiguousarray(arr) if arr.ndim else arr  # ascontiguousarray would make 0-d arrays 1-d
            np.lib.format.write_array(member, arr, allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = method
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue())
    return buf.getvalue()


def jsonable(x: Any) -> Any:
    """Plain Python for strictly valid JSON: numpy values and arrays unwrapped, non-finite floats as null,
    paths and other objects as their string."""
    if isinstance(x, Mapping):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        f = float(x)
        return f if math.isfinite(f) else None
    if x is None or isinstance(x, str):
        return x
    return str(x)


def read_json(path: str | Path, what: str) -> Any:
    """A user's JSON file, or one ``DataFileError`` naming it and saying what is wrong (``what``: its role)."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(path, f"{what} file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataFileError(path, f"not a valid JSON {what} file ({exc})") from None
