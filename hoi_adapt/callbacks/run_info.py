"""Records what is needed to reproduce a run's numbers (users' most common reproduction problem)."""
from __future__ import annotations

import platform
import subprocess
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from hoi_adapt import __version__
from hoi_adapt.utils.io import write_json_atomic


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=Path(__file__).resolve().parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


class RunInfo(pl.Callback):
    """Writes ``run_info.json`` (seed, devices, world size, per-stream and effective batch size, versions)."""

    def __init__(self, seed: int | None = None) -> None:
        super().__init__()
        self.seed = seed

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # `trainer.log_dir` is a collective under DDP (rank 0 broadcasts it): every rank must ask, or rank 0
        # waits forever; only rank 0 writes.
        out = Path(trainer.log_dir or trainer.default_root_dir)
        if trainer.is_global_zero:
            self._write(trainer, out)

    def _write(self, trainer: pl.Trainer, out: Path) -> None:
        dm = getattr(trainer, "datamodule", None)
        batch_sizes: dict[str, Any] = {}
        if dm is not None and hasattr(dm, "train_specs"):
            batch_sizes = {name: spec.batch_size or dm.batch_size for name, spec in dm.train_specs.items()}
        per_step = sum(batch_sizes.values()) if batch_sizes else None
        info = {
            "seed": self.seed,
            "hoi_adapt": __version__,
            "git_commit": _git_commit(),
            "torch": torch.__version__,
            "pytorch_lightning": pl.__version__,
            "python": platform.python_version(),
            "accelerator": type(trainer.accelerator).__name__,
            "devices": trainer.num_devices,
            "num_nodes": trainer.num_nodes,
            "world_size": trainer.world_size,
            "batch_size_per_device": batch_sizes,
            "effective_batch_size": per_step * trainer.world_size * trainer.accumulate_grad_batches if per_step else None,
            "precision": str(trainer.precision),
        }
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "run_info.json", info)
