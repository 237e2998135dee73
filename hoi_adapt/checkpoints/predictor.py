"""Batched inference with a trained estimator or adapted pipeline (shared by predict, evaluate, export).

A :class:`Predictor` returns plain tensors per batch: the final skeleton (in the estimator's own definition, or
in the one asked for: ``hand.model.SKELETONS``), mesh, MANO parameters (axis-angle), camera translation, the estimator's hand-mask probability and, for the
adapted pipeline, the translated hand-only image and the first-pass skeleton.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from pytorch3d.transforms import matrix_to_axis_angle
from torch import nn

from hoi_adapt.checkpoints.load import load_estimator, load_pipeline, read_checkpoint
from hoi_adapt.hand.model import SKELETONS
from hoi_adapt.models.estimator import skeleton_of
from hoi_adapt.render.cameras import project
from hoi_adapt.utils.errors import CheckpointError, ConfigError


def _skeleton(out: Any, estimator: nn.Module, skeleton: str, K: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(joints3d, joints2d) of an estimate in ``skeleton``'s definition."""
    joints3d = skeleton_of(estimator, out, skeleton)
    return joints3d, (out.joints2d if joints3d is out.joints3d else project(joints3d, K))


def estimator_fields(prefix: str, out: Any, estimator: nn.Module, skeleton: str, K: torch.Tensor) -> dict[str, torch.Tensor]:
    """The per-pass output dict of a predictor from an estimate (an ``EstimatorOutput`` or anything with its fields),
    joints in ``skeleton``'s definition."""
    b = out.vertices.shape[0]
    joints3d, joints2d = _skeleton(out, estimator, skeleton, K)
    return {
        f"{prefix}joints3d": joints3d,
        f"{prefix}joints2d": joints2d,
        f"{prefix}vertices": out.vertices,
        f"{prefix}global_orient": matrix_to_axis_angle(out.global_orient),
        f"{prefix}hand_pose": matrix_to_axis_angle(out.hand_pose).reshape(b, 45),
        f"{prefix}betas": out.betas,
        f"{prefix}transl": out.transl,
        f"{prefix}mask_prob": torch.sigmoid(out.mask_logits),
    }


def first_pass_fields(out: Any, estimator: nn.Module, skeleton: str, K: torch.Tensor) -> dict[str, torch.Tensor]:
    """What an adapted predictor keeps of its first pass E(x): skeleton and hand mask (predict and export compare the
    two passes). Only these are computed: the MANO conversions of a full :func:`estimator_fields` cost ~0.5 ms a call."""
    joints3d, joints2d = _skeleton(out, estimator, skeleton, K)
    return {"first_joints3d": joints3d, "first_joints2d": joints2d, "first_mask_prob": torch.sigmoid(out.mask_logits)}


class Predictor(nn.Module):
    """Wraps an estimator (``adapt=False``) or an :class:`~hoi_adapt.models.pipeline.AdaptPipeline`.

    ``skeleton``: definition of the returned joints (None: the estimator's own, ``estimator.skeleton``); evaluation
    asks for the definition of the dataset's labels.
    """

    def __init__(self, model: nn.Module, adapt: bool, skeleton: str | None = None) -> None:
        super().__init__()
        self.model = model.eval()
        self.adapt = adapt
        self.skeleton = skeleton or self.estimator.skeleton
        if self.skeleton not in SKELETONS:
            raise ConfigError(f"unknown skeleton definition {self.skeleton!r}; known: {', '.join(SKELETONS)}")

    @property
    def estimator(self) -> nn.Module:
        return self.model.estimator if self.adapt else self.model

    @property
    def faces(self) -> torch.Tensor:
        return self.estimator.hand_model.faces

    @torch.inference_mode()
    def forward(self, image: torch.Tensor, K: torch.Tensor) -> dict[str, torch.Tensor]:
        if not self.adapt:
            return estimator_fields("", self.model(image, K), self.estimator, self.skeleton, K)
        out = self.model(image, K)
        fields = estimator_fields("", out.final, self.estimator, self.skeleton, K)
        fields.update(first_pass_fields(out.first, self.estimator, self.skeleton, K))
        fields["translated"] = out.translated
        return fields


def load_predictor(ckpt: str | Path, adapt: bool = False, mano_path: str | None = None,
                   device: str | torch.device = "cpu", skeleton: str | None = None) -> Predictor:
    """Predictor from a checkpoint; ``adapt=True`` needs an adaptation checkpoint; ``skeleton`` as in :class:`Predictor`."""
    if adapt:
        kind = read_checkpoint(ckpt)["hoi_adapt"].get("kind")
        if kind != "adapt":
            raise CheckpointError(ckpt, f"--adapt needs an adaptation checkpoint, this checkpoint's kind is {kind!r}")
        model = load_pipeline(ckpt, mano_path)
    else:
        model = load_estimator(ckpt, mano_path)
    return Predictor(model, adapt, skeleton).to(device)
