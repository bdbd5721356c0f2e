"""Config, presets and conditions of the example experiment (no jax)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from innerlab.experiments.base import Condition, condition_id
from innerlab.experiments.fields import TRACED, Gt, Max, Min, NonEmpty, PosInt, SeedFields
from innerlab.experiments.headlines import Headline

SWEPT_FIELDS = ("gap",)
HEADLINES = (Headline("probability of the best arm", "p_best", by=("gap",)),)


@dataclass(frozen=True)
class Config(SeedFields):
    gap: Annotated[tuple[float, ...], Min(0.0), Max(0.5), NonEmpty(), TRACED] = (0.0, 0.4)
    """How much more often arm 0 pays than the others (0 = arms are equal)."""
    arms: Annotated[int, Min(2)] = 4
    """Number of arms."""
    total_steps: PosInt = 20_000
    """Pulls per seed over the whole run (rounded down to whole updates)."""
    num_envs: PosInt = 100
    """Pulls per update."""
    lr: Annotated[float, Gt(0), TRACED] = 0.5
    """Step size of the policy-gradient update."""
    progress_chunks: PosInt = 3
    """Training runs in this many jitted chunks (the last may be shorter)."""


PRESETS = {
    # Seconds; too short to learn. 3 chunks do not divide its 10 updates: the tail runs too.
    "smoke": Config(num_seeds=2, total_steps=1_000),
    # The controls pass here (about 10 s).
    "quick": Config(num_seeds=8),
    "paper": Config(num_seeds=32, total_steps=100_000),
}


def conditions(config: Config) -> list[Condition]:
    return [Condition(condition_id({"gap": float(g)}), {"gap": float(g)}) for g in config.gap]


def env_steps(config: Config, fields: dict) -> int:
    return config.total_steps // config.num_envs * config.num_envs
