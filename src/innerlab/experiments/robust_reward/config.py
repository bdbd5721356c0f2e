"""Robust reward learning: config, presets and conditions (no jax; see the package doc)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from innerlab.experiments.base import Condition, conditions_of
from innerlab.experiments.errors import ConfigError
from innerlab.experiments.fields import TRACED, Gt, Lt, Max, Min, NonEmpty, OneOf, PosInt, SeedFields
from innerlab.experiments.headlines import Headline

TRAINING = ("novel", "covered")
ADVERSARIES = ("none", "random", "input", "latent")
SWEPT_FIELDS = ("training",)
HEADLINES = (
    Headline("EPIC after adversarial training", "epic", where={"stage": "after"},
             by=("training", "adversary", "support")),
)


@dataclass(frozen=True)
class Config(SeedFields):
    training: Annotated[tuple[str, ...], OneOf(TRAINING), NonEmpty(), TRACED] = TRAINING
    """Training conditions: novel (colour 2 never in training) | covered (control: colour 2 in training)."""
    adversaries: Annotated[tuple[str, ...], OneOf(ADVERSARIES), NonEmpty(), TRACED] = ADVERSARIES
    """Adversarial training variants: none | random | input | latent."""
    grid_size: PosInt = 5
    """Side of the square grid."""
    num_objects: Annotated[int, Min(2), Max(6)] = 4
    """Objects per level: half good (colour 0), the rest bad (colour 1, or 2; see `training`). At least one good
    and one bad; at most 6, as evaluation levels are enumerated exactly (cells x 2^K states)."""
    max_steps: PosInt = 20
    """Episode length limit; also the horizon of the regret's planner."""
    novel_reward: Annotated[float, TRACED] = -1.0
    """True reward of colour 2, the colour novel training never shows."""
    # --- the agent ---
    total_steps: PosInt = 40_960
    """Agent training steps per seed."""
    num_envs: PosInt = 16
    """Parallel environments per seed (agent training)."""
    rollout_len: PosInt = 8
    """Env steps per environment per agent update."""
    buffer_len: PosInt = 128
    """Replay steps per env; the final buffer is the agent's own experience during fine-tuning."""
    num_simulations: PosInt = 8
    """Simulations per Gumbel MuZero search."""
    latent_dim: PosInt = 32
    """Size of the agent's latent state."""
    width: PosInt = 64
    """Hidden width of every MLP of the agent."""
    ensemble: Annotated[int, Min(2)] = 4
    """Reward heads (at least 2: disagreement needs two)."""
    sgd_steps: PosInt = 8
    """Agent gradient steps per update."""
    lr: Annotated[float, Gt(0)] = 1e-3
    """Agent learning rate (Adam)."""
    discount: Annotated[float, Gt(0), Lt(1)] = 0.95
    """The agent's discount, also EPIC's gamma."""
    # --- adversarial training ---
    rounds: PosInt = 8
    """Rounds of (pick inputs, fine-tune)."""
    queries: PosInt = 32
    """Inputs picked per round (labelled for random/input, pseudo-inputs for latent)."""
    pool: PosInt = 512
    """Random valid inputs the input adversary scores per search round."""
    search_rounds: PosInt = 4
    """Search rounds of the input adversary (best of search_rounds x pool inputs)."""
    latent_steps: PosInt = 20
    """Latent adversary: signed-gradient ascent steps."""
    latent_step_size: Annotated[float, Gt(0), TRACED] = 0.05
    """Latent adversary: signed-gradient ascent steps and their size (latents live in [0, 1])."""
    latent_radius: Annotated[float, Gt(0), Max(1), TRACED] = 0.25
    """Latent adversary: how far (L-infinity) a pseudo-input may move from the real latent it starts at (1 = anywhere)."""
    finetune_steps: PosInt = 100
    """Gradient steps per round."""
    finetune_batch: PosInt = 64
    """Replay transitions per gradient step."""
    finetune_lr: Annotated[float, Gt(0), TRACED] = 1e-3
    """Learning rate (Adam) of the adversarial fine-tuning."""
    # --- evaluation ---
    eval_levels: PosInt = 8
    """Fixed evaluation levels per support (in-distribution and off-distribution)."""
    eval_envs: PosInt = 16
    """Return evaluation: environments per seed."""
    eval_steps: PosInt = 60
    """Return evaluation: environments and steps per seed."""
    visit_envs: PosInt = 8
    """Visited support: environments of the agent's own policy per level."""
    visit_steps: PosInt = 60
    """Visited support: environments and steps of the agent's own policy per level."""
    curve_points: PosInt = 10
    """Points of the training curve (mean training return per stretch of updates)."""
    progress_chunks: PosInt = 4
    """Agent training runs in this many jitted chunks (the last one may be shorter) so progress can be shown."""

    def cross_check(self) -> None:
        if self.num_objects + 1 > self.grid_size ** 2:
            raise ConfigError("num_objects", f"num_objects + 1 must fit in grid_size**2 = {self.grid_size ** 2}")
        if self.queries > self.pool:
            raise ConfigError("queries", f"{self.queries} is out of range; allowed: <= pool ({self.pool})")
        if self.buffer_len < 9 + self.rollout_len:  # the agent's unroll 3 + td 5 + 1, plus a rollout
            raise ConfigError("buffer_len", f"{self.buffer_len} is out of range; allowed: >= rollout_len + 9 = "
                              f"{self.rollout_len + 9}")
        if self.total_steps < self.num_envs * self.rollout_len:
            raise ConfigError("total_steps", f"{self.total_steps} is less than one update; allowed: >= num_envs * "
                              f"rollout_len = {self.num_envs * self.rollout_len}")


PRESETS = {
    # Seconds: every code path; the agent barely learns (the controls need `quick`).
    "smoke": Config(num_seeds=2, training=("novel",), total_steps=1024, num_envs=8, rollout_len=8, buffer_len=32,
                    num_simulations=4, latent_dim=8, width=16, ensemble=3, sgd_steps=2, rounds=2, queries=4,
                    pool=16, search_rounds=2, latent_steps=3, finetune_steps=4, finetune_batch=16,
                    eval_levels=1, eval_envs=4, eval_steps=25, visit_envs=2, visit_steps=10, curve_points=4,
                    progress_chunks=2),
    # Minutes on a 2-core laptop: both training conditions, all adversaries, 8 seeds.
    "quick": Config(),
    # Publication scale: more seeds, longer training, larger query budget.
    "paper": Config(num_seeds=32, total_steps=163_840, num_envs=32, rounds=16, queries=32, pool=2048,
                    eval_levels=16, eval_envs=64),
}


def conditions(config: Config) -> list[Condition]:
    return conditions_of([{"training": t} for t in TRAINING if t in config.training])


def env_steps(config: Config, fields: dict) -> int:
    """Env steps per seed of the agent's training: total_steps rounded down to whole updates
    (num_envs x rollout_len each). Not counted: the buffer pre-fill before the first update (as in
    MuZeroConfig.total_steps), evaluation, and the adversarial fine-tuning, which takes no env
    steps (its inputs are built from EnvParams, `rounds` x `queries` of them)."""
    per_update = config.num_envs * config.rollout_len
    return config.total_steps // per_update * per_update
