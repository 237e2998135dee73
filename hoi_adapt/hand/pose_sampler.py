"""Random but anatomically plausible MANO hand poses (absolute axis-angle, ``flat_hand_mean=True``).

Why a sampler and not a pose data set: MANO's pose training data is licensed, and the synthetic world,
the stand-in model's PCA basis and the tests all need poses that bend the right joints the right way.

Joint axes are computed from the model's *rest joints* (MANO joint order, canonical MANO frame), never
hard-coded, so the same sampler works for the stand-in and for the official MANO files, right or left:

* palmar normal ``n``: right hand ``normalize((index1 - wrist) x (pinky1 - wrist))``, negated for a left
  hand (mirroring flips the cross product's handedness). In MANO's frame it is about ``-y``.
* radial direction ``r``: from pinky1 to index1 (towards the thumb), about ``+z``.
* finger joint with bone direction ``b`` (joint -> child joint): flexion axis ``normalize(b x n)``
  (a positive angle turns the bone towards the palm), abduction axis ``b x r`` (positive = towards the
  thumb side), twist axis ``b`` (``-b`` for a left hand, so that equal angles give mirrored poses). For the right hand the flexion axis is about ``+z``, matching the positive
  z components of MANO's relaxed ``hands_mean``; for the left hand it is about ``-z``.
* thumb: at the CMC, flexion moves the bone across the palm (towards the pinky base, within the palm
  plane) and abduction moves it out of the palm plane towards the palmar side (palmar abduction; MANO's
  relaxed ``hands_mean`` has about 0.7 rad of it); opposition is both together. At the MCP and IP joints
  flexion moves the bone towards the pad, the 45-degree mix of palmar and across-palm.

A joint's rotation vector is ``flex * a_flex + abd * a_abd + twist * b`` (a swing about an axis
perpendicular to the bone plus a small twist); angles are in radians and clipped to :data:`LIMITS`.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from hoi_adapt.hand.joint_maps import MANO_JOINT_NAMES

KINDS: tuple[str, ...] = ("open", "relaxed", "power", "pinch", "tripod", "spread", "mixed")
MIX_WEIGHTS: dict[str, float] = {"open": 0.15, "relaxed": 0.25, "power": 0.2, "pinch": 0.15, "tripod": 0.1, "spread": 0.15}
"""Share of each kind in ``mixed`` samples."""

# The 15 articulated joints (MANO indices 1..15) grouped per finger, base -> tip.
FINGER_JOINTS: dict[str, tuple[int, int, int]] = {
    "index": (1, 2, 3), "middle": (4, 5, 6), "pinky": (7, 8, 9), "ring": (10, 11, 12), "thumb": (13, 14, 15),
}
_FINGER_ORDER = ("index", "middle", "ring", "pinky")  # radial -> ulnar

# Per-level limits (radians) as (low, high) for flexion, abduction, twist.
LIMITS: dict[str, np.ndarray] = {
    "finger1": np.array([[-0.35, 1.60], [-0.35, 0.35], [-0.12, 0.12]]),  # MCP
    "finger2": np.array([[-0.10, 1.90], [-0.06, 0.06], [-0.08, 0.08]]),  # PIP
    "finger3": np.array([[-0.20, 1.40], [-0.06, 0.06], [-0.08, 0.08]]),  # DIP
    "thumb1": np.array([[-0.40, 0.90], [-0.30, 1.00], [-0.50, 0.50]]),   # CMC: across-palm flexion, palmar abduction, twist
    "thumb2": np.array([[-0.30, 1.00], [-0.15, 0.15], [-0.15, 0.15]]),   # MCP
    "thumb3": np.array([[-0.40, 1.40], [-0.08, 0.08], [-0.10, 0.10]]),   # IP
}
# Abduction sign per finger for "spread" (away from the middle finger): + is towards the thumb.
_SPREAD_DIR = {"index": 1.0, "middle": 0.15, "ring": -0.8, "pinky": -1.0}


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _perp(v: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Unit component of ``v`` perpendicular to unit ``axis``."""
    return _unit(v - np.dot(v, axis) * axis)


def side_from_rest_joints(joints16: np.ndarray) -> str:
    """'right' if the wrist lies on +x of the middle MCP (MANO's canonical frame), else 'left'."""
    return "right" if joints16[0, 0] > joints16[4, 0] else "left"


def _limit_key(joint: int) -> str:
    name = MANO_JOINT_NAMES[joint]
    return ("thumb" if name.startswith("thumb") else "finger") + name[-1]


def joint_frames(joints16: np.ndarray, side: str | None = None, tips: np.ndarray | None = None) -> np.ndarray:
    """Per articulated joint the (flexion, abduction, twist) axes in the rest frame: (15, 3, 3).

    Args:
        joints16: rest joints (16, 3) in MANO order.
        side: 'right' / 'left'; inferred from the geometry when None.
        tips: optional (5, 3) fingertips (thumb..pinky) giving the last bone directions; without them the
            last bone continues the previous one.
    """
    j = np.asarray(joints16, dtype=np.float64)
    side = side or side_from_rest_joints(j)
    hand = 1.0 if side == "right" else -1.0
    wrist = j[0]
    n_palm = hand * _unit(np.cross(j[1] - wrist, j[7] - wrist))
    radial = j[1] - j[7]
    frames = np.zeros((15, 3, 3))
    tip_of = {"thumb": 0, "index": 1, "middle": 2, "ring": 3, "pinky": 4}
    for finger, chain in FINGER_JOINTS.items():
        for level, joint in enumerate(chain):
            if level < 2:
                bone = j[chain[level + 1]] - j[joint]
            elif tips is not None:
                bone = np.asarray(tips[tip_of[finger]], dtype=np.float64) - j[joint]
            else:
                bone = j[joint] - j[chain[level - 1]]
            b = _unit(bone)
            if finger == "thumb":
                palmar = _perp(n_palm, b)
                across = _perp(_perp(j[7] - j[joint], b) - np.dot(_perp(j[7] - j[joint], b), palmar) * palmar, b)
                if level == 0:  # CMC: flexion across the palm, abduction out of the palm plane
                    flex = _unit(np.cross(b, across))
                    abd = _unit(np.cross(b, palmar))
                else:  # MCP / IP: flexion towards the pad (palmar and across the palm)
                    toward = _unit(palmar + across)
                    flex = _unit(np.cross(b, toward))
                    sideways = hand * _unit(np.cross(b, toward))  # a true vector (mirrors like b)
                    abd = _unit(np.cross(b, sideways))
            else:
                n_b = _perp(n_palm, b)
                flex = _unit(np.cross(b, n_b))
                r_b = _perp(radial, b)
                r_b = _perp(r_b - np.dot(r_b, n_b) * n_b, b)
                abd = _unit(np.cross(b, r_b))
            # twist about hand * b so that a left hand's frames are the exact mirror of the right's
            frames[joint - 1] = np.stack([flex, abd, hand * b])
    return frames


class PoseSampler:
    """Sample (n, 45) absolute axis-angle hand poses of a given kind; the same seed gives the same poses.

    Args:
        hand_model_or_rest_joints: a :class:`~hoi_adapt.hand.model.HandModel` (uses its rest joints, tips and
            side) or rest joints (16, 3) in MANO order.
        seed: seed of the internal ``numpy.random.Generator``.
        side: 'right' / 'left'; inferred from the model or the joint geometry when None.
        tips: optional (5, 3) rest fingertips (thumb..pinky) for the last bones' directions (taken from the
            model when a model is given).
    """

    def __init__(self, hand_model_or_rest_joints: Any, seed: int = 0, side: str | None = None,
                 tips: np.ndarray | None = None) -> None:
        if hasattr(hand_model_or_rest_joints, "rest_joints16"):
            model = hand_model_or_rest_joints
            joints = model.rest_joints16.detach().cpu().double().numpy()
            tips = model.v_template[model.tip_ids].detach().cpu().double().numpy()
            side = side or model.side
        else:
            joints = np.asarray(
                hand_model_or_rest_joints.detach().cpu().numpy()
                if hasattr(hand_model_or_rest_joints, "detach") else hand_model_or_rest_joints,
                dtype=np.float64,
            )
        if joints.shape != (16, 3) or not np.all(np.isfinite(joints)):
            raise ValueError(f"rest joints must be a finite (16, 3) array in MANO order, got shape {joints.shape}")
        self.rest_joints = joints
        self.side = side or side_from_rest_joints(joints)
        self.frames = joint_frames(joints, self.side, tips)
        self.rng = np.random.default_rng(seed)
        self._low = np.stack([LIMITS[_limit_key(k)][:, 0] for k in range(1, 16)])   # (15, 3)
        self._high = np.stack([LIMITS[_limit_key(k)][:, 1] for k in range(1, 16)])

    # ----------------------------------------------------------------------------------------------
    def sample(self, n: int, kind: str = "mixed") -> np.ndarray:
        """(n, 45) absolute axis-angle poses (MANO joints 1..15, 3 values each)."""
        return self.to_axis_angle(self.sample_angles(n, kind))

    def sample_angles(self, n: int, kind: str = "mixed") -> np.ndarray:
        """(n, 15, 3) joint angles (flexion, abduction, twist) in radians, clipped to :data:`LIMITS`."""
        if kind not in KINDS:
            raise ValueError(f"unknown pose kind {kind!r}; known: {', '.join(KINDS)}")
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if kind == "mixed":
            names = list(MIX_WEIGHTS)
            p = np.array([MIX_WEIGHTS[k] for k in names])
            choice = self.rng.choice(len(names), size=n, p=p / p.sum())
            out = np.zeros((n, 15, 3))
            for idx, name in enumerate(names):
                sel = np.flatnonzero(choice == idx)
                if sel.size:
                    out[sel] = self._kind_angles(sel.size, name)
            return out
        return self._kind_angles(n, kind)

    def to_axis_angle(self, angles: np.ndarray) -> np.ndarray:
        """Map (n, 15, 3) angles to (n, 45) rotation vectors through the joint frames."""
        rot = np.einsum("njk,jkc->njc", angles, self.frames)
        return rot.reshape(angles.shape[0], 45)

    def relaxed_pose(self) -> np.ndarray:
        """The noise-free relaxed pose (45,): a slight, ulnar-increasing curl; the stand-in's ``hands_mean``."""
        return self.to_axis_angle(self._relaxed_mean()[None])[0]

    def sample_global_orient(self, n: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """Wrist orientations for this model's side; see :func:`sample_global_orient`."""
        return sample_global_orient(n, rng if rng is not None else self.rng, side=self.side)

    # ----------------------------------------------------------------------------------------------
    def _relaxed_mean(self) -> np.ndarray:
        a = np.zeros((15, 3))
        for f_idx, finger in enumerate(_FINGER_ORDER):
            j1, j2, j3 = FINGER_JOINTS[finger]
            a[j1 - 1, 0] = 0.25 + 0.07 * f_idx
            a[j2 - 1, 0] = 0.35 + 0.08 * f_idx
            a[j3 - 1, 0] = 0.22 + 0.04 * f_idx
            a[j1 - 1, 1] = 0.05 * _SPREAD_DIR[finger]
        t1, t2, t3 = FINGER_JOINTS["thumb"]
        a[t1 - 1] = (0.15, 0.30, 0.0)
        a[t2 - 1, 0] = 0.20
        a[t3 - 1, 0] = 0.25
        return a

    def _kind_angles(self, n: int, kind: str) -> np.ndarray:
        rng = self.rng
        a = np.zeros((n, 15, 3))
        u = lambda lo, hi, size=n: rng.uniform(lo, hi, size)  # noqa: E731 - local shorthand
        t1, t2, t3 = FINGER_JOINTS["thumb"]
        if kind == "open":
            spread = u(0.0, 0.6)
            for finger in _FINGER_ORDER:
                j1, j2, j3 = FINGER_JOINTS[finger]
                a[:, j1 - 1, 0] = u(-0.25, 0.25)
                a[:, j2 - 1, 0] = u(-0.05, 0.25)
                a[:, j3 - 1, 0] = u(-0.10, 0.20)
                a[:, j1 - 1, 1] = spread * 0.3 * _SPREAD_DIR[finger] + rng.normal(0, 0.04, n)
            a[:, t1 - 1] = np.stack([u(-0.35, 0.25), u(-0.25, 0.35), u(-0.2, 0.2)], -1)
            a[:, t2 - 1, 0] = u(-0.2, 0.3)
            a[:, t3 - 1, 0] = u(-0.3, 0.3)
        elif kind == "relaxed":
            a[:] = self._relaxed_mean()
            a += rng.normal(0.0, 1.0, (n, 15, 3)) * np.array([0.15, 0.04, 0.03])
        elif kind == "power":
            grip = u(0.7, 1.0)[:, None]  # how tightly the hand closes
            for f_idx, finger in enumerate(_FINGER_ORDER):
                j1, j2, j3 = FINGER_JOINTS[finger]
                a[:, j1 - 1, 0] = grip[:, 0] * (1.15 + 0.08 * f_idx) + rng.normal(0, 0.1, n)
                a[:, j2 - 1, 0] = grip[:, 0] * 1.55 + rng.normal(0, 0.12, n)
                a[:, j3 - 1, 0] = grip[:, 0] * 0.95 + rng.normal(0, 0.12, n)
            a[:, t1 - 1] = np.stack([u(0.4, 0.85), u(0.2, 0.6), u(-0.2, 0.3)], -1)
            a[:, t2 - 1, 0] = u(0.3, 0.9)
            a[:, t3 - 1, 0] = u(0.3, 1.0)
        elif kind in ("pinch", "tripod"):
            active = ("index",) if kind == "pinch" else ("index", "middle")
            closed = u(0.0, 1.0) < 0.5  # the other fingers either curl or stay extended
            for f_idx, finger in enumerate(_FINGER_ORDER):
                j1, j2, j3 = FINGER_JOINTS[finger]
                if finger in active:
                    a[:, j1 - 1, 0] = u(0.55, 0.95)
                    a[:, j2 - 1, 0] = u(0.6, 1.1)
                    a[:, j3 - 1, 0] = u(0.2, 0.6)
                    a[:, j1 - 1, 1] = -0.08 * f_idx + rng.normal(0, 0.04, n)
                else:
                    curl = np.where(closed, u(1.0, 1.5), u(0.0, 0.4))
                    a[:, j1 - 1, 0] = curl * (0.9 + 0.1 * f_idx)
                    a[:, j2 - 1, 0] = curl * 1.1
                    a[:, j3 - 1, 0] = curl * 0.7
                    a[:, j1 - 1, 1] = rng.normal(0, 0.05, n) - 0.1 * (finger == "pinky")
            a[:, t1 - 1] = np.stack([u(0.2, 0.6), u(0.4, 0.9), u(-0.2, 0.3)], -1)
            a[:, t2 - 1, 0] = u(0.1, 0.6)
            a[:, t3 - 1, 0] = u(0.1, 0.7)
        elif kind == "spread":
            spread = u(0.7, 1.0)
            for finger in _FINGER_ORDER:
                j1, j2, j3 = FINGER_JOINTS[finger]
                a[:, j1 - 1, 0] = u(-0.3, 0.15)
                a[:, j2 - 1, 0] = u(-0.05, 0.15)
                a[:, j3 - 1, 0] = u(-0.15, 0.15)
                a[:, j1 - 1, 1] = spread * 0.33 * _SPREAD_DIR[finger] + rng.normal(0, 0.03, n)
            a[:, t1 - 1] = np.stack([u(-0.4, -0.1), u(-0.2, 0.3), u(-0.2, 0.1)], -1)
            a[:, t2 - 1, 0] = u(-0.3, 0.1)
            a[:, t3 - 1, 0] = u(-0.4, 0.1)
        # small variation on every degree of freedom (keeps all PCA directions populated)
        a += rng.normal(0.0, 1.0, a.shape) * np.array([0.03, 0.015, 0.015])
        return np.clip(a, self._low, self._high)


# --------------------------------------------------------------------------------------------------
def _rodrigues(rotvec: np.ndarray) -> np.ndarray:
    theta = np.linalg.norm(rotvec, axis=-1, keepdims=True)
    k = rotvec / np.maximum(theta, 1e-12)
    kx, ky, kz = k[..., 0], k[..., 1], k[..., 2]
    zero = np.zeros_like(kx)
    K = np.stack([zero, -kz, ky, kz, zero, -kx, -ky, kx, zero], -1).reshape(*k.shape[:-1], 3, 3)
    s, c = np.sin(theta)[..., None], np.cos(theta)[..., None]
    return np.eye(3) + s * K + (1 - c) * (K @ K)


def _rotvec_from_matrix(R: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_matrix(R).as_rotvec()


def base_orient(side: str = "right") -> np.ndarray:
    """Rotation taking the canonical MANO frame to a camera view with fingers up and palm to the camera.

    Camera frame is OpenCV (x right, y down, z forward, the camera looks down +z). The hand's fingers
    (canonical -x for a right hand, +x for a left hand) point to image-up (-y), the palmar normal (-y)
    points towards the camera (-z); the right thumb then appears on the image's right.
    """
    if side == "right":
        return np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    return np.array([[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def sample_global_orient(n: int, rng: np.random.Generator, side: str = "right",
                         back_prob: float = 0.5, max_tilt: float = 0.6) -> np.ndarray:
    """(n, 3) axis-angle wrist orientations that show the hand to a camera looking down +z.

    Convention: ``R = R_roll @ R_tilt @ R_flip @ base_orient(side)`` where ``R_flip`` turns the hand by pi
    about the image's vertical axis with probability ``back_prob`` (back of the hand visible instead of the
    palm), ``R_tilt`` rotates by up to ``max_tilt`` rad about a random in-image-plane axis (out-of-plane
    tilt), and ``R_roll`` is a uniform in-plane roll about the optical axis. Vertices in the camera frame are
    ``R @ (v - wrist) + wrist + transl`` as in MANO/smplx.
    """
    R0 = base_orient(side)
    flip = rng.uniform(size=n) < back_prob
    R_flip = np.where(flip[:, None, None], np.diag([-1.0, 1.0, -1.0])[None], np.eye(3)[None])
    phi = rng.uniform(0, 2 * np.pi, n)
    tilt_axis = np.stack([np.cos(phi), np.sin(phi), np.zeros(n)], -1)
    R_tilt = _rodrigues(tilt_axis * rng.uniform(-max_tilt, max_tilt, n)[:, None])
    roll = rng.uniform(-np.pi, np.pi, n)
    R_roll = _rodrigues(np.stack([np.zeros(n), np.zeros(n), roll], -1))
    R = R_roll @ R_tilt @ R_flip @ R0
    return _rotvec_from_matrix(R)


__all__ = [
    "KINDS", "LIMITS", "MIX_WEIGHTS", "FINGER_JOINTS", "PoseSampler", "joint_frames", "side_from_rest_joints",
    "base_orient", "sample_global_orient",
]
