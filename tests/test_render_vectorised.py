"""The vectorised hand renderer and the closed-form 3x3 algebra reproduce PyTorch3D and LAPACK."""
from __future__ import annotations

import pytest
import torch

from hoi_adapt.hand.model import HandModel
from hoi_adapt.models.pipeline import MeshGuidance
from hoi_adapt.render.renderer import HandObjectRenderer
from hoi_adapt.render.shading import Lighting
from hoi_adapt.render.vectorised import render_hand, supports
from hoi_adapt.utils.linalg3 import inv3, solve3


def _posed_hands(batch: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stand-in hands in random poses and places in front of a 64-px camera, with their faces and K."""
    g = torch.Generator().manual_seed(seed)
    hand = HandModel()
    orient = torch.randn(batch, 3, generator=g)
    pose = 0.3 * torch.randn(batch, 45, generator=g)
    transl = torch.cat([0.04 * torch.randn(batch, 2, generator=g), 0.45 + 0.2 * torch.rand(batch, 1, generator=g)], 1)
    verts = hand(orient, pose, transl=transl).vertices
    K = torch.tensor([[140.0, 0, 31.5], [0, 140.0, 31.5], [0, 0, 1]]).expand(batch, 3, 3)
    return verts, hand.faces, K


@pytest.mark.parametrize("size", [32, 64])
def test_vectorised_render_matches_pytorch3d(size: int) -> None:
    verts, faces, K = _posed_hands()
    K = K.clone()
    K[:, :2] *= size / 64
    ref = HandObjectRenderer(image_size=(size, size), faces_per_pixel=1)(verts, faces, K, hand_colors=torch.ones(3))
    out = render_hand(verts, faces, K, (size, size), Lighting())
    covered = ref.hand_alpha > 0
    assert covered.sum() > 200 * len(verts) * (size / 64) ** 2  # the hands are on screen
    # A pixel centre within float rounding of an edge may go to the other face (or off the hand): measured 1 pixel
    # in 471k on the demo world at 128 px, none here.
    assert (out["alpha"] != ref.hand_alpha).sum() <= 2
    both = covered & (out["alpha"] > 0)
    assert ((out["depth"] - ref.hand_depth)[both].abs() > 1e-5).sum() <= 2
    assert ((out["image"] - ref.hand_image)[both].abs() > 1e-3).sum() <= 2  # specular ** 24 amplifies float noise
    assert (out["depth"] - ref.hand_depth)[both].abs().median() < 1e-6
    assert out["image"][~covered].abs().max() == 0 and out["depth"][~covered].abs().max() == 0


def test_mesh_guidance_backends_agree() -> None:
    verts, faces, K = _posed_hands(3, seed=1)
    K = K.clone()
    K[:, :2] *= 2  # a 128-px image, guidance at 64
    image = torch.rand(3, 3, 128, 128)
    skin = torch.rand(3, 1, 32, 32)
    fast, slow = MeshGuidance(guidance_size=64), MeshGuidance(guidance_size=64, backend="pytorch3d")
    a, b = fast(verts, faces, K, image, skin), slow(verts, faces, K, image, skin)
    for key in ("silhouette", "depth", "shaded"):  # bilinear upsampling spreads an edge flip over <= 16 pixels
        assert ((a[key] - b[key]).abs() > 1e-3).sum() <= 16, key
    assert supports(Lighting()) and not supports(Lighting(kind="directional"))


def test_closed_form_3x3_equals_lapack() -> None:
    g = torch.Generator().manual_seed(0)
    A = torch.randn(64, 3, 3, generator=g) + 3 * torch.eye(3)
    b = torch.randn(64, 3, generator=g)
    torch.testing.assert_close(inv3(A), torch.linalg.inv(A), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(solve3(A, b), torch.linalg.solve(A, b), atol=1e-5, rtol=1e-5)
    A64 = A.double().requires_grad_()
    assert torch.autograd.gradcheck(lambda m: solve3(m, b.double()), (A64,))


def test_estimator_camera_solve_agrees_with_lapack(monkeypatch: pytest.MonkeyPatch) -> None:
    """The estimator with the closed-form 3x3 algebra against the same forward with torch.linalg (the old path)."""
    import hoi_adapt.models.estimator as est_mod
    from hoi_adapt.deploy.graphs import example_intrinsics

    torch.manual_seed(0)
    est = est_mod.MeshEstimator(regressor_hidden=64, evidence_width=16).eval()
    with torch.no_grad():
        torch.nn.init.normal_(est.regressor.out.weight, std=0.01)  # image-dependent poses and keypoints
        image, K = torch.rand(4, 3, 64, 64), example_intrinsics(64, 4)
        new = est(image, K)
        monkeypatch.setattr(est_mod, "inv3", torch.linalg.inv)
        monkeypatch.setattr(est_mod, "solve3", lambda A, b: torch.linalg.solve(A, b.unsqueeze(-1)).squeeze(-1))
        old = est(image, K)
    torch.testing.assert_close(new.transl, old.transl, atol=1e-6, rtol=0)
    torch.testing.assert_close(new.joints2d, old.joints2d, atol=1e-3, rtol=0)
