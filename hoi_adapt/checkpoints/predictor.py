"""Batched inference with a trained estimator or adapted pipeline (shared by predict, evaluate, export).

A :class:`Predictor` returns plain tensors per batch: the final skeleton (regressed from the final mesh),
mesh, MANO parameters (axis-angle), camera translation, the estimator's hand-mask probability and, for the
adapted pipeline, the translated hand-only image and the first-pass skeleton.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from pytorch3d.transforms import matrix_to_axis_angle
from torch import nn

from hoi_adapt.checkpoints.load import load_estimator, load_pipeline, read_checkpoint
from hoi_adapt.utils.errors import CheckpointError


def _estimator_fields(prefix: str, out: Any) -> dict[str, torch.Tensor]:
    b = out.vertices.shape[0]
    return {
        f"{prefix}joints3d": out.joints3d,
        f"{prefix}joints2d": out.joints2d,
        f"{prefix}vertices": out.vertices,
        f"{prefix}global_orient": matrix_to_axis_angle(out.global_orient),
        f"{prefix}hand_pose": matrix_to_axis_angle(out.hand_pose).reshape(b, 45),
        f"{prefix}betas": out.betas,
        f"{prefix}transl": out.transl,
        f"{prefix}mask_prob": torch.sigmoid(out.mask_logits),
    }


class Predictor(nn.Module):
    """Wraps an estimator (``adapt=False``) or an :class:`~hoi_adapt.models.pipeline.AdaptPipeline`."""

    def __init__(self, model: nn.Module, adapt: bool) -> None:
        super().__init__()
        self.model = model.eval()
        self.adapt = adapt

    @property
    def estimator(self) -> nn.Module:
        return self.model.estimator if self.adapt else self.model

    @property
    def faces(self) -> torch.Tensor:
        return self.estimator.hand_model.faces

    @torch.inference_mode()
    def forward(self, image: torch.Tensor, K: torch.Tensor) -> dict[str, torch.Tensor]:
        if not self.adapt:
            return _estimator_fields("", self.model(image, K))
        out = self.model(image, K)
        fields = _estimator_fields("", out.final)
        fields.update({k: v for k, v in _estimator_fields("first_", out.first).items() if k in ("first_joints3d", "first_joints2d", "first_mask_prob")})
        fields["translated"] = out.translated
        return fields


def load_predictor(ckpt: str | Path, adapt: bool = False, mano_path: str | None = None,
                   device: str | torch.device = "cpu") -> Predictor:
    """Predictor from a checkpoint; ``adapt=True`` needs an adaptation checkpoint."""
    if adapt:
        kind = read_checkpoint(ckpt)["hoi_adapt"].get("kind")
        if kind != "adapt":
            raise CheckpointError(ckpt, f"--adapt needs an adaptation checkpoint, this checkpoint's kind is {kind!r}")
        model = load_pipeline(ckpt, mano_path)
    else:
        model = load_estimator(ckpt, mano_path)
    return Predictor(model, adapt).to(device)
