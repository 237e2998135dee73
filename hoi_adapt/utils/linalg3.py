"""Closed-form 3x3 inverse and solve, batched and differentiable.

``torch.linalg.inv``/``solve`` have no ONNX operator (the estimator's camera solve must export) and, for a
3x3 system at batch 1, cost more in LAPACK dispatch than the arithmetic itself. The adjugate formula is
exact algebra; for the well-conditioned systems it serves (intrinsics, the damped normal equations of the
camera solve) it agrees with LAPACK to float32 rounding.
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


def inv3(A: torch.Tensor) -> torch.Tensor:
    """Inverse of (..., 3, 3) matrices (no singularity check: callers pass invertible ones)."""
    adj, det = adjugate3(A)
    return adj / det[..., None, None]


def solve3(A: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """x with ``A x = b`` for A (..., 3, 3) and b (..., 3)."""
    adj, det = adjugate3(A)
    return (adj @ b.unsqueeze(-1)).squeeze(-1) / det[..., None]
