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
LEARNERS = ("ppo", "reinforce", "q")
# Krueger et al.'s grid names its cells by PBT interval (0: none) and environment swapping; as regimes:
# (interval 0, none) plain, (0, deterministic) plain_swap, (>0, none) pbt, (>0, deterministic) pbt_swap;
# REINFORCE also runs their PBT_no_EXPLORE (lr copied, never perturbed) as pbt_weights, and (krueger_sym)
# PBT whose explore factors are symmetric in log (x1.25 / x0.8, like ours) as pbt_sym / pbt_swap_sym.
KRUEGER_REGIMES = ("plain", "plain_swap", "pbt", "pbt_weights", "pbt_swap", "pbt_sym", "pbt_swap_sym")
SWAPS = ("none", "deterministic")
PLANNERS = ("planner_crossing", "planner_bounded")
VIEWS = ("visible", "hidden")

SWEPT_FIELDS = ("env", "learner", "regime", "pay", "view", "interval", "population")
HEADLINES = (
    Headline("P(cooperate), unit test", "exploitation_rate", where={"stage": "final", "env": "pd"},
             by=("learner", "regime", "interval", "population")),
)


@dataclass(frozen=True)
class Config(PPOFields, SeedFields):
    num_seeds: int = 8
    """Seeds per condition; a seed is one independent population (all seeds train together, vmapped)."""
    learner: Annotated[tuple[str, ...], OneOf(LEARNERS), NonEmpty(), TRACED] = LEARNERS
    """Learners: ppo (ours: every world and regime, and Krueger et al.'s grid) | reinforce, q (Krueger et al.'s
    own unit-test learners, on their grid only; agents/myopia_unit_test.py)."""
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
    # --- Krueger et al.'s grid (their unit_test_meta_learning.py / unit_test_Q_learning.py) ---
    krueger: Annotated[bool, TRACED] = True
    """Run Krueger et al.'s population x PBT interval x swapping grid in the unit test, for each learner."""
    krueger_population: Annotated[tuple[int, ...], Min(5), TRACED] = (10, 100, 1000)
    """REINFORCE populations (theirs: --n_agentss [10,100,1000])."""
    krueger_interval: Annotated[tuple[int, ...], Min(0), NonEmpty(), TRACED] = (0, 1, 10, 100)
    """PBT intervals, 0 = no PBT (theirs: --intervals [0,1,10,100], in steps; PPO's in updates)."""
    krueger_swap: Annotated[tuple[str, ...], OneOf(SWAPS), NonEmpty(), TRACED] = SWAPS
    """Environment swapping (theirs: --env_swaps [none,deterministic])."""
    krueger_beta: Annotated[float, TRACED] = -0.5
    """Their beta: reward = state + beta x action - 0.5 (1 = cooperate). -0.5 is the unit test (their --b1s
    also runs 0 and 0.5); PPO's payoffs equal beta = -0.5 up to a constant, whatever this says."""
    krueger_steps: Annotated[int, Min(1), TRACED] = 1000
    """REINFORCE steps (theirs: --n_steps 1000)."""
    krueger_sym: Annotated[bool, TRACED] = True
    """Also run REINFORCE's PBT with explore factors symmetric in log (x1.25 / x0.8, ours) instead of theirs
    (x1.2 / x0.8, a -2% drift in log lr per explore step): tells what their lr drift does."""
    krueger_ppo_population: Annotated[tuple[int, ...], Min(2), TRACED] = (10, 100)
    """PPO populations on their grid (intervals in PPO updates; pd_steps steps per member)."""
    q_learners: Annotated[int, Min(1), TRACED] = 5
    """Q-learners per trial (theirs: n_learners = 5)."""
    q_steps: Annotated[int, Min(1), TRACED] = 3000
    """Q-learning steps (theirs: n_steps = 3000)."""
    q_epsilon: Annotated[float, Min(0.0), Max(1.0), TRACED] = 0.1
    """Q-learners' epsilon-greedy exploration (theirs: eps = .1)."""
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
        largest = max([self.interval, *self.sweep_interval, *ppo_krueger_intervals(self)])
        for env in self.env:
            need = steps_per_update(self, env) * largest
            if training_steps(self, env) < need:
                raise ConfigError(STEPS_FIELD[env], f"{training_steps(self, env)} is less than one PBT round; "
                                  f"allowed: >= steps per update ({steps_per_update(self, env)}) x largest "
                                  f"interval ({largest}) = {need}")
        if not self.conditions_any():
            raise ConfigError("regime", "nothing to run: name a regime, enable planners/control with env invest, "
                              "or run Krueger et al.'s grid (krueger true, env pd)")

    def conditions_any(self) -> bool:
        return bool(conditions(self))


# The field that sets each world's training steps per member.
STEPS_FIELD = {"pd": "pd_steps", "invest": "total_steps"}


def training_steps(config: Config, env: str) -> int:
    """Training env steps per member that `env`'s config asks for."""
    return config.pd_steps if env == "pd" else config.total_steps


def steps_per_update(config: Config, env: str) -> int:
    """Env steps per member and PPO update in `env`."""
    return config.pd_num_envs * config.pd_rollout_len if env == "pd" else config.num_envs * config.rollout_len


def ppo_krueger_intervals(config: Config) -> tuple[int, ...]:
    """PPO's PBT intervals (in updates) on Krueger et al.'s grid; none when it does not run."""
    return config.krueger_interval if (config.krueger and "ppo" in config.learner and "pd" in config.env) else ()


def krueger_regime(interval: int, swap: str) -> str:
    return ("pbt" if interval else "plain") + ("_swap" if swap == "deterministic" else "")


def round_interval(config: Config, fields: dict) -> int:
    """PPO updates per round of a trained condition (plain populations run rounds of the base interval)."""
    return config.interval if fields["regime"] in ("plain", "plain_swap") else fields["interval"]


def rounds(config: Config, fields: dict) -> int:
    """Whole rounds a trained condition runs: training steps -> whole updates -> whole rounds."""
    updates = training_steps(config, fields["env"]) // steps_per_update(config, fields["env"])
    return updates // round_interval(config, fields)


def env_steps(config: Config, fields: dict) -> int:
    """Environment steps per population member (not summed over members) that the condition trains: the
    world's training steps rounded down to whole PBT rounds; 0 for the planners (they do not train)."""
    if fields["regime"] in PLANNERS:
        return 0
    if fields["learner"] == "reinforce":
        return config.krueger_steps
    if fields["learner"] == "q":
        return config.q_steps
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
                    eval_steps=8, curve_points=4, progress_chunks=2, krueger_population=(5,),
                    krueger_interval=(0, 2), krueger_steps=40, krueger_ppo_population=(4,), q_steps=40),
    # Minutes on a 2-core laptop: the unit test with its interval and population sweeps, and
    # the invest world's regimes, views, control and planners; Krueger et al.'s grid for REINFORCE
    # and Q-learning (seconds: their learners are one number per agent), and for PPO at population
    # 10 (100 and 1000 cost minutes per cell: the krueger and paper presets), at 6 trials (= seeds).
    # Not 10: the invest world's PBT populations deadlock XLA's CPU runtime at 10 seeds (4 of 4
    # tries on 2026-12-03; 6 seeds never did), so the published trial count is its own preset.
    "quick": Config(num_seeds=6, krueger_ppo_population=(10,)),
    # Krueger et al.'s grid alone, with their 10 trials: REINFORCE and Q-learning as published,
    # PPO beside them at populations 10 and 100 (minutes).
    "krueger": Config(num_seeds=10, env=("pd",), regime=(), sweep_env=(), planners=False, control=False),
    # Publication scale: more seeds and members, longer training, the sweeps in both worlds.
    "paper": Config(num_seeds=16, population=16, sweep_interval=(1, 2, 4, 8, 16, 32),
                    sweep_population=(4, 8, 16, 32), sweep_env=ENVS, pd_steps=102_400, total_steps=500_000,
                    num_envs=64, planner_envs=128, planner_steps=120, planner_simulations=128,
                    krueger_ppo_population=(10, 100, 1000)),
}


def conditions(config: Config) -> list[Condition]:
    out: list[Condition] = []

    def add(env, regime, pay, view, interval, population, learner="ppo"):
        fields = {"env": env, "learner": learner, "regime": regime, "pay": pay, "view": view,
                  "interval": int(interval), "population": int(population)}
        if all(c.fields != fields for c in out):
            out.append(Condition(condition_id(fields), fields))

    def regime_grid(env, pay, view):
        for regime in config.regime:
            if regime == "plain":
                add(env, regime, pay, view, 0, config.population)
            else:
                add(env, regime, pay, view, config.interval, config.population)

    ppo = "ppo" in config.learner
    pd_view = "visible" if config.pd_observe_state else "hidden"
    if "pd" in config.env and ppo:
        regime_grid("pd", "next", pd_view)
    if "invest" in config.env and ppo:
        if config.control:
            add("invest", "plain", "same", config.view[0], 0, config.population)
        for view in config.view:
            regime_grid("invest", "next", view)
        if config.planners:
            for planner in PLANNERS:
                add("invest", planner, "next", "visible", 0, 1)
    for env in config.sweep_env:
        if env not in config.env or not ppo:
            continue
        view = ("visible" if config.pd_observe_state else "hidden") if env == "pd" else config.view[0]
        for regime in [r for r in config.regime if r != "plain"]:
            for interval, population in itertools.chain(
                    ((i, config.population) for i in config.sweep_interval),
                    ((config.interval, p) for p in config.sweep_population)):
                add(env, regime, "next", view, interval, population)
    if config.krueger and "pd" in config.env:
        # Their learners are blind to the state (one logit; a bandit Q), so their view is hidden.
        grid = list(itertools.product(config.krueger_swap, config.krueger_interval))
        for learner in [name for name in LEARNERS if name in config.learner]:
            if learner == "q":  # their Q script: no PBT, swapping off / on, 5 learners
                for swap in config.krueger_swap:
                    add("pd", krueger_regime(0, swap), "next", "hidden", 0, config.q_learners, "q")
                continue
            populations = config.krueger_population if learner == "reinforce" else config.krueger_ppo_population
            view = "hidden" if learner == "reinforce" else pd_view
            for population in populations:
                for swap, interval in grid:
                    add("pd", krueger_regime(interval, swap), "next", view, interval, population, learner)
                    if learner == "reinforce" and interval and swap == "none":  # their PBT_no_EXPLORE
                        add("pd", "pbt_weights", "next", view, interval, population, learner)
                    if learner == "reinforce" and interval and config.krueger_sym:
                        add("pd", krueger_regime(interval, swap) + "_sym", "next", view, interval, population, learner)
    return out
