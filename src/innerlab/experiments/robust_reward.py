"""Robust reward learning (seed: "Robust reward learning" and "How does using a learned reward
model vs. learned policy affect unidentifiability concerns?").

Train a reward-predictive model-based agent, compare its objective with the true reward, then
train its reward model adversarially on the inputs where an ensemble of reward heads
disagrees most, and compare again.

The agent (agents/muzero.py) is MuZero-style: it plans by tree search with the mean of E
reward heads on its own learned latent; that mean *is* its objective, so it can be read at
every (state, action) of a level and compared exactly with the true reward
(envs/tabular.py): EPIC distance (rewards/epic.py) and the regret of planning with it in the
true model (rewards/regret.py).

The world: a 5 x 5 ObjectWorld (egocentric view) with three colours, colour 0 worth +1,
colour 1 worth -1 and colour 2 worth `novel_reward` (default -1: a hazard). Training
conditions (`training`):
- `novel`: training levels show colours 0 and 1 only; colour 2 never appears, so what the
  reward heads say about it is unidentified by the agent's experience.
- `covered` (control): one bad object of each training level is colour 2, so the heads see it.
Off-distribution test levels replace every bad object by colour 2.

Supports of the comparison (`support`): `visited` (the (state, action) pairs the trained agent
takes on in-distribution evaluation levels), `all` (every reachable state of those levels,
uniform actions), `offdist` (every reachable state of the off-distribution levels).

Adversaries (`adversary`), each from the same trained agent, each with the same budget of
`rounds` x `queries` inputs and `rounds` x `finetune_steps` gradient steps on the reward heads
(and the representation under them):
- `none`: fine-tuning on the agent's own replay only (the compute-matched baseline);
- `random`: plus `queries` inputs per round drawn at random from the env's valid inputs,
  labelled with their true reward (the control for the adversary);
- `input`: plus the `queries` valid inputs of highest ensemble disagreement found by search
  (rewards/adversary.py), labelled with their true reward;
- `latent`: plus `queries` latent pseudo-inputs moved by gradient ascent to maximal
  disagreement; no label: the heads are trained to agree there.

Controls: the pipeline's own (a shaped, rescaled copy of the true reward has EPIC ~0 and
regret 0), the agent learns (return above a random policy's), the `covered` agent's reward
is closer to the truth off distribution than the `novel` agent's, and the input adversary
finds inputs of higher disagreement than random ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from innerlab.experiments.base import Condition, ConfigError, Experiment, ProgressFn, check_choices, condition_id
from innerlab.report.document import Report

TRAINING = ("novel", "covered")
ADVERSARIES = ("none", "random", "input", "latent")


@dataclass(frozen=True)
class Config:
    num_seeds: int = 8
    """Seeds per condition (vmapped: all seeds of a condition train together)."""
    seed_offset: int = 0
    """Seeds are seed_offset, seed_offset + 1, ..."""
    training: tuple[str, ...] = TRAINING
    """Training conditions: novel (colour 2 never in training) | covered (control: colour 2 in training)."""
    adversaries: tuple[str, ...] = ADVERSARIES
    """Adversarial training variants: none | random | input | latent."""
    grid_size: int = 5
    num_objects: int = 4
    """Objects per level: half good (colour 0), the rest bad (colour 1, or 2; see `training`)."""
    max_steps: int = 20
    """Episode length limit; also the horizon of the regret's planner."""
    novel_reward: float = -1.0
    """True reward of colour 2, the colour novel training never shows."""
    # --- the agent ---
    total_steps: int = 40_960
    """Agent training steps per seed."""
    num_envs: int = 16
    rollout_len: int = 8
    buffer_len: int = 128
    """Replay steps per env; the final buffer is the agent's own experience during fine-tuning."""
    num_simulations: int = 8
    latent_dim: int = 32
    width: int = 64
    ensemble: int = 4
    """Reward heads."""
    sgd_steps: int = 8
    lr: float = 1e-3
    discount: float = 0.95
    """The agent's discount, also EPIC's gamma."""
    # --- adversarial training ---
    rounds: int = 8
    """Rounds of (pick inputs, fine-tune)."""
    queries: int = 32
    """Inputs picked per round (labelled for random/input, pseudo-inputs for latent)."""
    pool: int = 512
    """Random valid inputs the input adversary scores per search round."""
    search_rounds: int = 4
    """Search rounds of the input adversary (best of search_rounds x pool inputs)."""
    latent_steps: int = 20
    latent_step_size: float = 0.05
    """Latent adversary: signed-gradient ascent steps and their size (latents live in [0, 1])."""
    latent_radius: float = 0.25
    """Latent adversary: how far (L-infinity) a pseudo-input may move from the real latent it starts at (1 = anywhere)."""
    finetune_steps: int = 100
    """Gradient steps per round."""
    finetune_batch: int = 64
    """Replay transitions per gradient step."""
    finetune_lr: float = 1e-3
    # --- evaluation ---
    eval_levels: int = 8
    """Fixed evaluation levels per support (in-distribution and off-distribution)."""
    eval_envs: int = 16
    eval_steps: int = 60
    """Return evaluation: environments and steps per seed."""
    visit_envs: int = 8
    visit_steps: int = 60
    """Visited support: environments and steps of the agent's own policy per level."""
    curve_points: int = 10
    progress_chunks: int = 4


class RobustReward(Experiment):
    name = "robust-reward"
    question = ("How far is a model-based agent's learned objective (its reward model) from the true reward on and "
                "off its training distribution, and does adversarial training on inputs where a reward ensemble "
                "disagrees (or on latent pseudo-inputs) close the gap better than random extra labels?")
    Config = Config
    swept_fields = ("training",)
    presets = {
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

    def validate(self, config: Config) -> None:
        check_choices("training", config.training, TRAINING)
        check_choices("adversaries", config.adversaries, ADVERSARIES)
        positive = ["num_seeds", "grid_size", "num_objects", "max_steps", "total_steps", "num_envs", "rollout_len",
                    "buffer_len", "num_simulations", "latent_dim", "width", "ensemble", "sgd_steps", "rounds",
                    "queries", "pool", "search_rounds", "latent_steps", "finetune_steps", "finetune_batch",
                    "eval_levels", "eval_envs", "eval_steps", "visit_envs", "visit_steps", "curve_points",
                    "progress_chunks"]
        for field in positive:
            if getattr(config, field) < 1:
                raise ConfigError(field, f"{getattr(config, field)} is out of range; allowed: >= 1")
        if config.seed_offset < 0:
            raise ConfigError("seed_offset", "must be >= 0")
        if config.num_objects < 2:
            raise ConfigError("num_objects", "allowed: >= 2 (at least one good and one bad object)")
        if config.num_objects + 1 > config.grid_size ** 2:
            raise ConfigError("num_objects", f"num_objects + 1 must fit in grid_size**2 = {config.grid_size ** 2}")
        if config.num_objects > 6:
            raise ConfigError("num_objects", "allowed: <= 6 (evaluation levels are enumerated exactly: cells x 2^K)")
        if config.ensemble < 2:
            raise ConfigError("ensemble", "allowed: >= 2 (disagreement needs at least two reward heads)")
        if config.queries > config.pool:
            raise ConfigError("queries", f"allowed: <= pool ({config.pool})")
        if config.buffer_len < 9 + config.rollout_len:  # the agent's unroll 3 + td 5 + 1, plus a rollout
            raise ConfigError("buffer_len", f"allowed: >= rollout_len + 9 = {config.rollout_len + 9}")
        if config.total_steps < config.num_envs * config.rollout_len * config.progress_chunks:
            raise ConfigError("total_steps", "allowed: >= num_envs x rollout_len x progress_chunks = "
                              f"{config.num_envs * config.rollout_len * config.progress_chunks}")
        if not config.lr > 0 or not config.finetune_lr > 0 or not config.latent_step_size > 0:
            raise ConfigError("lr/finetune_lr/latent_step_size", "allowed: > 0")
        if not 0 < config.latent_radius <= 1:
            raise ConfigError("latent_radius", f"{config.latent_radius} is out of range; allowed: 0 < latent_radius <= 1")
        if not 0 < config.discount < 1:
            raise ConfigError("discount", f"{config.discount} is out of range; allowed: 0 < discount < 1")

    def conditions(self, config: Config) -> list[Condition]:
        return [Condition(condition_id({"training": t}), {"training": t}) for t in TRAINING if t in config.training]

    def run_job(self, config: Config, condition: Condition, seeds: tuple[int, ...],
                progress: ProgressFn | None = None) -> list[dict[str, Any]]:
        from innerlab.experiments import _robust_reward_jax as impl

        return impl.run_condition(config, condition.fields, seeds, progress)

    def analyze(self, config: Config, rows: pd.DataFrame) -> Report:
        from innerlab.experiments import _robust_reward_report

        return _robust_reward_report.build_report(config, rows)


EXPERIMENT = RobustReward()
