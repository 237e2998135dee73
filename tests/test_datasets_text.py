"""Dexter+Object / EgoDexter fingertip line parsers: examples and property tests."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hoi_adapt.data.datasets.dexter_object import parse_tip_line, read_tip_file
from hoi_adapt.utils.errors import DataFileError


def test_examples_do_and_ed():
    line = "12.3, -4.5, 310.0;1,2,3; 4 , 5 ,32001;nan, nan, nan;0, 0, 0;9,9,9;7,7,7;"
    out = parse_tip_line(line, 3, invalid_values=(32001,), zero_invalid=True)
    np.testing.assert_allclose(out[:2], [[12.3, -4.5, 310.0], [1, 2, 3]])
    assert np.isnan(out[2:]).all()  # marker, NaN, zero; entries 6+ ignored
    ed2 = parse_tip_line("10,20;-1,-1;30,-1;40,50;60,70;", 2, invalid_values=(-1,))
    np.testing.assert_allclose(ed2[[0, 3, 4]], [[10, 20], [40, 50], [60, 70]])
    assert np.isnan(ed2[[1, 2]]).all()
    assert np.isnan(parse_tip_line("1,2,3;4,5,6;", 3)).all()  # short line -> missing frame
    assert np.isnan(parse_tip_line("   ", 3)).all()
    mid = parse_tip_line("1,2,3;;7,8,9;1,1,1;2,2,2", 3)  # empty middle entry -> invalid point only
    assert np.isnan(mid[1]).all() and np.isfinite(mid[[0, 2, 3, 4]]).all()


@pytest.mark.parametrize("line,msg", [("1,2,3;a,b,c;1,2,3;1,2,3;1,2,3", "entry 2 .* not numeric"),
                                      ("1,2;1,2,3;1,2,3;1,2,3;1,2,3", "entry 1 .* 2 values, expected 3"),
                                      ("hello world", "entry 1 .* 1 values, expected 3")])
def test_malformed_lines_name_file_and_line(line, msg):
    with pytest.raises(DataFileError, match=f"anno.txt: line 7: {msg}"):
        parse_tip_line(line, 3, path="anno.txt", line_no=7)


def test_read_tip_file_collects_errors(tmp_path):
    p = tmp_path / "Seq3D.txt"
    p.write_text("1,2,3;1,2,3;1,2,3;1,2,3;1,2,3;\ngarbage;x;y;z;w\n\n1,1,1;1,1,1;1,1,1;1,1,1;1,1,1\n\n\n")
    with pytest.raises(DataFileError, match=r"Seq3D.txt: line 2"):
        read_tip_file(p, 3)
    errors: list[str] = []
    rows = read_tip_file(p, 3, errors=errors)
    assert rows.shape == (4, 5, 3)  # trailing blank lines are not frames; the middle blank line is
    assert len(errors) == 1 and "line 2" in errors[0]
    assert np.isnan(rows[1]).all() and np.isnan(rows[2]).all() and np.isfinite(rows[[0, 3]]).all()
    p.write_bytes(b"\x00\x01\x02binary")
    with pytest.raises(DataFileError, match="binary"):
        read_tip_file(p, 3)


finite = st.floats(min_value=-1e5, max_value=1e5, allow_nan=False, allow_infinity=False)


@settings(max_examples=150, deadline=None)
@given(dim=st.sampled_from([2, 3]), data=st.data(), extra=st.integers(0, 3), trailing=st.booleans(),
       spaces=st.booleans())
def test_valid_lines_round_trip(dim, data, extra, trailing, spaces):
    pts = np.array(data.draw(st.lists(st.lists(finite, min_size=dim, max_size=dim), min_size=5 + extra, max_size=5 + extra)))
    sep = ", " if spaces else ","
    line = ";".join(sep.join(repr(float(v)) for v in p) for p in pts) + (";" if trailing else "")
    out = parse_tip_line(line, dim)
    np.testing.assert_array_equal(out, pts[:5])  # repr() round-trips floats exactly


@settings(max_examples=300, deadline=None)
@given(line=st.text(alphabet=st.sampled_from(list("0123456789.,;-+ eEnaifNA\t")) | st.characters(), max_size=80),
       dim=st.sampled_from([2, 3]), zero=st.booleans())
def test_random_lines_only_raise_data_file_error(line, dim, zero):
    try:
        out = parse_tip_line(line, dim, path="x.txt", line_no=3, invalid_values=(32001, -1), zero_invalid=zero)
    except DataFileError as exc:
        assert "x.txt: line 3" in str(exc)
        return
    assert out.shape == (5, dim)
    ok = np.isfinite(out).all(axis=1)
    assert (np.isfinite(out) == ok[:, None]).all()  # a point is all-valid or all-NaN
    assert not np.isin(out[ok], [32001, -1]).any()
