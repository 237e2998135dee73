"""HandModel: smplx LBS on the stand-in, pose spaces, joint orders, mirroring, the left-shapedirs fix."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hoi_adapt.hand import joint_maps
from hoi_adapt.hand.mano_file import write_mano_npz
from hoi_adapt.hand.model import HandModel, HandOutput, left_shapedirs_fix
from hoi_adapt.hand.pose_sampler import PoseSampler, joint_frames
from hoi_adapt.hand.standin import build_standin, mirror_model
from hoi_adapt.utils.errors import ConfigError, ModelFileError
from hoi_adapt.utils.mesh import signed_volume

MIRROR_POSE = torch.tensor([1.0, -1.0, -1.0]).repeat(16)  # axis-angle (x, y, z) -> (x, -y, -z) per joint
MIRROR_XYZ = torch.tensor([-1.0, 1.0, 1.0])


@pytest.fixture(scope="module")
def right() -> HandModel:
    return HandModel(dtype=torch.float64)


@pytest.fixture(scope="module")
def left() -> HandModel:
    return HandModel(side="left", dtype=torch.float64)


def _random_pose(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, 3, generator=g, dtype=torch.float64) * 0.8,
            torch.randn(n, 45, generator=g, dtype=torch.float64) * 0.4,
            torch.randn(n, 10, generator=g, dtype=torch.float64))


def test_shapes_and_buffers(right):
    go, hp, betas = _random_pose(3)
    out = right(go, hp, betas, torch.zeros(3, 3, dtype=torch.float64))
    assert isinstance(out, HandOutput)
    assert out.vertices.shape == (3, 778, 3) and out.joints16.shape == (3, 16, 3) and out.joints.shape == (3, 21, 3)
    assert right.faces.shape == (1538, 3) and right.faces.dtype == torch.long
    assert right.hands_mean.shape == (45,) and right.hands_components.shape == (45, 45)
    assert right.rest_joints16.shape == (16, 3)
    assert right.is_standin and right.source_path.name == "STANDIN_MANO_RIGHT.npz"
    assert signed_volume(right.v_template.numpy(), right.faces.numpy()) > 0


def test_zero_pose_gives_template(right):
    z = torch.zeros(2, 3, dtype=torch.float64)
    out = right(z, torch.zeros(2, 45, dtype=torch.float64))
    torch.testing.assert_close(out.vertices, right.v_template.expand(2, -1, -1), rtol=0, atol=1e-12)
    torch.testing.assert_close(out.joints16[0], right.J_regressor @ right.v_template, rtol=0, atol=1e-12)
    torch.testing.assert_close(out.joints16[0], right.rest_joints16, rtol=0, atol=1e-12)
    t = torch.tensor([[0.1, -0.2, 0.5], [0.0, 0.0, 1.0]], dtype=torch.float64)
    moved = right(z, torch.zeros(2, 45, dtype=torch.float64), transl=t)
    torch.testing.assert_close(moved.vertices, out.vertices + t[:, None], rtol=0, atol=1e-12)
    torch.testing.assert_close(moved.joints, out.joints + t[:, None], rtol=0, atol=1e-12)


def test_shape_changes_joints_consistently(right):
    betas = torch.zeros(1, 10, dtype=torch.float64)
    betas[0, 0] = 2.0
    out = right(torch.zeros(1, 3, dtype=torch.float64), torch.zeros(1, 45, dtype=torch.float64), betas)
    shaped = right.v_template + right.shapedirs @ betas[0]
    torch.testing.assert_close(out.vertices[0], shaped, rtol=0, atol=1e-12)
    torch.testing.assert_close(out.joints16[0], right.J_regressor @ shaped, rtol=0, atol=1e-12)
    assert torch.linalg.norm(out.joints16[0, 6] - out.joints16[0, 0]) > torch.linalg.norm(right.rest_joints16[6] - right.rest_joints16[0]) * 1.08


@pytest.mark.parametrize("preset", ["smplx", "freihand", "ho3d", "manopth", "mks0601"])
def test_tips_are_the_preset_vertices(preset):
    m = HandModel(tip_preset=preset, dtype=torch.float64)
    go, hp, betas = _random_pose(2, seed=1)
    out = m(go, hp, betas)
    tips = joint_maps.TIP_VERTEX_PRESETS[preset]
    torch.testing.assert_close(out.joints[:, list(joint_maps.OPENPOSE_TIPS)], out.vertices[:, list(tips)], rtol=0, atol=0)
    mano_to_op = joint_maps.TO_OPENPOSE["mano"]
    for op in range(21):
        src = mano_to_op[op]
        expect = out.joints16[:, src] if src < 16 else out.vertices[:, tips[src - 16]]
        torch.testing.assert_close(out.joints[:, op], expect, rtol=0, atol=0)


def test_joint_orders_round_trip(right):
    # the MANO -> OpenPose tables exactly as in datasets.md §0
    assert joint_maps.TO_OPENPOSE["mano"] == (0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20)
    assert joint_maps.from_openpose_index("mano").tolist() == [0, 5, 6, 7, 9, 10, 11, 17, 18, 19, 13, 14, 15, 1, 2, 3, 4, 8, 12, 16, 20]
    go, hp, betas = _random_pose(2, seed=2)
    ref = right(go, hp, betas).joints
    for order in ("mano", "stb", "rhd", "interhand", "freihand"):
        m = HandModel(joint_order=order, dtype=torch.float64)
        j = m(go, hp, betas).joints
        torch.testing.assert_close(joint_maps.convert(j, order, "openpose"), ref, rtol=0, atol=0)
        torch.testing.assert_close(joint_maps.convert(ref, "openpose", order), j, rtol=0, atol=0)
    for a in ("openpose", "mano", "stb", "rhd"):
        for b in ("openpose", "mano", "stb", "rhd"):
            back = joint_maps.convert(joint_maps.convert(ref, "openpose", a), a, b)
            torch.testing.assert_close(joint_maps.convert(back, b, "openpose"), ref, rtol=0, atol=0)
    # semantics: OpenPose 5 = index MCP = MANO index1; OpenPose 1 = thumb CMC = MANO thumb1; 17 = pinky1
    out = right(go, hp, betas)
    for op_idx, mano_idx in ((0, 0), (1, 13), (5, 1), (9, 4), (13, 10), (17, 7), (19, 9)):
        torch.testing.assert_close(out.joints[:, op_idx], out.joints16[:, mano_idx], rtol=0, atol=0)


def test_left_is_the_mirror_of_right(right, left):
    go, hp, betas = _random_pose(3, seed=3)
    t = torch.tensor([[0.01, 0.02, 0.5]] * 3, dtype=torch.float64)
    full = torch.cat([go, hp], 1)
    mirrored = full * MIRROR_POSE.double()
    r = right(go, hp, betas, t)
    lo = left(mirrored[:, :3], mirrored[:, 3:], betas, t * MIRROR_XYZ.double())
    # 1e-8: smplx's batch_rodrigues adds 1e-8 to each axis-angle component before taking the norm
    torch.testing.assert_close(lo.vertices, r.vertices * MIRROR_XYZ.double(), rtol=0, atol=1e-8)
    torch.testing.assert_close(lo.joints, r.joints * MIRROR_XYZ.double(), rtol=0, atol=1e-8)
    torch.testing.assert_close(left.faces, right.faces[:, [0, 2, 1]])
    assert signed_volume(lo.vertices[0].numpy(), left.faces.numpy()) > 0


def test_pca_with_all_components_equals_axis_angle(right):
    go, hp, betas = _random_pose(2, seed=4)
    coeffs = hp
    for flat in (True, False):
        pca = HandModel(pose_space="pca", num_pca_comps=45, flat_hand_mean=flat, dtype=torch.float64)
        aa = HandModel(flat_hand_mean=flat, dtype=torch.float64)
        pose = coeffs @ pca.hands_components
        torch.testing.assert_close(pca(go, coeffs, betas).vertices, aa(go, pose, betas).vertices, rtol=0, atol=1e-12)
    few = HandModel(pose_space="pca", num_pca_comps=6, dtype=torch.float64)
    torch.testing.assert_close(few.pose_to_axis_angle(coeffs[:, :6]), coeffs[:, :6] @ few.hands_components[:6])
    with pytest.raises(ValueError, match=r"\(B, 6\)"):
        few(go, coeffs)


def test_flat_hand_mean_adds_exactly_the_mean(right):
    go, hp, betas = _random_pose(2, seed=5)
    mean_model = HandModel(flat_hand_mean=False, dtype=torch.float64)
    diff = mean_model.full_pose_axis_angle(go, hp) - right.full_pose_axis_angle(go, hp)
    torch.testing.assert_close(diff[:, 3:], right.hands_mean.expand(2, -1), rtol=0, atol=1e-15)
    assert diff[:, :3].abs().max() == 0
    torch.testing.assert_close(mean_model(go, hp, betas).vertices, right(go, hp + right.hands_mean, betas).vertices,
                               rtol=0, atol=1e-12)
    assert (mean_model(go, hp).vertices - right(go, hp).vertices).abs().max() > 1e-3
    with pytest.raises(ConfigError):
        HandModel(flat_hand_mean=None)  # type: ignore[arg-type]


def test_rotation_matrix_input(right):
    from smplx.lbs import batch_rodrigues

    go, hp, betas = _random_pose(2, seed=6)
    hp = hp * 0.5
    R_g = batch_rodrigues(go)
    R_h = batch_rodrigues(hp.reshape(-1, 3)).reshape(2, 15, 3, 3)
    a, b = right(go, hp, betas), right(R_g, R_h, betas)
    torch.testing.assert_close(a.vertices, b.vertices, rtol=0, atol=1e-10)
    torch.testing.assert_close(right.full_pose_axis_angle(R_g, R_h), right.full_pose_axis_angle(go, hp), rtol=0, atol=1e-7)


def test_gradients_and_dtypes():
    m = HandModel()
    go = torch.zeros(1, 3, requires_grad=True)
    hp = (torch.ones(1, 45) * 0.1).requires_grad_()
    betas = torch.zeros(1, 10, requires_grad=True)
    out = m(go, hp, betas)
    assert out.vertices.dtype == torch.float32
    out.joints.square().sum().backward()
    for p in (go, hp, betas):
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
    out64 = m(go.double(), hp.double())  # inputs are cast to the model's dtype
    assert out64.vertices.dtype == torch.float32


def test_flexion_directions(right, left):
    """+flexion bends towards the palm (-y); thumb flexion goes towards the palm and the pinky side."""
    zero = torch.zeros(1, 3, dtype=torch.float64)
    rest = right(zero, torch.zeros(1, 45, dtype=torch.float64))
    tips_rest = rest.joints[0, list(joint_maps.OPENPOSE_TIPS)]
    # raw MANO convention: a positive rotation about +z at index2 curls the right index (about -z for the left)
    for model, sign in ((right, 1.0), (left, -1.0)):
        hp = torch.zeros(1, 45, dtype=torch.float64)
        hp[0, 3 * 1 + 2] = sign * 1.0  # joint 2 = index PIP, z component
        tip = model(zero, hp).joints[0, 8]
        tip0 = model(zero, torch.zeros(1, 45, dtype=torch.float64)).joints[0, 8]
        assert tip[1] < tip0[1] - 0.012  # towards the palm side (-y)
    frames = torch.as_tensor(joint_frames(right.rest_joints16.numpy(), "right"))
    assert frames[1, 0, 2] > 0.95 and frames[1, 0] @ torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64) > 0.95
    for joint, op_tip in ((2, 8), (5, 12), (11, 16), (8, 20)):
        hp = torch.zeros(1, 45, dtype=torch.float64)
        hp[0, 3 * (joint - 1): 3 * joint] = 0.9 * frames[joint - 1, 0]
        assert right(zero, hp).joints[0, op_tip, 1] < tips_rest[op_tip // 4 - 1, 1] - 0.01
    J = right.rest_joints16
    palmar = torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64)
    toward_pinky = J[7] - J[13]
    for joint in (13, 14, 15):  # CMC flexion runs across the palm; MCP / IP flexion also towards the palm
        hp = torch.zeros(1, 45, dtype=torch.float64)
        hp[0, 3 * (joint - 1): 3 * joint] = 0.7 * frames[joint - 1, 0]
        move = right(zero, hp).joints[0, 4] - tips_rest[0]
        assert move @ toward_pinky / toward_pinky.norm() > 0.005, joint
        assert move @ palmar > (-0.002 if joint == 13 else 0.003), joint
    # CMC palmar abduction moves the thumb out of the palm plane, to the palmar side
    hp = torch.zeros(1, 45, dtype=torch.float64)
    hp[0, 36:39] = 0.7 * frames[12, 1]
    assert (right(zero, hp).joints[0, 4] - tips_rest[0]) @ palmar > 0.02


def test_left_shapedirs_fix_with_a_fabricated_pair(tmp_path):
    r = {k: v for k, v in build_standin("right").items() if k != "standin_notice"}
    good_left = mirror_model(r)
    buggy = dict(good_left, shapedirs=good_left["shapedirs"].copy())
    buggy["shapedirs"][:, 0, :] = r["shapedirs"][:, 0, :]  # the official file's bug: x copied from the right hand
    buggy["f"] = r["f"]  # the official left file reuses the right faces -> inward winding
    for name, arrays in (("bug", buggy), ("good", good_left)):
        (tmp_path / name).mkdir()
        write_mano_npz(r, tmp_path / name / "MANO_RIGHT.npz")
        write_mano_npz(arrays, tmp_path / name / "MANO_LEFT.npz")
    fixed = HandModel(tmp_path / "bug", side="left")
    assert fixed.shapedirs_fix == "applied" and not fixed.is_standin
    np.testing.assert_allclose(fixed.shapedirs[:, 0].double().numpy(), -r["shapedirs"][:, 0], atol=1e-7)
    assert signed_volume(fixed.v_template.numpy(), fixed.faces.numpy()) > 0  # winding flipped outward
    kept = HandModel(tmp_path / "bug", side="left", fix_left_shapedirs=False)
    np.testing.assert_allclose(kept.shapedirs[:, 0].double().numpy(), r["shapedirs"][:, 0], atol=1e-7)
    good = HandModel(tmp_path / "good", side="left")
    assert good.shapedirs_fix == "not needed"
    np.testing.assert_allclose(good.shapedirs.double().numpy(), good_left["shapedirs"], atol=1e-7)
    out, applied = left_shapedirs_fix(good_left["shapedirs"], r["shapedirs"])
    assert not applied and out is good_left["shapedirs"]
    alone = tmp_path / "alone"
    alone.mkdir()
    write_mano_npz(buggy, alone / "MANO_LEFT.npz")
    with pytest.warns(UserWarning, match="right-hand file"):
        lone = HandModel(alone, side="left")
    assert lone.shapedirs_fix.startswith("not checked")


def test_model_path_forms_and_errors(tmp_path):
    r = build_standin("right")
    write_mano_npz(r, tmp_path / "MANO_RIGHT.npz")
    assert HandModel(tmp_path).source_path == tmp_path / "MANO_RIGHT.npz"
    assert HandModel(tmp_path / "MANO_RIGHT.npz").is_standin
    with pytest.raises(ConfigError, match="right hand model but side='left'"):
        HandModel(tmp_path / "MANO_RIGHT.npz", side="left")
    write_mano_npz(r, tmp_path / "hand.npz")
    with pytest.raises(ConfigError, match="by its geometry"):
        HandModel(tmp_path / "hand.npz", side="left")
    with pytest.raises(ModelFileError, match="MANO_LEFT"):
        HandModel(tmp_path, side="left")
    with pytest.raises(ModelFileError, match="file not found"):
        HandModel(tmp_path / "nothing.pkl")
    for kwargs in ({"pose_space": "euler"}, {"num_pca_comps": 0}, {"tip_preset": "nope"}, {"joint_order": "nope"},
                   {"side": "both"}):
        with pytest.raises(ConfigError):
            HandModel(**kwargs)
    m = HandModel()
    with pytest.raises(ValueError, match="global_orient"):
        m(torch.zeros(1, 4), torch.zeros(1, 45))
    with pytest.raises(ValueError, match="hand_pose"):
        m(torch.zeros(1, 3), torch.zeros(1, 44))
    with pytest.raises(ValueError, match="batch sizes"):
        m(torch.zeros(2, 3), torch.zeros(1, 45))


@pytest.mark.parametrize("side", ["right", "left"])
def test_smplx_mano_reads_the_standin_pkl_unchanged(side, capsys):
    """smplx's own MANO class (plain pickle.load) drives the stand-in .pkl to the same mesh."""
    import smplx

    from hoi_adapt.hand.standin import ensure_standin_files

    pkl = ensure_standin_files()[side]
    ref = smplx.MANO(str(pkl), is_rhand=side == "right", use_pca=False, flat_hand_mean=True, dtype=torch.float64)
    ours = HandModel(side=side, dtype=torch.float64)
    go, hp, betas = _random_pose(2, seed=8)
    a = ref(global_orient=go, hand_pose=hp, betas=betas)
    b = ours(go, hp, betas)
    # 1e-7: smplx rounds the model arrays through float32 (smplx.utils.to_np) even for dtype=float64
    torch.testing.assert_close(b.vertices, a.vertices, rtol=0, atol=1e-7)
    torch.testing.assert_close(b.joints16, a.joints, rtol=0, atol=1e-7)


def test_sampler_poses_stay_plausible(right):
    """Sampled poses keep the mesh closed and roughly volume-preserving (skinning does not collapse)."""
    sampler = PoseSampler(right, seed=7)
    poses = torch.as_tensor(np.concatenate([sampler.sample(4, k) for k in ("relaxed", "pinch", "power", "spread")]))
    out = right(torch.zeros(len(poses), 3, dtype=torch.float64), poses)
    rest = signed_volume(right.v_template.numpy(), right.faces.numpy())
    for v in out.vertices.numpy():
        assert 0.9 * rest < signed_volume(v, right.faces.numpy()) < 1.05 * rest
    edges = right.faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
    rest_len = (right.v_template[edges[:, 0]] - right.v_template[edges[:, 1]]).norm(dim=1)
    posed_len = (out.vertices[:, edges[:, 0]] - out.vertices[:, edges[:, 1]]).norm(dim=2)
    assert (posed_len / rest_len).max() < 3.0  # no tearing (the worst edges are at the finger webs)
    assert (posed_len / rest_len).median() == pytest.approx(1.0, abs=0.05)
