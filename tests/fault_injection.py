"""Test-only fault injection: SIGKILL a training or an export subprocess at a chosen point.

SIGKILL cannot be caught: no ``finally`` block, exception handler or Lightning teardown runs, exactly as when
the machine is shut down or the OOM killer strikes. The reliability tests use it to prove that an interrupted
run resumes to the same result as an uninterrupted one. Nothing in the package can trigger it.

* Training: ``hoi-adapt fit ... *kill_at_step_args(N)`` adds :class:`KillAtStep` (the subprocess needs this
  folder on ``PYTHONPATH`` so the callback's class path resolves).
* Export: ``python tests/fault_injection.py export N <hoi-adapt export arguments>`` kills the export in its
  N-th batch, after the batch's files are written and before its annotation shard is committed.
"""
from __future__ import annotations

import os
import signal
import sys
from typing import Any

import pytorch_lightning as pl


def _die() -> None:  # pragma: no cover - runs in a killed subprocess
    os.kill(os.getpid(), signal.SIGKILL)


def training_step_counter(trainer: pl.Trainer, pl_module: pl.LightningModule) -> int:
    """The step the schedule is at (adaptation: its schedule step; stage 0: the trainer's global step)."""
    return int(getattr(pl_module, "schedule_step", trainer.global_step))


class KillAtStep(pl.Callback):
    """SIGKILLs this process inside training step ``step``: after the forward pass and gradients, just before
    the first optimiser update of that step (so the in-memory state is half-way through the step)."""

    def __init__(self, step: int) -> None:
        super().__init__()
        self.step = int(step)

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any) -> None:
        if training_step_counter(trainer, pl_module) == self.step:
            _die()


def kill_at_step_args(step: int) -> list[str]:
    """LightningCLI arguments that add :class:`KillAtStep` to the configured callbacks."""
    return ["--trainer.callbacks+=fault_injection.KillAtStep", f"--trainer.callbacks.step={int(step)}"]


def export_killed_before_shard(batch: int, argv: list[str]) -> int:
    """``hoi-adapt export argv`` that dies when the ``batch``-th shard is about to be committed."""
    from hoi_adapt.data.formats import adapted as fmt
    from hoi_adapt.export.cli import main

    write_file, shards = fmt.write_file, []

    def write_file_or_die(out: Any, rel: str, data: bytes) -> str:
        if rel.startswith(fmt.SHARDS_DIR + "/"):
            shards.append(rel)
            if len(shards) == batch:
                _die()
        return write_file(out, rel, data)

    fmt.write_file = write_file_or_die
    return main(argv)


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] != "export":
        sys.exit("usage: python tests/fault_injection.py export N <hoi-adapt export arguments>")
    sys.exit(export_killed_before_shard(int(sys.argv[2]), sys.argv[3:]))
