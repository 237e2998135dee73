"""Non-finite loss handling: skip the step, log it, and stop cleanly if it keeps happening.

A broken step must never reach the weights (and so never a checkpoint). After ``max_consecutive``
non-finite losses in a row the run stops with an error that says where, instead of training on garbage.
"""
from __future__ import annotations

import math

import torch

from hoi_adapt.utils.errors import HoiAdaptError


class NonFiniteLossError(HoiAdaptError, RuntimeError):
    """Training produced non-finite losses too many times in a row."""


class NonFiniteGuard:
    def __init__(self, max_consecutive: int = 5) -> None:
        self.max_consecutive = max_consecutive
        self.consecutive = 0
        self.total_skipped = 0

    def check(self, loss: torch.Tensor, where: str, terms: dict[str, torch.Tensor] | None = None) -> bool:
        """True if ``loss`` is finite; otherwise count it and raise after too many in a row."""
        if bool(torch.isfinite(loss.detach()).all()):
            self.consecutive = 0
            return True
        self.consecutive += 1
        self.total_skipped += 1
        if self.consecutive >= self.max_consecutive:
            bad = [k for k, v in (terms or {}).items() if not math.isfinite(float(v.detach()))]
            raise NonFiniteLossError(
                f"{self.consecutive} consecutive non-finite losses at {where} (non-finite terms: {bad or 'total'}); "
                "stopping before corrupting weights. Resume from the last checkpoint with a lower learning rate "
                "or check the data of this step."
            )
        return False

    def state_dict(self) -> dict[str, int]:
        return {"consecutive": self.consecutive, "total_skipped": self.total_skipped}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.consecutive = int(state.get("consecutive", 0))
        self.total_skipped = int(state.get("total_skipped", 0))
