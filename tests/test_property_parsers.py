"""Property tests: the restricted unpickler, joint-order conversions and the HO-3D split / JSON readers.

(The Dexter+Object / EgoDexter line parser has its own property tests in test_datasets_text.py.)
"""
from __future__ import annotations

import json
import pickle
import string
import struct
import tempfile
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hoi_adapt.data.datasets.base import load_json
from hoi_adapt.data.datasets.ho3d import parse_split_file
from hoi_adapt.hand import joint_maps as jm
from hoi_adapt.utils import safe_pickle
from hoi_adapt.utils.errors import DataFileError

# ----------------------------------------------------------------------------- safe pickle: round trips
DTYPES = st.sampled_from([np.float32, np.float64, np.int8, np.int32, np.int64, np.uint8, np.uint16, np.bool_, np.complex64])
arrays = DTYPES.flatmap(lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
                                              elements={"allow_nan": False} if np.dtype(dt).kind in "fc" else None))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False), st.text(max_size=8),
                    st.binary(max_size=8), arrays.map(lambda a: a.reshape(-1)[0] if a.size else np.float64(1.5)))
leaves = st.one_of(scalars, arrays)
nested = st.recursive(leaves, lambda kids: st.one_of(
    st.lists(kids, max_size=4), st.lists(kids, max_size=3).map(tuple),
    st.dictionaries(st.text(string.ascii_letters, min_size=1, max_size=6), kids, max_size=4)), max_leaves=12)


def same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return type(a) is type(b) and a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    if isinstance(a, np.generic):
        return type(a) is type(b) and a == b
    if isinstance(a, dict):
        return type(a) is type(b) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@settings(max_examples=150, deadline=None)
@given(obj=nested, protocol=st.integers(2, 5))
def test_plain_data_round_trips_through_every_protocol(obj, protocol):
    data = pickle.dumps(obj, protocol=protocol)
    assert same(obj, safe_pickle.loads(data))
    assert same(obj, safe_pickle.resolve(safe_pickle.loads(data)))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(obj=nested, protocol=st.integers(2, 5))
def test_load_pickle_reads_the_same_from_disk(obj, protocol, tmp_path):
    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    assert same(obj, safe_pickle.load_pickle(path))


# ----------------------------------------------------------------------------- safe pickle: refusals
def global_call(module: str, name: str, arg: str, protocol: int) -> bytes:
    """A pickle that imports ``module.name`` and calls it with ``arg`` (GLOBAL or STACK_GLOBAL + REDUCE)."""
    if protocol < 4:
        return b"c" + module.encode() + b"\n" + name.encode() + b"\n" + b"(V" + arg.encode("raw_unicode_escape") + b"\ntR."

    def unicode(s: str) -> bytes:
        raw = s.encode("utf-8")
        return b"\x8c" + bytes([len(raw)]) + raw if len(raw) < 256 else b"X" + struct.pack("<I", len(raw)) + raw

    return b"\x80\x04" + unicode(module) + unicode(name) + b"\x93" + unicode(arg) + b"\x85R."


ALLOWED_PREFIXES = ("builtins", "__builtin__", "copy_reg", "copyreg", "collections", "_codecs", "numpy", "scipy.sparse", "chumpy")
identifier = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)
module_name = st.lists(identifier, min_size=1, max_size=3).map(".".join)


@settings(max_examples=200, deadline=None)
@given(module=module_name, name=identifier, protocol=st.sampled_from([0, 2, 4]))
def test_any_other_class_reference_is_refused(module, name, protocol):
    if module.split(".")[0] in ALLOWED_PREFIXES:
        module = "x" + module
    data = global_call(module, name, "ignored", protocol)
    with pytest.raises(pickle.UnpicklingError, match=f"refusing to load pickled object {module}.{name}"):
        safe_pickle.loads(data)


SENTINEL = Path(tempfile.gettempdir()) / "hoi_adapt_safe_pickle_sentinel"
DANGEROUS = [("os", "system"), ("posix", "system"), ("subprocess", "getoutput"), ("builtins", "eval"), ("builtins", "exec"),
             ("builtins", "__import__"), ("builtins", "getattr"), ("builtins", "open"), ("importlib", "import_module"),
             ("numpy", "load"), ("numpy.testing._private.utils", "runstring"), ("torch", "load"), ("pathlib", "Path")]


@pytest.mark.parametrize("module,name", DANGEROUS)
@pytest.mark.parametrize("protocol", [0, 4])
def test_dangerous_callables_are_never_executed(module, name, protocol, tmp_path):
    SENTINEL.unlink(missing_ok=True)
    command = f"touch {SENTINEL}" if name in ("system", "getoutput") else f"open({str(SENTINEL)!r}, 'w')"
    path = tmp_path / "evil.pkl"
    path.write_bytes(global_call(module, name, command, protocol))
    with pytest.raises(DataFileError, match="evil.pkl: unsafe or malformed pickle: refusing to load"):
        safe_pickle.load_pickle(path)
    assert not SENTINEL.exists()


@settings(max_examples=50, deadline=None)
@given(name=identifier, sub=st.sampled_from(["chumpy", "chumpy.ch", "scipy.sparse._csc", "scipy.sparse.csr"]))
def test_allowed_stub_modules_stay_inert(name, sub):
    """chumpy / scipy.sparse classes become stubs that only record their arguments (never imported or run)."""
    if name in ("Ch", "Select") or name[:3] in ("csc", "csr", "coo"):
        name = "Evil" + name
    obj = safe_pickle.loads(global_call(sub, name, f"touch {SENTINEL}", 2))
    assert isinstance(obj, safe_pickle.PickledStub) and obj.args == (f"touch {SENTINEL}",)
    with pytest.raises((ValueError, KeyError)):
        safe_pickle.resolve(obj)  # unknown stub kinds are refused, not guessed


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=64))
@example(data=b"\x8d\x00\x00\x00\x00\x00\x00\x00\x80")  # BINUNICODE8 of absurd length: OverflowError inside pickle
def test_random_bytes_give_data_file_error_or_plain_data(data):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "r.pkl"
        path.write_bytes(data)
        try:
            obj = safe_pickle.load_pickle(path)
        except DataFileError as exc:
            assert str(exc).startswith(str(path))
            return
    assert obj is None or isinstance(obj, (bool, int, float, complex, str, bytes, bytearray, list, tuple, dict, set,
                                           frozenset, np.ndarray, np.generic, slice, range))


# ----------------------------------------------------------------------------- joint orders
ORDER_NAMES = sorted(set(jm.TO_OPENPOSE) | set(jm.ALIASES))
perm21 = st.permutations(list(range(21)))


@settings(max_examples=100, deadline=None)
@given(a=st.sampled_from(ORDER_NAMES), b=st.sampled_from(ORDER_NAMES), c=st.sampled_from(ORDER_NAMES))
def test_shipped_orders_compose(a, b, c):
    p_ab, p_bc, p_ac = jm.permutation(a, b), jm.permutation(b, c), jm.permutation(a, c)
    assert sorted(p_ab.tolist()) == list(range(21))
    np.testing.assert_array_equal(p_ab[p_bc], p_ac)  # (x[p_ab])[p_bc] == x[p_ac]
    np.testing.assert_array_equal(jm.permutation(a, a), np.arange(21))


@settings(max_examples=100, deadline=None)
@given(pa=perm21, pb=perm21, pc=perm21, lead=st.lists(st.integers(1, 3), max_size=2), axis_first=st.booleans(),
       use_torch=st.booleans())
def test_random_orders_round_trip_and_compose(pa, pb, pc, lead, axis_first, use_torch):
    tables = {"ra": tuple(pa), "rb": tuple(pb), "rc": tuple(pc)}
    with mock.patch.dict(jm.TO_OPENPOSE, tables):
        x = np.random.default_rng(0).normal(size=(*lead, 21, 3))
        axis = -2
        if axis_first:  # joints on the first axis: (21, ..., 3)
            x, axis = np.moveaxis(x, -2, 0), 0
        arr = torch.from_numpy(x) if use_torch else x
        there = jm.convert(arr, "ra", "rb", axis=axis)
        back = jm.convert(there, "rb", "ra", axis=axis)
        via = jm.convert(jm.convert(arr, "ra", "rb", axis=axis), "rb", "rc", axis=axis)
        direct = jm.convert(arr, "ra", "rc", axis=axis)
        as_np = (lambda t: t.numpy()) if use_torch else (lambda t: t)
        np.testing.assert_array_equal(as_np(back), x)
        np.testing.assert_array_equal(as_np(via), as_np(direct))
        # the meaning of the tables: joint k of OpenPose is joint to_openpose[k] of the source order
        openpose = as_np(jm.convert(arr, "ra", "openpose", axis=axis))
        np.testing.assert_array_equal(np.take(openpose, np.arange(21), axis=axis), np.take(x, np.asarray(pa), axis=axis))


@settings(max_examples=50, deadline=None)
@given(j16=hnp.arrays(np.float64, (2, 16, 3), elements=st.floats(-1, 1)), tips=hnp.arrays(np.float64, (2, 5, 3), elements=st.floats(-1, 1)))
def test_mano_joints_with_tips_land_on_openpose_tips(j16, tips):
    out = jm.mano16_to_openpose_with_tips(j16, tips)
    np.testing.assert_array_equal(out[:, list(jm.OPENPOSE_TIPS)], tips)  # thumb..pinky
    np.testing.assert_array_equal(out[:, 0], j16[:, 0])
    torch_out = jm.mano16_to_openpose_with_tips(torch.from_numpy(j16), torch.from_numpy(tips))
    np.testing.assert_array_equal(torch_out.numpy(), out)


def test_wrong_joint_counts_and_unknown_orders_are_clear_errors():
    with pytest.raises(ValueError, match="expected 21 joints"):
        jm.convert(np.zeros((20, 3)), "rhd", "openpose")
    with pytest.raises(ValueError, match="unknown joint order 'nope'"):
        jm.permutation("nope", "openpose")


# ----------------------------------------------------------------------------- HO-3D split files, JSON
sequence = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,7}", fullmatch=True)
frame = st.from_regex(r"[0-9]{1,5}", fullmatch=True)


@settings(max_examples=100, deadline=None)
@given(entries=st.lists(st.tuples(sequence, frame), max_size=12), blank=st.lists(st.booleans(), max_size=12),
       crlf=st.booleans(), pad=st.booleans())
def test_split_files_round_trip(entries, blank, crlf, pad):
    lines: list[str] = []
    for i, (seq, fr) in enumerate(entries):
        if i < len(blank) and blank[i]:
            lines.append("   " if pad else "")
        lines.append(f"  {seq}/{fr} " if pad else f"{seq}/{fr}")
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "train.txt"
        path.write_bytes(("\r\n" if crlf else "\n").join(lines).encode())
        assert parse_split_file(path) == [(s, f) for s, f in entries]


@settings(max_examples=200, deadline=None)
@given(line=st.text(max_size=30), before=st.integers(0, 3))
def test_split_file_garbage_names_the_line(line, before):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "evaluation.txt"
        path.write_bytes(("ABF10/0001\n" * before + line).encode("utf-8", "surrogatepass"))
        try:
            out = parse_split_file(path)
        except DataFileError as exc:
            assert str(exc).startswith(str(path)) and (f"line {before + 1}" in str(exc) or "binary" in str(exc)
                                                        or "line " in str(exc))
            return
    assert len(out) >= before and all(f.isdigit() and s for s, f in out)


@settings(max_examples=150, deadline=None)
@given(value=st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=6),
                          lambda k: st.lists(k, max_size=3) | st.dictionaries(st.text(max_size=4), k, max_size=3), max_leaves=10),
       cut=st.integers(0, 400))
def test_json_reads_back_or_names_the_position(value, cut):
    text = json.dumps(value)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "anno.json"
        path.write_text(text)
        assert load_json(path) == value
        truncated = text[: cut % (len(text) + 1)]
        path.write_text(truncated)
        try:
            out = load_json(path)
        except DataFileError as exc:
            assert str(exc).startswith(f"{path}: invalid JSON at line 1, column")
            return
        assert out == json.loads(truncated)
