"""Logger-agnostic image logging: PNGs in the run folder for every run, plus W&B / TensorBoard when present."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torchvision.utils import make_grid, save_image

from hoi_adapt.callbacks.run_folder import run_dir
from hoi_adapt.viz.drawing import to_uint8


class ImageLogger(pl.Callback):
    """Writes a grid of ``pl_module.visuals(batch)`` for a fixed validation batch.

    The batch is the first batch of the first validation loader, captured once, so successive PNGs show
    the same images as training progresses.

    Args:
        every_n_epochs: how often to write (validation epochs).
        max_images: samples in the grid.
        columns: panels per sample (``visuals`` returns samples x columns images).
    """

    def __init__(self, every_n_epochs: int = 1, max_images: int = 6, columns: int | None = None) -> None:
        super().__init__()
        self.every_n_epochs = every_n_epochs
        self.max_images = max_images
        self.columns = columns
        self._batch: dict[str, Any] | None = None
        self._out_dir: Path | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # the run folder is a broadcast under DDP: resolved here, on every rank, once per run
        self._out_dir = run_dir(trainer) / "images"

    def on_validation_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                                batch_idx: int, dataloader_idx: int = 0) -> None:
        if self._batch is None and batch_idx == 0 and dataloader_idx == 0:
            self._batch = {k: (v[: self.max_images].detach().clone() if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or (trainer.current_epoch % self.every_n_epochs):
            return
        if self._out_dir is None:  # used without setup (e.g. called directly): every rank gets here alike
            self._out_dir = run_dir(trainer) / "images"
        if trainer.is_global_zero and self._batch is not None:  # only rank 0 draws and writes
            self._write(trainer, pl_module, self._out_dir)

    def _write(self, trainer: pl.Trainer, pl_module: pl.LightningModule, out_dir: Path) -> None:
        assert self._batch is not None
        batch = {k: (v.to(pl_module.device) if isinstance(v, torch.Tensor) else v) for k, v in self._batch.items()}
        was_training = pl_module.training
        pl_module.eval()
        panels = pl_module.visuals(batch, self.max_images).cpu()
        pl_module.train(was_training)
        columns = self.columns or max(1, panels.shape[0] // max(1, min(self.max_images, batch["image"].shape[0])))
        grid = make_grid(panels, nrow=columns, padding=2, pad_value=1.0)
        tag = "val/visuals"
        for logger in trainer.loggers:
            name = type(logger).__name__
            if name == "WandbLogger":  # uint8 pixels: W&B casts float images to uint8 without scaling (all black)
                logger.log_image(key=tag, images=[to_uint8(grid)], step=trainer.global_step)  # type: ignore[attr-defined]
            elif name == "TensorBoardLogger":
                logger.experiment.add_image(tag, grid, trainer.global_step)  # type: ignore[attr-defined]
        out_dir.mkdir(parents=True, exist_ok=True)
        save_image(grid, out_dir / f"step{trainer.global_step:07d}.png")
