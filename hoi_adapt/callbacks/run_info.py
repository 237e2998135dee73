"""Records what is needed to reproduce a run's numbers (users' most common reproduction problem)."""
from __future__ import annotations

import platform
import subprocess
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from hoi_adapt.callbacks.run_folder import RUN_INFO_FILE, RUN_KEY, claim_run_folder, new_run_id, run_dir
from hoi_adapt.utils.io import write_json_atomic
from hoi_adapt.version import __version__


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=Path(__file__).resolve().parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


class RunInfo(pl.Callback):
    """Writes ``run_info.json`` into the run folder and stamps every checkpoint with the run's identity.

    ``run_info.json``: run id, run folder, logger, seed, devices, world size, per-stream and effective batch
    size, versions, and the checkpoint a resumed run started from. Checkpoints get ``RUN_KEY`` so that
    ``hoi-adapt fit --ckpt_path`` continues in the same folder (and the same W&B run); restoring one
    restores the run id here too. A run folder holding another run's ``run_info.json`` is refused.

    Args:
        seed: the run's seed (recorded only).
        run_id: the run's id (default: a new one; ``hoi-adapt fit`` passes the W&B run id or the resumed one).
    """

    def __init__(self, seed: int | None = None, run_id: str | None = None) -> None:
        super().__init__()
        self.seed = seed
        self.run_id = run_id or new_run_id()
        self.record: dict[str, Any] = {}

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
        recorded = checkpoint.get(RUN_KEY)
        if isinstance(recorded, dict) and recorded.get("run_id"):
            self.run_id = str(recorded["run_id"])

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        out = run_dir(trainer)  # a broadcast under DDP: every rank asks; every rank checks, only rank 0 writes
        claim_run_folder(out, self.run_id, started=True)
        logger = trainer.loggers[0] if trainer.loggers else None
        self.record = {"run_id": self.run_id, "run_dir": str(out.resolve()),
                       "logger": type(logger).__name__ if logger is not None else None, "folder": out.name}
        if trainer.is_global_zero:
            self._write(trainer, out)

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
        if self.record:
            checkpoint[RUN_KEY] = dict(self.record)

    def _write(self, trainer: pl.Trainer, out: Path) -> None:
        dm = getattr(trainer, "datamodule", None)
        batch_sizes: dict[str, Any] = {}
        if dm is not None and hasattr(dm, "train_specs"):
            batch_sizes = {name: spec.batch_size or dm.batch_size for name, spec in dm.train_specs.items()}
        per_step = sum(batch_sizes.values()) if batch_sizes else None
        info = {
            **self.record,
            "resumed_from": str(trainer.ckpt_path) if trainer.ckpt_path else None,
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
        write_json_atomic(out / RUN_INFO_FILE, info)
