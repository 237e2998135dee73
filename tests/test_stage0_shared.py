"""Stage 0 is one implementation: AdaptModule's stage-0 phase and EstimatorModule's training step compute the
same supervised loss on the same batch and weights (they share :func:`hoi_adapt.lit.supervised.supervised_step`)."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from hoi_adapt.data.streams import StreamSpec
from hoi_adapt.lit.adapt_module import AdaptModule
from hoi_adapt.lit.datamodule import HOIDataModule
from hoi_adapt.lit.estimator_module import EstimatorModule
from hoi_adapt.lit.schedule import AdaptSchedule
from hoi_adapt.models.discriminator import PatchDiscriminator
from hoi_adapt.models.estimator import MeshEstimator
from hoi_adapt.models.generator import UNetGenerator


class FirstBatch(pl.Callback):
    """The first training batch as the module received it."""

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        if batch_idx == 0:
            self.batch = batch


def first_step_loss(module: pl.LightningModule, metric: str, world: Path, tmp_path: Path) -> tuple[torch.Tensor, Any]:
    """The loss ``module`` logs for its first training step on a seeded hand-only stream, and that batch."""
    dm = HOIDataModule(world=str(world), image_size=32, batch_size=2, num_workers=0, augment=None,
                       train={"hand_only": StreamSpec(split="source_hand", limit=4)},
                       val={"v": StreamSpec(split="source_hand_test", limit=2)})
    seen = FirstBatch()
    trainer = pl.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0, default_root_dir=tmp_path,
                         callbacks=[seen])
    pl.seed_everything(0)  # same data order and the same dropout draws in both runs
    trainer.fit(module, dm)
    return trainer.callback_metrics[metric], seen.batch


def test_adapt_stage0_and_estimator_training_step_give_the_same_loss(tiny_world, tmp_path):
    torch.manual_seed(0)
    estimator = MeshEstimator(regressor_hidden=32, evidence_width=8)
    stage0 = EstimatorModule(copy.deepcopy(estimator), silhouette_size=8)
    adapt = AdaptModule(copy.deepcopy(estimator), UNetGenerator(in_channels=3, base_channels=8, num_downs=4),
                        PatchDiscriminator(base_channels=8, num_layers=2), guidance=None,
                        schedule=AdaptSchedule(stage0_steps=1, rounds=1, gd_steps=1, est_steps=1), silhouette_size=8)
    loss_e, batch_e = first_step_loss(stage0, "train/loss", tiny_world, tmp_path / "e")
    loss_a, batch_a = first_step_loss(adapt, "train/e_total", tiny_world, tmp_path / "a")
    assert adapt.schedule_step == 1  # the step was stage 0
    assert torch.equal(batch_e["hand_only"]["image"], batch_a["hand_only"]["image"])
    assert torch.isfinite(loss_e) and loss_e > 0
    torch.testing.assert_close(loss_a, loss_e, rtol=1e-6, atol=0)
