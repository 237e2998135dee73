"""3x3 inverse and solve for the camera solve: LAPACK in PyTorch, a closed form inside an ONNX export.

``torch.linalg.inv``/``solve`` have no ONNX operator, and the estimator's camera solve must export. The
adjugate formula is exact algebra and exports, but without pivoting its float32 rounding differs from
LAPACK's by up to ~1e-4 px in the solved joints; so PyTorch keeps LAPACK (training, evaluation and predict
are unchanged) and only the traced ONNX graph uses the closed form (``export-onnx`` checks the two agree).
"""
from __future__ import annotations

import torch


def adjugate3(A: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(adj(A), det(A)) of (..., 3, 3) matrices: ``A @ adj(A) = det(A) * I``."""
    a, b, c = A[..., 0, 0], A[..., 0, 1], A[..., 0, 2]
    d, e, f = A[..., 1, 0], A[..., 1, 1], A[..., 1, 2]
    g, h, i = A[..., 2, 0], A[..., 2, 1], A[..., 2, 2]
    c00, c01, c02 = e * i - f * h, f * g - d * i, d * h - e * g  # cofactors of row 0
    adj = torch.stack([
        torch.stack([c00, c * h - b * i, b * f - c * e], -1),
        torch.stack([c01, a * i - c * g, c * d - a * f], -1),
        torch.stack([c02, b * g - a * h, a * e - b * d], -1),
    ], -2)
    return adj, a * c00 + b * c01 + c * c02


def inv3_closed(A: torch.Tensor) -> torch.Tensor:
    """Inverse of (..., 3, 3) matrices by the adjugate (no singularity check: callers pass invertible ones)."""
    adj, det = adjugate3(A)
    return adj / det[..., None, None]


def solve3_closed(A: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """x with ``A x = b`` for A (..., 3, 3) and b (..., 3), by the adjugate."""
    adj, det = adjugate3(A)
    return (adj @ b.unsqueeze(-1)).squeeze(-1) / det[..., None]


def inv3(A: torch.Tensor) -> torch.Tensor:
    """Inverse of (..., 3, 3) matrices: LAPACK, or the closed form while tracing an ONNX export."""
    return inv3_closed(A) if torch.onnx.is_in_onnx_export() else torch.linalg.inv(A)


def solve3(A: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """x with ``A x = b`` for A (..., 3, 3) and b (..., 3): LAPACK, or the closed form while tracing an ONNX export."""
    if torch.onnx.is_in_onnx_export():
        return solve3_closed(A, b)
    return torch.linalg.solve(A, b.unsqueeze(-1)).squeeze(-1)
