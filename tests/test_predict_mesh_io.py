"""The .obj writer and reader: exact round trips, winding kept, malformed files named."""
from __future__ import annotations

import numpy as np
import pytest

from hoi_adapt.io.mesh_io import read_obj, write_obj
from hoi_adapt.utils.errors import DataFileError


def test_obj_round_trip_keeps_vertices_faces_and_winding(tmp_path):
    rng = np.random.default_rng(0)
    verts = rng.normal(scale=0.05, size=(50, 3)) + [0.0, 0.0, 0.6]
    faces = rng.integers(0, 50, size=(70, 3))
    path = write_obj(tmp_path / "m.obj", verts, faces, comments=["metres", "two\nlines"])
    v, f = read_obj(path)
    np.testing.assert_allclose(v, verts, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(f, faces)  # same order, same winding
    text = path.read_text()
    assert text.startswith("# metres\n# two\n# lines\n")
    assert text.count("\nv ") + text.startswith("v ") == 50 and text.count("\nf ") == 70
    assert not list(tmp_path.glob(".m.obj.*"))  # no temporary left behind


def test_obj_reader_handles_slashes_negative_indices_and_polygons(tmp_path):
    p = tmp_path / "q.obj"
    p.write_text("o quad\nv 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvn 0 0 1\nf 1/1/1 2/2/1 3/3/1 4/4/1\nf -4 -2 -1\n")
    v, f = read_obj(p)
    assert v.shape == (4, 3)
    np.testing.assert_array_equal(f, [[0, 1, 2], [0, 2, 3], [0, 2, 3]])


@pytest.mark.parametrize("text, needle", [
    ("v 0 0\n", "line 1"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n", "line 4"),
    ("v 0 0 0\nf 1 x 1\n", "bad face index"),
    ("v a b c\n", "bad vertex"),
])
def test_obj_reader_names_the_bad_line(tmp_path, text, needle):
    p = tmp_path / "bad.obj"
    p.write_text(text)
    with pytest.raises(DataFileError, match=needle) as info:
        read_obj(p)
    assert "bad.obj" in str(info.value)


def test_obj_writer_rejects_bad_meshes(tmp_path):
    with pytest.raises(ValueError, match="face indices"):
        write_obj(tmp_path / "a.obj", np.zeros((3, 3)), np.array([[0, 1, 3]]))
    with pytest.raises(ValueError, match="NaN"):
        write_obj(tmp_path / "a.obj", np.full((3, 3), np.nan), np.array([[0, 1, 2]]))
    assert not (tmp_path / "a.obj").exists()
