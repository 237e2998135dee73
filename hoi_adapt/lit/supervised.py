"""What both LightningModules do with the estimator E outside the adaptation itself, written once.

Stage 0 exists twice by design (``EstimatorModule`` as its own run, ``AdaptModule``'s ``stage0`` phase), and E
starts from another run's checkpoint in both (``init_ckpt``, ``estimator_ckpt``). Sharing these functions
keeps the two from drifting: the same loss construction, the same merged-batch step, the same start rule.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import pytorch_lightning as pl
import torch

from hoi_adapt.checkpoints.load import init_estimator_checked
from hoi_adapt.lit import hparams
from hoi_adapt.lit.batching import concat_batches
from hoi_adapt.losses.estimator import EstimatorLoss, EstimatorLossWeights
from hoi_adapt.models.estimator import MeshEstimator
from hoi_adapt.render.renderer import HandObjectRenderer


class SupervisedStep(NamedTuple):
    loss: torch.Tensor
    terms: dict[str, torch.Tensor]
    batch_size: int


def make_estimator_loss(weights: EstimatorLossWeights | None, silhouette_size: int,
                        silhouette_sigma: float = 1e-4) -> EstimatorLoss:
    """E's loss with its silhouette renderer (the loss has no weights or buffers: no checkpoint keys)."""
    renderer = HandObjectRenderer(image_size=(silhouette_size, silhouette_size), sigma=silhouette_sigma)
    return EstimatorLoss(weights, renderer=renderer, silhouette_size=silhouette_size)


def supervised_step(estimator: MeshEstimator, estimator_loss: EstimatorLoss,
                    streams: Mapping[str, dict[str, Any]]) -> SupervisedStep:
    """E's supervised loss on the given streams merged into one batch (one forward pass, one loss).

    Stage 0 in either module: the streams' order is the batch order, and labels missing in a stream are
    masked by the loss's ``has_*`` flags.
    """
    batch = concat_batches(list(streams.values()))
    out = estimator(batch["image"], batch["K"])
    hm = estimator.hand_model
    loss, terms = estimator_loss(out, batch, hm.faces, hm.hands_mean)
    return SupervisedStep(loss, terms, batch["image"].shape[0])


def init_estimator_on_fresh_start(module: pl.LightningModule, path: str | None) -> None:
    """Start ``module.estimator`` from checkpoint ``path`` when the run starts fresh; call from ``on_fit_start``.

    Lightning has restored a resumed run's checkpoint by then (``trainer.ckpt_path``), and that E is the one to
    continue: the initial checkpoint is not read again (it may have moved or changed since). A fresh start
    checks the checkpoint's hand model, joints and input size against this run before copying the weights.
    (Strategies that restore only after ``on_fit_start``, FSDP and DeepSpeed, are not used by hoi_adapt.)
    """
    if not path or module.trainer.ckpt_path:
        return
    init_estimator_checked(module.estimator, path, hparams.trained_input_size(module))
