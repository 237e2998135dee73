"""Non-finite loss handling: skip the step, log it, and stop cleanly if it keeps happening.

A broken step must never reach the weights (and so never a checkpoint): no optimiser update, and the
normalisation statistics its forward pass moved are put back. After ``max_consecutive`` non-finite losses
in a row the run stops with an error that says where, instead of training on garbage.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from hoi_adapt.utils.errors import HoiAdaptError


class NonFiniteLossError(HoiAdaptError, RuntimeError):
    """Training produced non-finite losses too many times in a row."""


class NonFiniteGuard:
    """Counts non-finite losses; streaks are counted per ``key`` (e.g. per optimiser), so a finite loss of
    one network (D) does not hide another (G) that never gets a finite loss."""

    def __init__(self, max_consecutive: int = 5) -> None:
        self.max_consecutive = max_consecutive
        self.streaks: dict[str, int] = {}
        self.total_skipped = 0

    @property
    def consecutive(self) -> int:
        """The longest current streak."""
        return max(self.streaks.values(), default=0)

    def check(self, loss: torch.Tensor, where: str, terms: dict[str, torch.Tensor] | None = None, key: str = "") -> bool:
        """True if ``loss`` is finite; otherwise count it and raise after too many in a row (for ``key``)."""
        if bool(torch.isfinite(loss.detach()).all()):
            self.streaks[key] = 0
            return True
        self.streaks[key] = self.streaks.get(key, 0) + 1
        self.total_skipped += 1
        if self.streaks[key] >= self.max_consecutive:
            bad = [k for k, v in (terms or {}).items() if not math.isfinite(float(v.detach()))]
            raise NonFiniteLossError(
                f"{self.streaks[key]} consecutive non-finite losses at {where} (non-finite terms: {bad or 'total'}); "
                "stopping before corrupting weights. Resume from the last checkpoint with a lower learning rate "
                "or check the data of this step."
            )
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"consecutive": self.consecutive, "total_skipped": self.total_skipped, "streaks": dict(self.streaks)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        streaks = state.get("streaks")
        self.streaks = {str(k): int(v) for k, v in streaks.items()} if isinstance(streaks, dict) else {"": int(state.get("consecutive", 0))}
        self.total_skipped = int(state.get("total_skipped", 0))


NORM_STATISTICS = ("running_mean", "running_var", "num_batches_tracked")


def norm_statistics(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Copies of the normalisation statistics a train-mode forward pass updates (BatchNorm running stats)."""
    return {name: buf.detach().clone() for name, buf in module.named_buffers() if name.endswith(NORM_STATISTICS)}


def restore_norm_statistics(module: torch.nn.Module, saved: dict[str, torch.Tensor]) -> None:
    """Undo a discarded step's effect on the statistics (a NaN image would otherwise poison them for good)."""
    buffers = dict(module.named_buffers())
    with torch.no_grad():
        for name, value in saved.items():
            buffers[name].copy_(value)
