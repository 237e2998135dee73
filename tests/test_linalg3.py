"""The closed-form 3x3 algebra of the camera solve (exportable to ONNX) reproduces LAPACK."""
from __future__ import annotations

import pytest
import torch

from hoi_adapt.utils.linalg3 import inv3_closed, solve3_closed


def test_closed_form_3x3_equals_lapack() -> None:
    g = torch.Generator().manual_seed(0)
    A = torch.randn(64, 3, 3, generator=g) + 3 * torch.eye(3)
    b = torch.randn(64, 3, generator=g)
    torch.testing.assert_close(inv3_closed(A), torch.linalg.inv(A), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(solve3_closed(A, b), torch.linalg.solve(A, b), atol=1e-5, rtol=1e-5)
    A64 = A.double().requires_grad_()
    assert torch.autograd.gradcheck(lambda m: solve3_closed(m, b.double()), (A64,))


def test_estimator_camera_solve_agrees_with_lapack(monkeypatch: pytest.MonkeyPatch) -> None:
    """The estimator with the closed-form 3x3 algebra (the exported graph's) against its PyTorch forward (LAPACK)."""
    import hoi_adapt.models.estimator as est_mod
    import hoi_adapt.render.cameras as cameras
    from hoi_adapt.deploy.graphs import example_intrinsics

    torch.manual_seed(0)
    est = est_mod.MeshEstimator(regressor_hidden=64, evidence_width=16).eval()
    with torch.no_grad():
        torch.nn.init.normal_(est.regressor.out.weight, std=0.01)  # image-dependent poses and keypoints
        image, K = torch.rand(4, 3, 64, 64), example_intrinsics(64, 4)
        new = est(image, K)
        monkeypatch.setattr(cameras, "inv3", inv3_closed)  # what an ONNX export traces (backproject's rays)
        monkeypatch.setattr(est_mod, "solve3", solve3_closed)
        old = est(image, K)
    torch.testing.assert_close(new.transl, old.transl, atol=1e-6, rtol=0)
    torch.testing.assert_close(new.joints2d, old.joints2d, atol=1e-3, rtol=0)
