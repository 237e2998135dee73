"""Mesh estimator network, its losses and stage-0 training."""
from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from hoi_adapt.losses.estimator import (
    EstimatorLoss,
    EstimatorLossWeights,
    gaussian_heatmaps,
    heatmap_loss,
    joints3d_loss,
    reprojection_loss,
    silhouette_loss,
)
from hoi_adapt.models.estimator import MeshEstimator
from hoi_adapt.render.cameras import project
from hoi_adapt.synth.dataset import SyntheticHandDataset


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
    est = small_estimator()
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
    assert set(terms) >= {"heatmap", "joints3d", "reprojection", "mask", "mano_params"}


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
