"""Restricted unpickling for untrusted annotation and model files.

Pickles can execute arbitrary code on load. Every pickle hoi_adapt reads (MANO models, RHD / HO-3D / ObMan
annotations) goes through :class:`RestrictedUnpickler`, which resolves only plain containers, numpy arrays
and scalars. Classes from scipy.sparse and chumpy are never imported: they become inert stubs that keep
their pickled state, and :func:`resolve` turns them into numpy / scipy values by hand. So neither chumpy
nor a particular SciPy module layout is needed, and a malicious file cannot run code.
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from hoi_adapt.utils.errors import DataFileError

# Plain builtins a data pickle may legitimately reference.
_BUILTINS = {
    "dict", "list", "tuple", "set", "frozenset", "str", "bytes", "bytearray",
    "int", "float", "complex", "bool", "slice", "range", "object",
}


class PickledStub:
    """Inert stand-in for a class we refuse to import; it only records its pickled state."""

    module: str = ""
    name: str = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    @classmethod
    def qualname(cls) -> str:
        return f"{cls.module}.{cls.name}"


class ChumpyStub(PickledStub):
    """A chumpy object (``Ch``, ``Select``, ...)."""


class SparseStub(PickledStub):
    """A scipy.sparse matrix (any module path, old or new SciPy)."""


def _make_stub(base: type[PickledStub], module: str, name: str) -> type[PickledStub]:
    return type(name, (base,), {"module": module, "name": name})


def _numpy_multiarray():
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray
    return multiarray


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that admits numpy arrays, builtins containers, and stubs for chumpy / scipy.sparse."""

    def find_class(self, module: str, name: str) -> Any:  # noqa: D401 - pickle API
        if module in ("builtins", "__builtin__") and name in _BUILTINS:
            import builtins

            return getattr(builtins, name)
        if module in ("copy_reg", "copyreg") and name == "_reconstructor":
            import copyreg

            return copyreg._reconstructor  # only ever instantiates classes this method admitted
        if module == "collections" and name == "OrderedDict":
            from collections import OrderedDict

            return OrderedDict
        if module == "_codecs" and name == "encode":
            import _codecs

            return _codecs.encode  # protocol-2 pickles store bytes as encode(str, 'latin1')
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name in ("_reconstruct", "scalar"):
            return getattr(_numpy_multiarray(), name)
        if module in ("numpy.core.numeric", "numpy._core.numeric") and name == "_frombuffer":
            try:
                from numpy._core import numeric
            except ImportError:  # pragma: no cover - numpy 1.x
                from numpy.core import numeric
            return numeric._frombuffer  # protocol-5 numpy arrays
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        if module == "numpy.dtypes" and name.endswith("DType"):
            import numpy.dtypes as npd

            if hasattr(npd, name):
                return getattr(npd, name)
        if module.startswith("scipy.sparse"):
            return _make_stub(SparseStub, module, name)
        if module == "chumpy" or module.startswith("chumpy."):
            return _make_stub(ChumpyStub, module, name)
        raise pickle.UnpicklingError(
            f"refusing to load pickled object {module}.{name}: only numpy arrays, scipy.sparse matrices, "
            "chumpy arrays and plain Python containers are allowed"
        )


def loads(data: bytes, encoding: str = "latin1") -> Any:
    """Unpickle bytes through :class:`RestrictedUnpickler`; raises ``pickle.UnpicklingError`` on refusal."""
    return RestrictedUnpickler(io.BytesIO(data), encoding=encoding).load()


def load_pickle(path: str | Path, encoding: str = "latin1", resolve_stubs: bool = True) -> Any:
    """Safely load a pickle file; errors name the file and the problem.

    ``encoding='latin1'`` reads the Python-2 pickles of MANO, RHD and HO-3D (numpy byte buffers survive it).
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(path, "file not found")
    try:
        obj = loads(path.read_bytes(), encoding=encoding)
    except pickle.UnpicklingError as exc:
        raise DataFileError(path, f"unsafe or malformed pickle: {exc}") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, ImportError, MemoryError,
            OverflowError, RecursionError, UnicodeDecodeError) as exc:
        raise DataFileError(path, f"not a readable pickle ({type(exc).__name__}: {exc})") from None
    if resolve_stubs:
        try:
            obj = resolve(obj)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise DataFileError(path, f"cannot evaluate a stored chumpy/sparse object: {exc}") from None
    return obj


def _state_dict(stub: PickledStub) -> dict:
    state = stub.state
    if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
        state = {**(state[0] or {}), **state[1]}  # (dict, slots) form
    if not isinstance(state, dict):
        raise ValueError(f"{stub.qualname()} has no dict state")
    return state


def evaluate_chumpy(stub: ChumpyStub) -> np.ndarray:
    """Evaluate the chumpy objects found in MANO files without chumpy.

    ``Ch`` holds its value in ``x``; ``Select`` picks ``idxs`` from the flattened value of ``a`` and reshapes
    to ``preferred_shape``. Any other chumpy op is refused rather than guessed.
    """
    state = _state_dict(stub)
    if stub.name == "Ch" or ("x" in state and "a" not in state):
        return np.asarray(resolve(state["x"]))
    if stub.name == "Select":
        src = np.asarray(resolve(state["a"]))
        idxs = np.asarray(resolve(state["idxs"]), dtype=np.int64).ravel()
        out = src.ravel()[idxs]
        shape = state.get("preferred_shape")
        return out.reshape(tuple(shape)) if shape is not None else out
    raise ValueError(f"unsupported chumpy object {stub.qualname()} (only Ch and Select are understood)")


def evaluate_sparse(stub: SparseStub):
    """Rebuild a CSC/CSR/COO matrix from its pickled state, whatever SciPy version wrote it."""
    import scipy.sparse as sp

    state = _state_dict(stub)
    shape = tuple(state.get("_shape") or state.get("shape"))
    fmt = state.get("format") or stub.name[:3]
    if fmt in ("csc", "csr"):
        cls = sp.csc_matrix if fmt == "csc" else sp.csr_matrix
        return cls((np.asarray(state["data"]), np.asarray(state["indices"]), np.asarray(state["indptr"])), shape=shape)
    if fmt == "coo":
        return sp.coo_matrix((np.asarray(state["data"]), (np.asarray(state["row"]), np.asarray(state["col"]))), shape=shape)
    raise ValueError(f"unsupported sparse format {fmt!r} in {stub.qualname()}")


def resolve(obj: Any) -> Any:
    """Recursively replace stubs by numpy / scipy values."""
    if isinstance(obj, ChumpyStub):
        return evaluate_chumpy(obj)
    if isinstance(obj, SparseStub):
        return evaluate_sparse(obj)
    if isinstance(obj, dict):
        return type(obj)((k, resolve(v)) for k, v in obj.items())
    if isinstance(obj, list):
        return [resolve(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(resolve(v) for v in obj)
    return obj
