"""Mesh estimator network, its losses and stage-0 training."""
from __future__ import annotations

import pytest
import torch
from pytorch3d.transforms import axis_angle_to_matrix, matrix_to_rotation_6d, random_rotations, rotation_6d_to_matrix
from torch.utils.data import DataLoader

from hoi_adapt.data.datasets.synthetic import SyntheticHandDataset
from hoi_adapt.losses.estimator import (
    EstimatorLoss,
    EstimatorLossWeights,
    camera_joints_loss,
    gaussian_heatmaps,
    heatmap_loss,
    joints3d_loss,
    mano_param_loss,
    reprojection_loss,
    rotation_6d_conditioning,
    silhouette_loss,
)
from hoi_adapt.models.estimator import MeshEstimator, soft_argmax, solve_translation
from hoi_adapt.render.cameras import project
from hoi_adapt.utils.errors import ConfigError


def small_estimator(seed: int = 0) -> MeshEstimator:
    torch.manual_seed(seed)
    return MeshEstimator(backbone_depth=18, regressor_hidden=128, evidence_width=32)


def batch_of(world, split="source_hand", n=8, **kw):
    return next(iter(DataLoader(SyntheticHandDataset(world, split, **kw), batch_size=n)))


def test_forward_shapes_and_geometry(tiny_world):
    est = small_estimator().eval()
    b = batch_of(tiny_world, n=4)
    with torch.no_grad():
        out = est(b["image"], b["K"])
    assert out.vertices.shape == (4, 778, 3) and out.joints3d.shape == (4, 21, 3) and out.joints2d.shape == (4, 21, 2)
    assert out.heatmaps.shape[1] == 21 and out.mask_logits.shape[1] == 1
    assert out.global_orient.shape == (4, 3, 3) and out.hand_pose.shape == (4, 15, 3, 3) and len(out.iterations) == 3
    # the skeleton is regressed from the final mesh, and 2D is its projection
    torch.testing.assert_close(out.joints3d, est.hand_model.joints_from_vertices(out.vertices))
    torch.testing.assert_close(out.joints2d, project(out.joints3d, b["K"]), atol=1e-3, rtol=0)
    # rotations are proper
    det = torch.linalg.det(out.hand_pose)
    torch.testing.assert_close(det, torch.ones_like(det), atol=1e-4, rtol=0)


def test_camera_puts_wrist_where_predicted():
    est = MeshEstimator(regressor_hidden=128, evidence_width=32, camera="regress")
    K = torch.tensor([[[150.0, 0, 40.0], [0, 150.0, 30.0], [0, 0, 1]]])
    cam = torch.tensor([[0.2, -0.3, 0.5]])
    root = torch.tensor([[0.01, -0.02, 0.03]])
    t = est.camera_translation(cam, root, K, (64, 64))
    wrist = root + t
    uv = project(wrist[:, None], K)[0, 0]
    torch.testing.assert_close(uv, torch.tensor([31.5 + 0.2 * 32, 31.5 - 0.3 * 32]), atol=1e-4, rtol=0)
    expected_depth = 150.0 * est.hand_span / 64 * torch.exp(torch.tensor(0.5))
    torch.testing.assert_close(wrist[0, 2], expected_depth, atol=1e-5, rtol=0)


def test_backward_reaches_all_trainable_parts(tiny_world):
    est = small_estimator()
    b = batch_of(tiny_world, n=2)
    out = est(b["image"], b["K"])
    loss_fn = EstimatorLoss(EstimatorLossWeights(silhouette=0))
    loss, terms = loss_fn(out, b, est.hand_model.faces, est.hand_model.hands_mean)
    loss.backward()
    for name in ("backbone.stem.0.weight", "evidence_head.smooth.3.weight", "regressor.out.weight"):
        grad = dict(est.named_parameters())[name].grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name
    assert set(terms) >= {"heatmap", "keypoints", "joints3d", "camera_joints", "reprojection", "mask", "mano_params", "global_orient"}


def test_losses_zero_in_ideal_case_positive_otherwise():
    gt = torch.randn(2, 21, 3)
    valid = torch.ones(2, 21)
    assert float(joints3d_loss(gt + torch.tensor([0.1, 0.2, 0.3]), gt, valid)) < 1e-6  # root-relative
    assert float(joints3d_loss(gt * 1.1, gt, valid)) > 1e-3
    uv = torch.rand(2, 21, 2) * 60
    assert float(reprojection_loss(uv, uv, valid, 64)) == 0.0
    assert float(reprojection_loss(uv + 1, uv, valid, 64)) > 0
    # invalid joints never count
    bad = uv.clone()
    bad[:, 3] += 50
    v = valid.clone()
    v[:, 3] = 0
    assert float(reprojection_loss(bad, uv, v, 64)) == 0.0
    target = gaussian_heatmaps(uv, (16, 16), stride=4.0)
    assert float(heatmap_loss(target, uv, valid, 4.0)) < 1e-8
    assert float(heatmap_loss(torch.zeros_like(target), uv, valid, 4.0)) > 0.5
    # heatmap peak at the keypoint: uv (6,10) at stride 4 -> heatmap cell centre (1.625, 2.625)
    hm = gaussian_heatmaps(torch.tensor([[[6.0, 10.0]]]), (16, 16), stride=4.0)
    assert divmod(int(hm.flatten().argmax()), 16) in [(2, 1), (2, 2), (3, 1), (3, 2)]
    mask = (torch.rand(2, 32, 32) > 0.5).float()
    assert float(silhouette_loss(mask, mask, torch.ones(2))) == 0.0
    assert float(silhouette_loss(1 - mask, mask, torch.ones(2))) > 0.5
    ignore = torch.ones(2, 32, 32)
    assert float(silhouette_loss(1 - mask, mask, torch.ones(2), ignore=ignore)) == 0.0


def test_training_steps_reduce_loss_and_mpjpe(tiny_world):
    est = small_estimator()
    b = batch_of(tiny_world, n=8)
    loss_fn = EstimatorLoss(EstimatorLossWeights(silhouette=0))
    opt = torch.optim.Adam(est.parameters(), lr=1e-3)

    def mpjpe(out):
        rel_p = out.joints3d - out.joints3d[:, :1]
        rel_g = b["joints3d"] - b["joints3d"][:, :1]
        return float((rel_p - rel_g).norm(dim=-1).mean()) * 1000

    est.train()
    losses, errors = [], []
    for _ in range(30):
        out = est(b["image"], b["K"])
        loss, _ = loss_fn(out, b, est.hand_model.faces, est.hand_model.hands_mean)
        losses.append(float(loss))
        errors.append(mpjpe(out))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert min(losses[-5:]) < 0.5 * losses[0]
    assert min(errors[-5:]) < 0.7 * errors[0]


def test_solve_translation_recovers_the_true_translation():
    torch.manual_seed(1)
    joints = torch.randn(3, 21, 3) * 0.05  # a hand-sized point cloud around its origin
    t_true = torch.tensor([[0.02, -0.03, 0.5], [-0.1, 0.05, 0.35], [0.0, 0.0, 0.7]])
    K = torch.tensor([[200.0, 0, 31.5], [0, 210.0, 30.0], [0, 0, 1]]).expand(3, 3, 3)
    uv = project(joints + t_true[:, None], K)
    weights = torch.ones(3, 21)
    t = solve_translation(joints, uv, K, weights, depth_prior=torch.full((3,), 0.4), prior_weight=0.0)
    torch.testing.assert_close(t, t_true, atol=1e-4, rtol=0)
    # the weak depth prior moves an exact solution only slightly
    t_prior = solve_translation(joints, uv, K, weights, depth_prior=torch.full((3,), 0.4))
    assert float((t_prior - t_true).abs().max()) < 0.01
    # a joint with zero weight does not count: corrupt it and the solution stays exact
    uv_bad, w = uv.clone(), weights.clone()
    uv_bad[:, 5] += 40.0
    w[:, 5] = 0.0
    torch.testing.assert_close(solve_translation(joints, uv_bad, K, w, torch.full((3,), 0.4), 0.0), t_true, atol=1e-4, rtol=0)
    # degenerate keypoints (all on one pixel) cannot put the hand through the camera
    flat = solve_translation(joints, torch.full_like(uv, 30.0), K, weights, torch.full((3,), 0.4))
    assert bool(((joints[..., 2] + flat[:, None, 2]) > 0.1).all())


def test_soft_argmax_reads_gaussian_peaks_to_subpixel_accuracy():
    uv = torch.tensor([[[13.3, 40.7], [50.2, 9.9]]])
    hm = gaussian_heatmaps(uv, (16, 16), stride=4.0)
    found, conf = soft_argmax(hm, 4.0, beta=20.0)
    torch.testing.assert_close(found, uv, atol=0.75, rtol=0)  # under a fifth of a heatmap cell
    assert bool((conf > 0.8).all())
    _, flat_conf = soft_argmax(torch.zeros(1, 2, 16, 16), 4.0, beta=20.0)
    assert float(flat_conf.max()) == 0.0


def test_solved_camera_uses_the_heatmap_keypoints(tiny_world):
    est = small_estimator().eval()
    b = batch_of(tiny_world, n=3)
    with torch.no_grad():
        out = est(b["image"], b["K"])
        hand = est.hand_model(out.global_orient, out.hand_pose, out.betas)
        skeleton = est.hand_model.joints_from_vertices(hand.vertices)
        expected = solve_translation(skeleton, out.keypoints2d, b["K"], out.keypoint_confidence.clamp(min=0.05), est.depth_prior(b["K"], 64))
    torch.testing.assert_close(out.transl, expected)
    assert out.keypoints2d.shape == (3, 21, 2) and bool(((out.keypoints2d > -1) & (out.keypoints2d < 64)).all())
    assert bool((out.joints3d[..., 2] > 0).all())  # in front of the camera even untrained


def test_unknown_camera_mode_is_a_config_error():
    with pytest.raises(ConfigError, match="camera"):
        MeshEstimator(camera="orthographic")


def test_camera_frame_and_parameter_losses():
    gt = torch.randn(2, 21, 3) * 0.05 + torch.tensor([0.0, 0.0, 0.5])
    valid = torch.ones(2, 21)
    assert float(camera_joints_loss(gt, gt, valid)) == 0.0
    # a hand moved along the optical axis is invisible to the root-relative term but not to this one
    farther = gt + torch.tensor([0.0, 0.0, 0.1])
    assert float(joints3d_loss(farther, gt, valid)) < 1e-6
    assert float(camera_joints_loss(farther, gt, valid)) == pytest.approx(0.1, abs=1e-5)
    # parameter terms average over every refinement step and keep the global rotation separate
    pose = torch.zeros(2, 48)
    pose[:, :3] = torch.tensor([0.3, -0.2, 1.0])
    rot = axis_angle_to_matrix(pose.view(2, 16, 3))
    right = {"global_orient": rot[:, 0], "hand_pose": rot[:, 1:], "betas": torch.zeros(2, 10)}
    wrong = {**right, "global_orient": random_rotations(2)}
    has = torch.ones(2)
    params, orient = mano_param_loss([right, right], pose, torch.zeros(2, 10), has)
    assert float(params) < 1e-10 and float(orient) < 1e-10
    _, orient_mixed = mano_param_loss([wrong, right], pose, torch.zeros(2, 10), has)
    _, orient_wrong = mano_param_loss([wrong, wrong], pose, torch.zeros(2, 10), has)
    assert float(orient_mixed) == pytest.approx(float(orient_wrong) / 2, rel=1e-5)


def test_rotation_6d_conditioning_is_zero_for_orthonormal_pairs_and_pulls_degenerate_ones_back():
    torch.manual_seed(0)
    six = matrix_to_rotation_6d(random_rotations(2 * 16)).view(2, 16, 6)
    assert float(rotation_6d_conditioning([{"pose6d": six}, {"pose6d": six}])) < 1e-10
    # scaling the first vector and tilting the second towards it leave the decoded rotation as it is ...
    a1, a2 = six[..., :3], six[..., 3:]
    skewed = torch.cat([3.0 * a1, 0.05 * a2 + 0.9 * a1], -1).requires_grad_(True)
    torch.testing.assert_close(rotation_6d_to_matrix(skewed), rotation_6d_to_matrix(six), atol=1e-4, rtol=0)
    # ... but the gradient through Gram-Schmidt grows as the second vector's orthogonal part shrinks; the term is
    # positive there, and a gradient step on it makes the pair better conditioned
    penalty = rotation_6d_conditioning([{"pose6d": skewed}])
    assert float(penalty) > 1.0
    penalty.backward()
    with torch.no_grad():
        stepped = skewed - 0.01 * skewed.grad
    assert float(rotation_6d_conditioning([{"pose6d": stepped}])) < float(penalty)
    # the estimator reports the pairs it decoded, and the loss adds the term only when weighted
    est = small_estimator().eval()
    with torch.no_grad():
        out = est(torch.rand(2, 3, 64, 64), torch.tensor([[100.0, 0, 32], [0, 100.0, 32], [0, 0, 1]]).expand(2, 3, 3))
    for it in out.iterations:
        torch.testing.assert_close(rotation_6d_to_matrix(it["pose6d"]), torch.cat([it["global_orient"][:, None], it["hand_pose"]], 1))
    assert EstimatorLossWeights().rotation_6d == 0.0


def test_one_cycle_factor_is_onecycle_lr_without_a_fixed_length():
    from hoi_adapt.lit.estimator_module import one_cycle_factor

    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([param], lr=2e-3)
    reference = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=50, pct_start=0.1)
    for step in range(50):
        assert opt.param_groups[0]["lr"] / 2e-3 == pytest.approx(one_cycle_factor(step, 50, 0.1), abs=1e-9)
        opt.step()
        if step < 49:
            reference.step()
    # past the end (a run resumed with a larger max_steps before its schedule is re-laid) it stays at the floor
    assert one_cycle_factor(80, 50, 0.1) == pytest.approx(one_cycle_factor(49, 50, 0.1))
