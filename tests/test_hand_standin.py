"""The procedural stand-in hand: determinism, mesh invariants, MANO layout and anatomy."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hoi_adapt.hand import standin
from hoi_adapt.hand.joint_maps import MANO_PARENTS, PALM_ROOT_VERTICES, TIP_VERTEX_PRESETS
from hoi_adapt.hand.mano_file import REQUIRED_SHAPES, load_mano_arrays
from hoi_adapt.utils.mesh import signed_volume
from hoi_adapt.utils.safe_pickle import SparseStub, load_pickle

REPO = Path(__file__).resolve().parents[1]
TIPS = TIP_VERTEX_PRESETS["smplx"]


@pytest.fixture(scope="module")
def right() -> dict:
    return standin.build_standin("right")


@pytest.fixture(scope="module")
def left() -> dict:
    return standin.build_standin("left")


def _joints(m: dict) -> np.ndarray:
    return m["J_regressor"] @ m["v_template"]


# ---- files ---------------------------------------------------------------------------------------
def test_two_generations_are_byte_identical(tmp_path):
    a = standin.ensure_standin_files(tmp_path / "a", verify=True)
    standin._CACHE.clear()  # force a real second generation
    b = standin.ensure_standin_files(tmp_path / "b", verify=True)
    for side in standin.SIDES:
        for suffix in (".pkl", ".npz"):
            pa, pb = a[side].with_suffix(suffix), b[side].with_suffix(suffix)
            assert pa.read_bytes() == pb.read_bytes(), pa.name
    mtime = a["right"].stat().st_mtime_ns
    standin.ensure_standin_files(tmp_path / "a", verify=True)  # identical -> not rewritten
    assert a["right"].stat().st_mtime_ns == mtime


def test_ensure_rewrites_a_different_file(tmp_path):
    paths = standin.ensure_standin_files(tmp_path)
    npz = paths["left"].with_suffix(".npz")
    good = npz.read_bytes()
    npz.write_bytes(b"corrupt")
    standin.ensure_standin_files(tmp_path)  # fast path notices the unreadable notice
    assert npz.read_bytes() == good


def test_two_processes_racing(tmp_path):
    code = f"from hoi_adapt.hand.standin import ensure_standin_files as e; e(r'{tmp_path}', verify=True)"
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stderr=subprocess.PIPE) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    expected = standin.npz_bytes(standin.build_standin("right"))
    assert (tmp_path / "STANDIN_MANO_RIGHT.npz").read_bytes() == expected
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left behind


def test_files_have_mano_layout(tmp_path, right):
    paths = standin.ensure_standin_files(tmp_path)
    raw = load_pickle(paths["right"], resolve_stubs=False)
    assert list(raw)[:9] == list(REQUIRED_SHAPES)
    assert isinstance(raw["J_regressor"], SparseStub) and raw["J_regressor"].name == "csc_matrix"
    assert raw["f"].dtype == np.uint32 and raw["kintree_table"][0, 0] == 4294967295
    from_pkl = load_mano_arrays(paths["right"])
    from_npz = load_mano_arrays(paths["right"].with_suffix(".npz"))
    for key, value in from_npz.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(from_pkl[key], value, err_msg=key)
    notice = from_pkl["standin_notice"]
    assert notice.startswith("NOT MANO") and "hoi_adapt" in notice and "stand-in" in notice
    assert from_npz["standin_notice"] == notice


# ---- mesh ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("side", standin.SIDES)
def test_mesh_is_a_clean_disk(side, right, left):
    m = right if side == "right" else left
    v, f = m["v_template"], m["f"]
    r = standin.mesh_report(v, f)
    assert (r["num_verts"], r["num_faces"]) == (778, 1538)
    assert r["boundary_loops"] == [16]  # one wrist opening of 16 vertices
    assert r["nonmanifold_edges"] == 0 and r["bad_fans"] == 0
    assert r["degenerate_faces"] == 0 and r["duplicate_faces"] == 0
    assert r["inconsistent_edges"] == 0
    assert r["signed_volume"] > 1.5e-4  # outward winding; ~240 cm^3
    assert r["self_intersections"] == 0
    assert r["min_edge"] > 5e-4
    edges = np.unique(np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1), axis=0)
    assert 778 - len(edges) + 1538 == 1  # Euler characteristic of a disk
    # the wrist joint is regressed from exactly the boundary ring
    e_all = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    uniq, counts = np.unique(e_all, axis=0, return_counts=True)
    assert set(np.unique(uniq[counts == 1])) == set(np.flatnonzero(m["J_regressor"][0]))


def test_mesh_checks_catch_defects(right):
    v, f = right["v_template"], right["f"]
    flipped = f.copy()
    flipped[10] = flipped[10, [0, 2, 1]]
    assert standin.mesh_report(v, flipped, check_intersections=False)["inconsistent_edges"] > 0
    assert signed_volume(v, f[:, [0, 2, 1]]) < 0
    moved = v.copy()
    moved[TIPS[1]] = _joints(right)[6]  # drag the index tip into the middle finger's DIP
    assert standin.count_self_intersections(moved, f) > 0
    assert standin.mesh_report(v, f[1:], check_intersections=False)["boundary_loops"] != [16]


def test_skinning_and_regressor(right):
    W, R = right["weights"], right["J_regressor"]
    assert W.shape == (778, 16) and R.shape == (16, 778)
    assert W.min() >= 0 and np.allclose(W.sum(1), 1, atol=1e-12)
    assert R.min() >= 0 and np.allclose(R.sum(1), 1, atol=1e-12)
    np.testing.assert_allclose(_joints(right), right["J"], atol=1e-15)
    # every joint drives some vertices, and the tips are driven by the distal joints
    assert (W.max(0) > 0.9).all()
    for tip, j3 in zip(TIPS, (15, 3, 6, 12, 9), strict=True):
        assert W[tip, j3] > 0.99


def test_tables(right):
    assert right["kintree_table"].tolist() == [[4294967295] + list(MANO_PARENTS[1:]), list(range(16))]
    C = right["hands_components"]
    np.testing.assert_allclose(C @ C.T, np.eye(45), atol=1e-12)
    coeffs = right["hands_coeffs"]
    assert coeffs.shape == (1554, 45)
    var = coeffs.var(0)
    assert (np.diff(var) <= 1e-12).all() and var[0] > 10 * var[20]  # sorted, a few synergies dominate
    assert right["bs_style"] == "lbs" and right["bs_type"] == "lrotmin"
    for key in ("shapedirs", "posedirs", "hands_mean"):
        assert np.isfinite(right[key]).all()


# ---- anatomy ------------------------------------------------------------------------------------
def test_anatomy_in_mano_frame(right):
    v, J = right["v_template"], _joints(right)
    wrist, index1, middle1, pinky1, ring1, thumb1 = J[0], J[1], J[4], J[7], J[10], J[13]
    # fingers along -x from the wrist, thumb and index on +z, palm faces -y
    assert (v[list(TIPS[1:])][:, 0] < wrist[0] - 0.12).all()
    assert index1[2] > middle1[2] > ring1[2] > pinky1[2]
    assert thumb1[2] > middle1[2] and v[TIPS[0], 2] > index1[2] + 0.03
    assert v[TIPS[0], 1] < wrist[1] - 0.01  # the thumb tip sits palmar (opposition)
    length = np.linalg.norm(v[TIPS[2]] - wrist)
    assert 0.18 <= length <= 0.19
    palm = v[(v[:, 0] > 0.03) & (v[:, 0] < 0.04) & (v[:, 2] < 0.045)]
    assert 0.075 <= np.ptp(palm[:, 2]) <= 0.085
    # phalanx ratios: proximal > middle > distal(+tip) for every long finger
    for j1, tip in ((1, TIPS[1]), (4, TIPS[2]), (10, TIPS[3]), (7, TIPS[4])):
        seg = [np.linalg.norm(J[j1 + 1] - J[j1]), np.linalg.norm(J[j1 + 2] - J[j1 + 1]), np.linalg.norm(v[tip] - J[j1 + 2])]
        assert seg[0] > seg[1] > 0.8 * seg[2], seg
    # finger cross-sections are flattened: wider (z) than thick (y) around the middle PIP
    ring = v[np.flatnonzero(right["J_regressor"][5])]
    assert np.ptp(ring[:, 2]) > np.ptp(ring[:, 1])


def test_tip_presets_land_on_fingertips(right):
    v, J = right["v_template"], _joints(right)
    dips = (15, 3, 6, 12, 9)
    for finger in range(5):
        pole = v[TIPS[finger]]
        axis = pole - J[dips[finger]]
        for name, preset in TIP_VERTEX_PRESETS.items():
            p = v[preset[finger]]
            assert np.linalg.norm(p - pole) < 0.010, (name, finger)
            assert (p - J[dips[finger]]) @ axis > 0.7 * axis @ axis, (name, finger)  # beyond the DIP, near the end
    # the smplx tip is the extreme point of its finger along the finger direction
    for finger, (j3, tip) in enumerate(zip(dips, TIPS, strict=True)):
        d = v[tip] - J[j3]
        segment = right["weights"][:, j3] > 0.5  # the distal segment of this finger
        assert (v[segment] @ d).max() == pytest.approx(v[tip] @ d), finger


def test_palm_root_vertices(right):
    v = right["v_template"]
    a, b = PALM_ROOT_VERTICES["manopth"]
    _, c = PALM_ROOT_VERTICES["obman"]
    assert v[a, 1] < 0 < v[b, 1] and v[c, 1] > 0  # 95 palmar, 22/218 dorsal
    for root in ((v[a] + v[b]) / 2, (v[a] + v[c]) / 2):
        assert 0.02 < root[0] < 0.07 and abs(root[1]) < 0.006 and abs(root[2]) < 0.02


def test_mirror(right, left):
    np.testing.assert_array_equal(left["v_template"], right["v_template"] * [-1, 1, 1])
    np.testing.assert_array_equal(left["f"], right["f"][:, [0, 2, 1]])
    np.testing.assert_array_equal(left["shapedirs"][:, 0], -right["shapedirs"][:, 0])
    np.testing.assert_array_equal(left["shapedirs"][:, 1:], right["shapedirs"][:, 1:])
    sign = np.tile([1, -1, -1], 15)
    np.testing.assert_array_equal(left["hands_mean"], right["hands_mean"] * sign)
    np.testing.assert_array_equal(left["hands_components"], right["hands_components"] * sign)
    np.testing.assert_array_equal(left["weights"], right["weights"])
    # relaxed mean: finger flexion about +z (right) / -z (left)
    for j in (1, 2, 4, 5, 10, 11, 7, 8):
        assert right["hands_mean"][3 * (j - 1) + 2] > 0.15 and left["hands_mean"][3 * (j - 1) + 2] < -0.15


def test_shape_directions_are_meaningful(right):
    v, S, R = right["v_template"], right["shapedirs"], right["J_regressor"]

    def shaped(k, beta=1.0):
        vs = v + beta * S[:, :, k]
        return vs, R @ vs

    wrist_tip = lambda vs, J: np.linalg.norm(vs[TIPS[2]] - J[0])  # noqa: E731
    base = wrist_tip(v, R @ v)
    assert wrist_tip(*shaped(0)) / base == pytest.approx(1.05, abs=0.005)  # overall size
    finger = lambda vs, J: np.linalg.norm(vs[TIPS[2]] - J[4])  # noqa: E731
    assert finger(*shaped(2)) / finger(v, R @ v) == pytest.approx(1.05, abs=0.01)  # finger length
    palm_w = lambda vs, J: J[1, 2] - J[7, 2]  # noqa: E731
    assert palm_w(*shaped(1)) / palm_w(v, R @ v) == pytest.approx(1.06, abs=0.01)  # palm width
    thumb = lambda vs, J: np.linalg.norm(vs[TIPS[0]] - J[13])  # noqa: E731
    assert thumb(*shaped(4)) / thumb(v, R @ v) == pytest.approx(1.05, abs=0.01)
    vs, J = shaped(7)
    assert np.linalg.norm(vs[TIPS[1]] - J[1]) > np.linalg.norm(v[TIPS[1]] - (R @ v)[1]) * 1.02
    assert np.linalg.norm(vs[TIPS[3]] - J[10]) < np.linalg.norm(v[TIPS[3]] - (R @ v)[10]) * 0.98
    for k in range(10):  # every direction moves the surface by a plausible 1..15 mm at most
        assert 0.0009 < np.abs(S[:, :, k]).max() < 0.015, k
    for k in range(10):  # the mesh stays valid two standard deviations out along each direction
        for beta in (-2.0, 2.0):
            assert standin.count_self_intersections(v + beta * S[:, :, k], right["f"]) == 0, (k, beta)
    for beta in (-1.0, 1.0):  # and one standard deviation along all of them at once
        assert standin.count_self_intersections(v + S @ np.full(10, beta), right["f"]) == 0


def test_pose_correctives_bulge_the_bent_joint(right):
    P = right["posedirs"]
    R = np.eye(3)
    c, s = np.cos(np.pi / 2), np.sin(np.pi / 2)
    R_flex = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    feat = np.zeros(135)
    feat[9 * 1: 9 * 2] = (R_flex - R).ravel()  # index PIP (joint 2) bent 90 degrees
    off = P @ feat
    mag = np.linalg.norm(off, axis=1)
    J = _joints(right)
    moved = mag > 1e-4
    assert moved.sum() > 5 and mag.max() < 0.003
    assert (np.linalg.norm(right["v_template"][moved] - J[2], axis=1) < 0.02).all()
    outward = np.einsum("ij,ij->i", off[moved], right["v_template"][moved] - J[2])
    assert (outward > 0).all()
    assert np.abs(P @ np.zeros(135)).max() == 0
