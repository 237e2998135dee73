"""The alternating training schedule of the method as a pure function of a step counter.

Stage 0 (E on labelled hand-only data), then ``rounds`` rounds of [G/D phase with E frozen, E phase with G
frozen]. Because the phase is a function of one saved counter, resuming from any checkpoint continues in
the same phase at the same step.
"""
from __future__ import annotations

from dataclasses import dataclass

from hoi_adapt.utils.errors import ConfigError

STAGE0, GD, EST, DONE = "stage0", "gd", "est", "done"


@dataclass(frozen=True)
class Phase:
    name: str  # stage0 | gd | est | done
    round: int  # 0 for stage 0, 1..rounds for the alternating phases
    step: int  # step within the phase
    length: int  # steps of the phase

    @property
    def is_last_step(self) -> bool:
        return self.step == self.length - 1

    @property
    def tag(self) -> str:
        return STAGE0 if self.name == STAGE0 else f"round{self.round}_{self.name}"


@dataclass
class AdaptSchedule:
    """Phase lengths (in training steps, i.e. batches of every stream).

    Attributes:
        stage0_steps: E on labelled hand-only data before adaptation (0 when starting from a checkpoint).
        rounds: number of alternating rounds.
        gd_steps: steps of each G/D phase (E frozen).
        est_steps: steps of each E phase (G frozen).
    """

    stage0_steps: int = 0
    rounds: int = 2
    gd_steps: int = 200
    est_steps: int = 200

    def __post_init__(self) -> None:
        if min(self.stage0_steps, self.rounds, self.gd_steps, self.est_steps) < 0:
            raise ConfigError(f"schedule lengths must be >= 0, got {self}")

    @property
    def total_steps(self) -> int:
        return self.stage0_steps + self.rounds * (self.gd_steps + self.est_steps)

    def phase_at(self, step: int) -> Phase:
        if step < self.stage0_steps:
            return Phase(STAGE0, 0, step, self.stage0_steps)
        rest = step - self.stage0_steps
        per_round = self.gd_steps + self.est_steps
        if per_round == 0 or rest >= self.rounds * per_round:
            return Phase(DONE, self.rounds, 0, 0)
        rnd, within = divmod(rest, per_round)
        if within < self.gd_steps:
            return Phase(GD, rnd + 1, within, self.gd_steps)
        return Phase(EST, rnd + 1, within - self.gd_steps, self.est_steps)
