"""Test-only fault injection: SIGKILL the training process at a given step.

Used by the reliability tests to prove that a run killed mid-phase resumes from its last checkpoint with
the same result as an uninterrupted run. ``hoi-adapt fit`` adds the callback only when the environment
variable :data:`KILL_ENV` is set (``HOI_ADAPT_TEST_KILL_AT_STEP=<step>``); nothing else ever enables it.
SIGKILL cannot be caught: no ``finally`` block, exception handler or Lightning teardown runs, exactly as
when the machine is shut down or the OOM killer strikes.
"""
from __future__ import annotations

import os
import signal
from typing import Any

import pytorch_lightning as pl

KILL_ENV = "HOI_ADAPT_TEST_KILL_AT_STEP"


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
            os.kill(os.getpid(), signal.SIGKILL)


def kill_callback_from_env() -> KillAtStep | None:
    value = os.environ.get(KILL_ENV)
    return KillAtStep(int(value)) if value not in (None, "") else None
