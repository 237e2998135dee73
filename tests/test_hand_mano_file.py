"""MANO file reading without chumpy, validation errors, clean .npz conversion (mano_file, convert_mano, cli)."""
from __future__ import annotations

import hashlib
import importlib.util
import os
import pickle
import sys
import types
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from hoi_adapt.hand import mano_file
from hoi_adapt.hand.mano_file import load_mano_arrays, validate_mano_arrays, write_mano_npz
from hoi_adapt.hand.standin import build_standin
from hoi_adapt.utils.errors import ModelFileError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def right() -> dict:
    return build_standin("right")


def _plain(arrays: dict) -> dict:
    """The stand-in without its notice: looks like a MANO file."""
    return {k: v for k, v in arrays.items() if k != "standin_notice"}


# ---- chumpy-style pickles -------------------------------------------------------------------------
@contextmanager
def _fake_chumpy():
    """Register stub classes under chumpy's module names, only while pickling."""
    root, ch_mod, re_mod = (types.ModuleType(n) for n in ("chumpy", "chumpy.ch", "chumpy.reordering"))
    Ch = type("Ch", (), {"__module__": "chumpy.ch"})
    Select = type("Select", (), {"__module__": "chumpy.reordering"})
    ch_mod.Ch, re_mod.Select = Ch, Select
    mods = {"chumpy": root, "chumpy.ch": ch_mod, "chumpy.reordering": re_mod}
    saved = {k: sys.modules.get(k) for k in mods}
    sys.modules.update(mods)
    try:
        yield Ch, Select
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def _chumpy_pickle(arrays: dict, protocol: int) -> bytes:
    """A pickle laid out like the official file: chumpy Ch/Select values and a scipy csc J_regressor."""
    with _fake_chumpy() as (Ch, Select):
        def ch(x):
            obj = Ch.__new__(Ch)
            obj.__dict__.update({"x": np.asarray(x), "_dirty_vars": set()})
            return obj

        # shapedirs as Select(a=Ch(20 components), idxs=first 10, preferred_shape) like the official file
        wide = np.concatenate([arrays["shapedirs"], np.full((778, 3, 10), 7.0)], axis=2)
        idxs = np.arange(wide.size).reshape(wide.shape)[:, :, :10].ravel()
        select = Select.__new__(Select)
        select.__dict__.update({"a": ch(wide), "idxs": idxs, "preferred_shape": (778, 3, 10)})
        data = dict(arrays)
        data["shapedirs"] = select
        data["v_template"] = ch(arrays["v_template"])
        data["hands_components"] = ch(arrays["hands_components"])
        data["J_regressor"] = sp.csc_matrix(arrays["J_regressor"])
        data["f"] = arrays["f"].astype(np.uint32)
        data["kintree_table"] = arrays["kintree_table"].astype(np.uint32)
        blob = pickle.dumps(data, protocol=protocol)
    return blob


@pytest.mark.parametrize("protocol", [0, 2])
def test_chumpy_pickle_loads_without_chumpy(tmp_path, right, protocol):
    plain = _plain(right)
    blob = _chumpy_pickle(plain, protocol)
    assert b"chumpy.ch" in blob and b"chumpy.reordering" in blob
    if protocol == 0:  # the official files (SciPy of 2017) name the old module path
        assert b"scipy.sparse._csc" in blob
        blob = blob.replace(b"scipy.sparse._csc", b"scipy.sparse.csc")
    path = tmp_path / "MANO_RIGHT.pkl"
    path.write_bytes(blob)
    loaded = load_mano_arrays(path)
    twin = tmp_path / "twin.npz"
    write_mano_npz(plain, twin)
    ref = load_mano_arrays(twin)
    assert set(loaded) == set(ref)
    for key, value in ref.items():
        if isinstance(value, np.ndarray):
            assert loaded[key].dtype == value.dtype, key
            np.testing.assert_array_equal(loaded[key], value, err_msg=key)
        else:
            assert loaded[key] == value
    assert loaded["J_regressor"].shape == (16, 778) and isinstance(loaded["J_regressor"], np.ndarray)
    assert loaded["f"].dtype == np.int64 and loaded["kintree_table"][0, 0] == 4294967295
    assert "chumpy" not in sys.modules  # nothing imported chumpy (the stubs were removed after pickling)


def test_npz_roundtrip_is_plain_and_deterministic(tmp_path, right):
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    write_mano_npz(right, a)
    write_mano_npz(right, b)
    assert a.read_bytes() == b.read_bytes()  # fixed zip timestamps
    with np.load(a, allow_pickle=False) as z:  # no pickled objects inside
        assert set(z.files) == set(right)
    back = load_mano_arrays(a)
    np.testing.assert_array_equal(back["v_template"], right["v_template"])
    assert back["standin_notice"] == right["standin_notice"]
    assert back["bs_style"] == "lbs" and back["bs_type"] == "lrotmin"


# ---- malformed files -----------------------------------------------------------------------------
def _assert_model_error(path: Path, fragment: str) -> None:
    with pytest.raises(ModelFileError) as info:
        load_mano_arrays(path)
    msg = str(info.value)
    assert str(path) in msg and "mano.is.tue.mpg.de" in msg and "convert_mano.py" in msg
    assert fragment in msg, msg


def test_missing_file(tmp_path):
    _assert_model_error(tmp_path / "MANO_RIGHT.pkl", "file not found")


def test_not_a_pickle(tmp_path):
    p = tmp_path / "MANO_RIGHT.pkl"
    p.write_bytes(b"this is not a pickle at all" * 10)
    _assert_model_error(p, "pickle")


def test_not_a_dict(tmp_path):
    p = tmp_path / "MANO_RIGHT.pkl"
    p.write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    _assert_model_error(p, "expected a dict")


def test_unsafe_pickle_is_refused(tmp_path):
    p = tmp_path / "MANO_RIGHT.pkl"
    p.write_bytes(pickle.dumps({"x": os.getcwd}, protocol=2))
    _assert_model_error(p, "unsafe or malformed pickle")


def test_missing_key_wrong_shape_nonfinite(tmp_path, right):
    plain = _plain(right)
    bad = dict(plain)
    del bad["posedirs"]
    p = tmp_path / "a.pkl"
    p.write_bytes(pickle.dumps(bad, protocol=2))
    _assert_model_error(p, "posedirs")

    bad = dict(plain, shapedirs=plain["shapedirs"][:, :, :8])
    p.write_bytes(pickle.dumps(bad, protocol=2))
    _assert_model_error(p, "'shapedirs' has shape (778, 3, 8)")

    v = plain["v_template"].copy()
    v[3, 1] = np.nan
    p.write_bytes(pickle.dumps(dict(plain, v_template=v), protocol=2))
    _assert_model_error(p, "non-finite")

    kin = plain["kintree_table"].copy()
    kin[0, 5] = 0
    p.write_bytes(pickle.dumps(dict(plain, kintree_table=kin), protocol=2))
    _assert_model_error(p, "kintree_table")

    f = plain["f"].copy()
    f[0, 0] = 900
    p.write_bytes(pickle.dumps(dict(plain, f=f), protocol=2))
    _assert_model_error(p, "face indices")


def test_npz_with_objects_and_broken_zip(tmp_path, right):
    p = tmp_path / "x.npz"
    np.savez(p, v_template=np.array([{"a": 1}], dtype=object))
    _assert_model_error(p, "pickled objects")
    q = tmp_path / "y.npz"
    q.write_bytes(p.read_bytes()[:100])
    with pytest.raises(ModelFileError):
        load_mano_arrays(q)


def test_validate_reports_non_numeric(right):
    with pytest.raises(ModelFileError, match="not a numeric array"):
        validate_mano_arrays(dict(_plain(right), hands_mean=np.array(["a"] * 45, dtype=object)))


# ---- side and MD5 ---------------------------------------------------------------------------------
def test_side_detection(tmp_path, right):
    assert mano_file.side_from_name("x/MANO_RIGHT.pkl") == "right"
    assert mano_file.side_from_name("STANDIN_MANO_LEFT.npz") == "left"
    assert mano_file.side_from_name("mano.pkl") is None
    assert mano_file.side_from_geometry(right) == "right"
    assert mano_file.side_from_geometry(build_standin("left")) == "left"


def test_md5_is_reported_not_enforced(tmp_path, right):
    p = tmp_path / "MANO_RIGHT.npz"
    write_mano_npz(right, p)
    assert mano_file.file_md5(p) == hashlib.md5(p.read_bytes()).hexdigest()
    assert mano_file.official_match(p) is None
    assert mano_file.official_match(tmp_path / "absent.pkl") is None
    assert mano_file.OFFICIAL_MD5 == {"right": "fd5a9d35f914987cf1cc04ffe338caa1",
                                      "left": "11aeaca8631aa20db964d4eba491e885"}
    assert "official MANO v1.2 file (MD5): no" in mano_file.summarize(load_mano_arrays(p), p)


# ---- scripts ------------------------------------------------------------------------------------
def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "data_prep" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_convert_mano_script(tmp_path, right, capsys):
    src = tmp_path / "MANO_RIGHT.pkl"
    src.write_bytes(_chumpy_pickle(_plain(right), 2))
    out = tmp_path / "MANO_RIGHT.npz"
    convert = _load_script("convert_mano")
    assert convert.main([str(src), str(out)]) == 0
    text = capsys.readouterr().out
    assert "does not match the official" in text and "wrote:" in text
    np.testing.assert_array_equal(load_mano_arrays(out)["shapedirs"], right["shapedirs"])
    assert convert.main([str(src), str(out)]) == 1  # refuses to overwrite
    assert "--force" in capsys.readouterr().err
    assert convert.main([str(src), str(out), "--force"]) == 0
    assert convert.main([str(src), str(tmp_path / "o.npz"), "--side", "left"]) == 1  # geometry says right
    assert convert.main([str(tmp_path / "nope.pkl"), str(tmp_path / "n.npz")]) == 1


def test_hand_model_cli(tmp_path, right, capsys):
    from hoi_adapt.viz.hand_model_cli import main

    assert main(["--out", str(tmp_path / "standin")]) == 0
    text = capsys.readouterr().out
    assert "NOT MANO" in text and "boundary loops [16]" in text and "self-intersections 0" in text
    assert (tmp_path / "standin" / "STANDIN_MANO_LEFT.npz").is_file()
    folder = tmp_path / "user"
    folder.mkdir()
    (folder / "MANO_RIGHT.pkl").write_bytes(_chumpy_pickle(_plain(right), 2))
    assert main(["--mano", str(folder), "--out", str(tmp_path / "clean")]) == 0
    text = capsys.readouterr().out
    assert "side (geometry): right" in text and "official MANO v1.2 file (MD5): no" in text
    assert load_mano_arrays(tmp_path / "clean" / "MANO_RIGHT.npz")["J_regressor"].shape == (16, 778)
    assert main(["--mano", str(tmp_path / "missing.pkl")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("hoi-adapt hand-model: error: ") and "file not found" in err
