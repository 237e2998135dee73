"""PoseSampler: determinism, joint limits, the meaning of each kind, joint axes, wrist orientations."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hoi_adapt.hand.pose_sampler import (
    FINGER_JOINTS,
    KINDS,
    LIMITS,
    PoseSampler,
    base_orient,
    joint_frames,
    sample_global_orient,
)
from hoi_adapt.hand.standin import build_standin, mirror_model


@pytest.fixture(scope="module")
def joints() -> np.ndarray:
    m = build_standin("right")
    return m["J_regressor"] @ m["v_template"]


def _limits() -> tuple[np.ndarray, np.ndarray]:
    keys = []
    for j in range(1, 16):
        finger = next(f for f, ch in FINGER_JOINTS.items() if j in ch)
        keys.append(("thumb" if finger == "thumb" else "finger") + str(FINGER_JOINTS[finger].index(j) + 1))
    return np.stack([LIMITS[k][:, 0] for k in keys]), np.stack([LIMITS[k][:, 1] for k in keys])


def test_same_seed_same_poses(joints):
    for kind in KINDS:
        a = PoseSampler(joints, seed=11).sample(20, kind)
        b = PoseSampler(joints, seed=11).sample(20, kind)
        c = PoseSampler(joints, seed=12).sample(20, kind)
        assert a.shape == (20, 45) and np.isfinite(a).all()
        np.testing.assert_array_equal(a, b)
        assert np.abs(a - c).max() > 0.05


@pytest.mark.parametrize("kind", KINDS)
def test_angles_respect_limits(joints, kind):
    s = PoseSampler(joints, seed=3)
    ang = s.sample_angles(400, kind)
    low, high = _limits()
    assert (ang >= low - 1e-12).all() and (ang <= high + 1e-12).all()
    np.testing.assert_allclose(s.to_axis_angle(ang), np.einsum("njk,jkc->njc", ang, s.frames).reshape(400, 45))


def test_kinds_mean_what_they_say(joints):
    s = PoseSampler(joints, seed=5)
    flex = {k: s.sample_angles(300, k)[:, :, 0] for k in ("open", "relaxed", "power", "spread", "pinch", "tripod")}
    fingers = [FINGER_JOINTS[f][i] - 1 for f in ("index", "middle", "ring", "pinky") for i in range(3)]
    mean = {k: v[:, fingers].mean() for k, v in flex.items()}
    assert mean["power"] > 1.0 > mean["relaxed"] > mean["open"] and mean["spread"] < 0.2
    idx = [FINGER_JOINTS["index"][i] - 1 for i in range(3)]
    assert flex["pinch"][:, idx].mean() > 0.4 and flex["tripod"][:, idx].mean() > 0.4
    abd = {k: s.sample_angles(300, k)[:, [0, 6], 1] for k in ("spread", "relaxed")}  # index1, pinky1 abduction
    assert abd["spread"][:, 0].mean() > 0.2 and abd["spread"][:, 1].mean() < -0.2
    assert np.abs(abd["spread"]).mean() > 3 * np.abs(abd["relaxed"]).mean()
    with pytest.raises(ValueError, match="unknown pose kind"):
        s.sample(1, "fist")


def test_mixed_draws_every_kind(joints):
    mixed = PoseSampler(joints, seed=9).sample_angles(2000, "mixed")
    fingers = [FINGER_JOINTS[f][i] - 1 for f in ("index", "middle", "ring", "pinky") for i in range(3)]
    curl = mixed[:, fingers, 0].mean(1)
    assert (curl > 1.0).mean() > 0.1 and (curl < 0.15).mean() > 0.15  # power grasps and open hands both present


def test_relaxed_pose_is_a_slight_curl(joints):
    m = build_standin("right")
    tips = m["v_template"][[744, 320, 443, 554, 671]]
    pose = PoseSampler(joints, seed=0, tips=tips).relaxed_pose().reshape(15, 3)
    for j in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12):
        assert 0.15 < pose[j - 1, 2] < 0.8  # about +z, like MANO's hands_mean
    np.testing.assert_allclose(pose.ravel(), m["hands_mean"], rtol=0, atol=1e-12)


def test_joint_frames(joints):
    for side, J in (("right", joints), ("left", joints * [-1, 1, 1])):
        F = joint_frames(J, side)
        for R in F:
            np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
        index_pip_flex = F[1, 0]
        assert index_pip_flex[2] * (1 if side == "right" else -1) > 0.95  # +z right, -z left
    # the left hand's frames are the mirror image: axis-angle (x, y, z) -> (x, -y, -z)
    right = PoseSampler(joints, seed=1).sample(10, "power")
    left = PoseSampler(joints * [-1, 1, 1], seed=1).sample(10, "power")
    np.testing.assert_allclose(left, right * np.tile([1, -1, -1], 15), atol=1e-12)
    assert PoseSampler(joints * [-1, 1, 1]).side == "left"
    with pytest.raises(ValueError, match="16, 3"):
        PoseSampler(np.zeros((21, 3)))


def test_sampler_from_model_matches_joints():
    from hoi_adapt.hand.model import HandModel

    m = HandModel(dtype=__import__("torch").float64)
    a = PoseSampler(m, seed=4).sample(5, "pinch")
    tips = m.v_template[m.tip_ids].numpy()
    b = PoseSampler(m.rest_joints16.numpy(), seed=4, tips=tips).sample(5, "pinch")
    np.testing.assert_allclose(a, b, atol=1e-12)
    mirrored = mirror_model(build_standin("right"))
    assert PoseSampler(mirrored["J"], seed=0).side == "left"


@pytest.mark.parametrize("side", ["right", "left"])
def test_global_orient_shows_the_hand(side):
    rng = np.random.default_rng(0)
    rot = sample_global_orient(4000, rng, side=side)
    again = sample_global_orient(4000, np.random.default_rng(0), side=side)
    np.testing.assert_array_equal(rot, again)
    R = Rotation.from_rotvec(rot).as_matrix()
    palm = R @ np.array([0.0, -1.0, 0.0])  # palmar normal in the camera frame
    fingers = R @ np.array([-1.0 if side == "right" else 1.0, 0.0, 0.0])
    # palm (n_z < 0) or back (n_z > 0) faces the camera, tilted by at most 0.6 rad
    assert (np.abs(palm[:, 2]) >= np.cos(0.6) - 1e-9).all()
    assert 0.45 < (palm[:, 2] < 0).mean() < 0.55
    assert (np.abs(fingers[:, 2]) <= np.sin(0.6) + 1e-9).all()  # fingers roughly in the image plane
    roll = np.arctan2(fingers[:, 0], -fingers[:, 1])
    assert np.histogram(roll, bins=8, range=(-np.pi, np.pi))[0].min() > 300  # all in-plane rolls
    R0 = base_orient(side)
    assert np.isclose(np.linalg.det(R0), 1.0)
    np.testing.assert_allclose(R0 @ np.array([0.0, -1.0, 0.0]), [0, 0, -1])  # palm towards the camera
    thumb_side = R0 @ np.array([0.0, 0.0, 1.0])
    assert thumb_side[0] == (1.0 if side == "right" else -1.0)  # right thumb on the image's right
