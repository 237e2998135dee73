"""A checkpoint at every phase boundary of the adaptation schedule (and a rolling last.ckpt)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from hoi_adapt.callbacks.run_folder import run_dir


class PhaseCheckpoint(pl.Callback):
    """Saves ``<dir>/<phase tag>.ckpt`` when a phase ends and ``<dir>/last.ckpt`` every ``every_n_steps``.

    Resuming from any of them continues the schedule where it stopped (the module stores its schedule
    step, image pool, guard and RNG state in the checkpoint; the data module's loaders their position).
    With the stage-0 :class:`~hoi_adapt.lit.estimator_module.EstimatorModule` (no phases) it is a rolling
    step checkpoint: ``last.ckpt`` every ``every_n_steps`` global steps.

    Args:
        dirpath: folder (default: ``<run folder>/checkpoints``, next to Lightning's own checkpoints; see
            :mod:`hoi_adapt.callbacks.run_folder`).
        every_n_steps: rolling ``last.ckpt`` interval in schedule steps (0 disables).
    """

    def __init__(self, dirpath: str | None = None, every_n_steps: int = 50) -> None:
        super().__init__()
        self.dirpath = dirpath
        self.every_n_steps = every_n_steps
        self._resolved: Path | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # resolved once, on every rank (the run folder is a broadcast), not inside the training loop
        self._resolved = Path(self.dirpath) if self.dirpath else run_dir(trainer) / "checkpoints"

    def _dir(self, trainer: pl.Trainer) -> Path:
        if self._resolved is None:
            self._resolved = Path(self.dirpath) if self.dirpath else run_dir(trainer) / "checkpoints"
        return self._resolved

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        boundary = getattr(pl_module, "last_boundary", None)
        step = int(getattr(pl_module, "schedule_step", trainer.global_step))
        if boundary is not None:
            trainer.save_checkpoint(self._dir(trainer) / f"{boundary.tag}.ckpt", weights_only=False)
        if boundary is not None or (self.every_n_steps and step % self.every_n_steps == 0):
            trainer.save_checkpoint(self._dir(trainer) / "last.ckpt", weights_only=False)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        trainer.save_checkpoint(self._dir(trainer) / "last.ckpt", weights_only=False)
