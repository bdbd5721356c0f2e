"""Cross-episodic objectives: config, presets and conditions (no jax; see the package doc).

Training is counted in PBT rounds of `interval` PPO updates per member (the plain regime runs
the same rounds with no selection, at the base `interval`). A condition trains exactly
`rounds(config, fields)` rounds: the world's training steps per member rounded down to whole
updates, and the updates rounded down to whole rounds (the updates left over, fewer than
`interval`, are not trained).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Annotated

from innerlab.experiments.base import Condition, condition_id
from innerlab.experiments.errors import ConfigError
from innerlab.experiments.fields import TRACED, Gt, Max, Min, NonEmpty, OneOf, PPOFields, PosInt, SeedFields
from innerlab.experiments.headlines import Headline
from innerlab.vocab import FITNESS

ENVS = ("pd", "invest")
REGIMES = ("plain", "pbt", "pbt_weights", "pbt_swap")
PLANNERS = ("planner_crossing", "planner_bounded")
VIEWS = ("visible", "hidden")

SWEPT_FIELDS = ("env", "regime", "pay", "view", "interval", "population")
HEADLINES = (
    Headline("P(cooperate), unit test", "exploitation_rate", where={"stage": "final", "env": "pd"},
             by=("regime", "interval", "population")),
)


@dataclass(frozen=True)
class Config(PPOFields, SeedFields):
    num_seeds: int = 8
    """Seeds per condition; a seed is one independent population (all seeds train together, vmapped)."""
    env: Annotated[tuple[str, ...], OneOf(ENVS), NonEmpty(), TRACED] = ENVS
    """Worlds: pd (the unit test for myopia) | invest (ObjectWorld with an invest action)."""
    regime: Annotated[tuple[str, ...], OneOf(REGIMES), TRACED] = REGIMES
    """Training regimes: plain | pbt | pbt_weights (PBT whose copied hyper-parameters are never perturbed:
    selection acts on weights alone) | pbt_swap (PBT with environment swapping)."""
    planners: Annotated[bool, TRACED] = True
    """Also run the known-model MCTS planners (crossing and episode-bounded horizon) in the invest world."""
    control: Annotated[bool, TRACED] = True
    """Also train plain PPO with the invest bonus paid within the same episode (the control)."""
    view: Annotated[tuple[str, ...], OneOf(VIEWS), NonEmpty(), TRACED] = VIEWS
    """Invest world: visible (the observation shows the investment, the bonus due and the bonus paid) | hidden."""
    population: Annotated[int, Min(1), TRACED] = 8
    """Members per population (PBT and the plain baseline alike)."""
    interval: Annotated[int, Min(1), TRACED] = 4
    """PPO updates between PBT exploit/explore steps."""
    truncation: Annotated[float, Gt(0.0), Max(0.5)] = 0.25
    """Fraction of the population replaced at each exploit step."""
    perturb: Annotated[tuple[float, ...], Gt(0.0), NonEmpty()] = (0.8, 1.25)
    """Factors a copied member's learning rate and entropy coefficient are multiplied by (1 = copy weights only)."""
    fitness: Annotated[str, OneOf(FITNESS)] = "train"
    """PBT fitness: train (mean training episode return over the interval) | eval (a separate rollout)."""
    sweep_interval: Annotated[tuple[int, ...], Min(1), TRACED] = (1, 4, 16)
    """PBT intervals swept (pbt and pbt_swap, at the base population) in the worlds of sweep_env."""
    sweep_population: Annotated[tuple[int, ...], Min(1), TRACED] = (4, 8, 16)
    """Population sizes swept (pbt and pbt_swap, at the base interval) in the worlds of sweep_env."""
    sweep_env: Annotated[tuple[str, ...], OneOf(ENVS), TRACED] = ("pd",)
    """Worlds in which the interval and population sweeps run (empty: no sweep)."""
    # --- the unit test ---
    pd_temptation: Annotated[float, Gt(0.0), TRACED] = 0.5
    """Reward for defecting (the myopic gain)."""
    pd_cooperation: Annotated[float, TRACED] = 1.0
    """Reward for the previous episode's self having cooperated."""
    pd_observe_state: Annotated[bool, TRACED] = True
    """The observation shows the previous move."""
    pd_steps: PosInt = 25_600
    """Training steps (= episodes) per member."""
    pd_num_envs: PosInt = 16
    """Unit test: parallel environments per member."""
    pd_rollout_len: PosInt = 8
    """Unit test: steps per environment per PPO update."""
    pd_num_minibatches: PosInt = 1
    """Unit test: minibatches per epoch (must divide pd_num_envs)."""
    pd_update_epochs: PosInt = 1
    """Unit test: passes over each rollout per update."""
    pd_lr: Annotated[float, Gt(0.0), TRACED] = 1e-3
    """Initial learning rate of every member (PBT perturbs it)."""
    pd_ent_coef: Annotated[float, Min(0.0), TRACED] = 0.0
    """Unit test: initial entropy bonus coefficient of every member (PBT perturbs it)."""
    pd_gamma: Annotated[float, Min(0.0), Max(1.0)] = 0.0
    """Unit test: discount factor (every episode is one step that terminates, so it changes nothing)."""
    pd_width: PosInt = 16
    """Unit test: hidden width of the MLP policy."""
    pd_depth: PosInt = 1
    """Unit test: hidden layers of the MLP policy."""
    # --- the invest world ---
    grid_size: PosInt = 4
    """Side of the square grid of the invest world."""
    num_objects: PosInt = 2
    """Objects, all rewarded +1."""
    max_steps: PosInt = 8
    """Episode length in the invest world."""
    end_on_collect: bool = False
    """End an invest-world episode once every object is collected; default False: every episode lasts
    max_steps, so investing costs no time, only `cost` (and a planner can invest on the last step)."""
    cost: Annotated[float, Min(0.0), TRACED] = 0.2
    """Reward lost when investing."""
    bonus: Annotated[float, TRACED] = 0.6
    """Reward the investment pays back (next episode, or same episode for the control)."""
    width: PosInt = 64
    """Invest world: hidden width of the MLP policy."""
    depth: PosInt = 2
    """MLP policy: depth hidden layers of width units."""
    # Invest-world PPO (bounds, and the help of num_minibatches, update_epochs and gamma, are PPOFields').
    total_steps: int = 100_000
    """Training steps per member."""
    num_envs: int = 32
    """Invest world: parallel environments per member."""
    rollout_len: int = 16
    """Invest world: steps per environment per PPO update."""
    lr: float = 1e-3
    """Initial learning rate of every member (PBT perturbs it)."""
    ent_coef: float = 0.01
    """Invest world: initial entropy bonus coefficient of every member (PBT perturbs it)."""
    progress_chunks: int = 4
    """Training runs in this many jitted chunks of whole PBT rounds (the last one may be shorter) so progress
    can be shown."""
    planner_simulations: PosInt = 64
    """MCTS simulations per planner step."""
    planner_depth: PosInt = 16
    """Largest depth of the planner's search tree."""
    planner_envs: PosInt = 32
    """Planner evaluation: environments per seed."""
    planner_steps: PosInt = 60
    """Planner evaluation: environments and steps per seed."""
    eval_envs: PosInt = 16
    """Environments of the `eval` fitness rollout, per member."""
    eval_steps: PosInt = 48
    """Rollout of the `eval` fitness, per member."""
    curve_points: PosInt = 20
    """Points per training curve in metrics.parquet."""

    def cross_check(self) -> None:
        if self.pd_num_envs % self.pd_num_minibatches:
            raise ConfigError("pd_num_minibatches", f"{self.pd_num_minibatches} must divide pd_num_envs "
                              f"({self.pd_num_envs})")
        if self.num_objects + 1 > self.grid_size ** 2:
            raise ConfigError("num_objects", f"num_objects + 1 must fit in grid_size**2 = {self.grid_size ** 2}")
        if not self.bonus > self.cost:
            raise ConfigError("bonus", f"allowed: bonus > cost (got bonus {self.bonus}, cost {self.cost}); "
                              "otherwise investing does not pay across episodes")
        if not self.pd_cooperation > self.pd_temptation:
            raise ConfigError("pd_cooperation", f"{self.pd_cooperation} is out of range; allowed: pd_cooperation > "
                              f"pd_temptation ({self.pd_temptation}) (a prisoner's dilemma against one's future self)")
        largest = max([self.interval, *self.sweep_interval])
        for env in self.env:
            need = steps_per_update(self, env) * largest
            if training_steps(self, env) < need:
                raise ConfigError(STEPS_FIELD[env], f"{training_steps(self, env)} is less than one PBT round; "
                                  f"allowed: >= steps per update ({steps_per_update(self, env)}) x largest "
                                  f"interval ({largest}) = {need}")
        if not self.regime and not (self.planners and "invest" in self.env) and not self.control:
            raise ConfigError("regime", "nothing to run: name a regime, or enable planners/control with env invest")


# The field that sets each world's training steps per member.
STEPS_FIELD = {"pd": "pd_steps", "invest": "total_steps"}


def training_steps(config: Config, env: str) -> int:
    """Training env steps per member that `env`'s config asks for."""
    return config.pd_steps if env == "pd" else config.total_steps


def steps_per_update(config: Config, env: str) -> int:
    """Env steps per member and PPO update in `env`."""
    return config.pd_num_envs * config.pd_rollout_len if env == "pd" else config.num_envs * config.rollout_len


def round_interval(config: Config, fields: dict) -> int:
    """PPO updates per round of a trained condition (plain populations run rounds of the base interval)."""
    return config.interval if fields["regime"] == "plain" else fields["interval"]


def rounds(config: Config, fields: dict) -> int:
    """Whole rounds a trained condition runs: training steps -> whole updates -> whole rounds."""
    updates = training_steps(config, fields["env"]) // steps_per_update(config, fields["env"])
    return updates // round_interval(config, fields)


def env_steps(config: Config, fields: dict) -> int:
    """Environment steps per population member (not summed over members) that the condition trains: the
    world's training steps rounded down to whole PBT rounds; 0 for the planners (they do not train)."""
    if fields["regime"] in PLANNERS:
        return 0
    return rounds(config, fields) * round_interval(config, fields) * steps_per_update(config, fields["env"])


PRESETS = {
    # Seconds; every code path, no learning to speak of (the controls need `quick`). Its 3
    # chunks leave a shorter last chunk of rounds in the invest world (16 rounds), so the
    # tail is exercised. The interval sweep runs (its conditions, curves and report section);
    # sweep_population equals the base population, so the population sweep adds no condition:
    # three more compiles of the same code, about 12 s of the fast tier.
    "smoke": Config(num_seeds=2, population=4, interval=2, sweep_interval=(1,), sweep_population=(4,),
                    view=("visible",), pd_steps=512, pd_num_envs=8, pd_rollout_len=4, total_steps=2048,
                    num_envs=8, rollout_len=8, num_minibatches=2, update_epochs=1, width=16, depth=1,
                    planner_simulations=8, planner_depth=4, planner_envs=4, planner_steps=8, eval_envs=4,
                    eval_steps=8, curve_points=4, progress_chunks=2),
    # Minutes on a 2-core laptop: the unit test with its interval and population sweeps, and
    # the invest world's regimes, views, control and planners.
    "quick": Config(num_seeds=6),
    # Publication scale: more seeds and members, longer training, the sweeps in both worlds.
    "paper": Config(num_seeds=16, population=16, sweep_interval=(1, 2, 4, 8, 16, 32),
                    sweep_population=(4, 8, 16, 32), sweep_env=ENVS, pd_steps=102_400, total_steps=500_000,
                    num_envs=64, planner_envs=128, planner_steps=120, planner_simulations=128),
}


def conditions(config: Config) -> list[Condition]:
    out: list[Condition] = []

    def add(env, regime, pay, view, interval, population):
        fields = {"env": env, "regime": regime, "pay": pay, "view": view, "interval": int(interval),
                  "population": int(population)}
        if all(c.fields != fields for c in out):
            out.append(Condition(condition_id(fields), fields))

    def regime_grid(env, pay, view):
        for regime in config.regime:
            if regime == "plain":
                add(env, regime, pay, view, 0, config.population)
            else:
                add(env, regime, pay, view, config.interval, config.population)

    if "pd" in config.env:
        regime_grid("pd", "next", "visible" if config.pd_observe_state else "hidden")
    if "invest" in config.env:
        if config.control:
            add("invest", "plain", "same", config.view[0], 0, config.population)
        for view in config.view:
            regime_grid("invest", "next", view)
        if config.planners:
            for planner in PLANNERS:
                add("invest", planner, "next", "visible", 0, 1)
    for env in config.sweep_env:
        if env not in config.env:
            continue
        view = ("visible" if config.pd_observe_state else "hidden") if env == "pd" else config.view[0]
        for regime in [r for r in config.regime if r != "plain"]:
            for interval, population in itertools.chain(
                    ((i, config.population) for i in config.sweep_interval),
                    ((config.interval, p) for p in config.sweep_population)):
                add(env, regime, "next", view, interval, population)
    return out
