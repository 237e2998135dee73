"""Stage 0: the mesh estimator trained on labelled data (hand-only by default) with Lightning.

The network is injected (``estimator``), losses and their weights are configuration, and validation
scores every validation stream with the evaluation library's ``synthetic`` protocol (root-relative MPJPE,
AUC 20-50 mm, fingertip AUC) plus 2D PCK.
"""
from __future__ import annotations

import math
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable

from hoi_adapt.checkpoints import format as ckpt_format
from hoi_adapt.lit import hparams
from hoi_adapt.lit.batching import stream_batches
from hoi_adapt.lit.guards import NonFiniteGuard, norm_statistics, restore_norm_statistics
from hoi_adapt.lit.joint_metrics import JointAccumulator
from hoi_adapt.lit.supervised import init_estimator_on_fresh_start, make_estimator_loss, supervised_step
from hoi_adapt.losses.estimator import EstimatorLossWeights
from hoi_adapt.models.estimator import EstimatorOutput, MeshEstimator
from hoi_adapt.viz.drawing import estimator_panels

TRAIN_STATE_KEY = "hoi_adapt_train_state"


def one_cycle_factor(step: int, total: int, warmup_fraction: float, start: float = 0.04, end: float = 4e-6) -> float:
    """Learning-rate factor of a one-cycle schedule: cosine warm-up from ``start`` to 1, cosine decay to ``end``.

    The shape of ``torch.optim.lr_scheduler.OneCycleLR`` (initial rate max/25, final max/25/1e4), without its
    fixed length; steps past ``total`` stay at ``end``.
    """
    warm_end = max(1.0, warmup_fraction * total - 1.0)  # OneCycleLR's phase boundaries
    if step <= warm_end:
        return start + (1.0 - start) * 0.5 * (1.0 - math.cos(math.pi * step / warm_end))
    progress = min(1.0, (step - warm_end) / max(1.0, total - 1.0 - warm_end))
    return end + (1.0 - end) * 0.5 * (1.0 + math.cos(math.pi * progress))


def default_adam(params: Any) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=1e-3)


class EstimatorModule(pl.LightningModule):
    """LightningModule for training E on labelled images.

    Args:
        estimator: the mesh estimator network.
        loss_weights: weights of the estimator losses.
        silhouette_size: resolution of the rendered silhouette in the silhouette loss (CPU cost ~ pixels^2).
        silhouette_sigma: soft-rasteriser sigma of that silhouette.
        optimizer, scheduler: factories (LightningCLI injects them from YAML); the scheduler steps every
            optimiser step.
        one_cycle: without a ``scheduler``, run a one-cycle schedule (warm-up to the optimiser's learning rate,
            then cosine decay) over ``trainer.max_steps``, so shortening or lengthening a run keeps the schedule
            whole; training from scratch converges markedly faster with it than at a constant rate.
        warmup_fraction: share of the steps spent warming up in the one-cycle schedule.
        val_protocol: evaluation protocol used for validation metrics.
        max_nonfinite: consecutive non-finite losses tolerated (steps skipped) before the run stops.
        init_ckpt: estimator or adaptation checkpoint whose E weights start this run (fine-tuning, e.g. the
            oracle from stage 0); the optimiser and schedule start fresh. Read when the run starts (not when it
            resumes) and refused if made for another hand model, joint order, fingertip preset or input size.
            Resume a run with ``--ckpt_path``.
    """

    def __init__(
        self,
        estimator: MeshEstimator,
        loss_weights: EstimatorLossWeights | None = None,
        silhouette_size: int = 32,
        silhouette_sigma: float = 1e-4,
        optimizer: OptimizerCallable = default_adam,
        scheduler: LRSchedulerCallable | None = None,
        one_cycle: bool = False,
        warmup_fraction: float = 0.1,
        val_protocol: str = "synthetic",
        max_nonfinite: int = 5,
        init_ckpt: str | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["estimator", "optimizer", "scheduler", "loss_weights"])
        hparams.record_dataclass_hparams(self, loss_weights=loss_weights)
        self.estimator = estimator
        self.estimator_loss = make_estimator_loss(loss_weights, silhouette_size, silhouette_sigma)
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.one_cycle = one_cycle
        self.warmup_fraction = warmup_fraction
        self.val_protocol = val_protocol
        self.val_metrics: list[JointAccumulator] = []
        self.guard = NonFiniteGuard(max_nonfinite)
        self.init_ckpt = init_ckpt

    # ------------------------------------------------------------------ core
    def forward(self, image: torch.Tensor, K: torch.Tensor) -> EstimatorOutput:
        return self.estimator(image, K)

    def on_fit_start(self) -> None:
        init_estimator_on_fresh_start(self, self.init_ckpt)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor | None:
        stats = norm_statistics(self.estimator)
        total, terms, bs = supervised_step(self.estimator, self.estimator_loss, stream_batches(batch))
        if not self.guard.check(total, f"step {self.global_step}", terms):
            restore_norm_statistics(self.estimator, stats)  # e.g. a NaN image must not poison BatchNorm
            self.log("train/nonfinite_skipped", float(self.guard.total_skipped), batch_size=bs)
            return None  # Lightning skips the optimiser step: the weights never see a non-finite gradient
        self.log("train/loss", total, prog_bar=True, batch_size=bs)
        self.log_dict({f"train/{k}": v for k, v in terms.items()}, batch_size=bs)
        return total

    # ------------------------------------------------------------------ validation / test
    def _eval_names(self, stage: str) -> list[str]:
        dm = getattr(self.trainer, "datamodule", None)
        names = getattr(dm, f"{stage}_names", None)
        return list(names) if names else []

    def _eval_start(self) -> None:
        self.val_metrics = []

    def _eval_step(self, batch: dict[str, Any], dataloader_idx: int) -> None:
        while len(self.val_metrics) <= dataloader_idx:
            self.val_metrics.append(JointAccumulator())
        with torch.no_grad():
            out = self.estimator(batch["image"], batch["K"])
        self.val_metrics[dataloader_idx].update(out.joints3d, out.joints2d, batch)

    def _eval_end(self, stage: str) -> dict[str, float]:
        names = self._eval_names(stage)
        logged: dict[str, float] = {}
        for idx, acc in enumerate(self.val_metrics):
            name = names[idx] if idx < len(names) else str(idx)
            gather = self.all_gather if self.trainer.world_size > 1 else None
            metrics = acc.compute(self.val_protocol, gather)
            for key, value in metrics.items():
                logged[f"{stage}/{name}/{key}"] = value
                if idx == 0:
                    logged[f"{stage}/{key}"] = value
        if logged:
            self.log_dict(logged, sync_dist=False, rank_zero_only=True)
        self.val_metrics = []
        return logged

    def on_validation_epoch_start(self) -> None:
        self._eval_start()

    def validation_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step(batch, dataloader_idx)

    def on_validation_epoch_end(self) -> None:
        self._eval_end("val")

    def on_test_epoch_start(self) -> None:
        self._eval_start()

    def test_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step(batch, dataloader_idx)

    def on_test_epoch_end(self) -> None:
        self._eval_end("test")

    # ------------------------------------------------------------------ visuals (ImageLogger callback)
    @torch.no_grad()
    def visuals(self, batch: dict[str, Any], max_images: int = 8) -> torch.Tensor:
        """(N*cols, 3, H, W) panels in [0,1]: input, mesh overlay, predicted/GT 2D joints."""
        n = min(max_images, batch["image"].shape[0])
        sub = {k: (v[:n] if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}
        out = self.estimator(sub["image"], sub["K"])
        return estimator_panels(sub, out, self.estimator.hand_model.faces)

    # ------------------------------------------------------------------ optimisation & checkpoints
    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(self.estimator.parameters())
        if self.scheduler_factory is not None:
            scheduler = self.scheduler_factory(optimizer)
        elif self.one_cycle and self.trainer.max_steps > 0:
            # The total is read from the trainer at every step (not frozen into the scheduler's state), so a run
            # resumed with a larger max_steps stretches its schedule instead of failing.
            scheduler = torch.optim.lr_scheduler.LambdaLR(
                optimizer, lambda step: one_cycle_factor(step, self.trainer.max_steps, self.warmup_fraction))
        else:
            return optimizer
        # Stepped every optimiser step: the schedules used here are laid out over max_steps.
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["state_dict"] = ckpt_format.strip_hand_model(checkpoint["state_dict"])
        checkpoint[ckpt_format.CHECKPOINT_KEY] = ckpt_format.describe("estimator", {"estimator": self.estimator}, input_size=hparams.trained_input_size(self))
        # Exact resumption: the regressor's dropout draws from torch's global RNG (the data order is restored
        # by the data module's resumable loaders), and the guard's count of consecutive non-finite losses.
        checkpoint[TRAIN_STATE_KEY] = {"guard": self.guard.state_dict(), "torch_rng": torch.get_rng_state()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        ckpt_format.restore_hand_model(checkpoint["state_dict"], self)
        state = checkpoint.get(TRAIN_STATE_KEY)
        if state:
            self.guard.load_state_dict(state["guard"])
            torch.set_rng_state(state["torch_rng"])
