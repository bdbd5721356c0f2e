"""Training and evaluation for the cross-episodic experiment (the JAX part, imported lazily).

One condition = one population trainer (agents/pbt.py) vmapped over seeds, run in jitted
chunks of whole PBT rounds for progress (exactly `config.rounds(config, fields)` rounds: the
updates that do not fill a whole round are not trained); a seed is one independent
population. Compiled functions are cached per structure (world, regime, interval, population
and the shape-setting config); rewards, payment timing, visibility and learning rates are
traced params, so conditions that differ only in them share a compile. The planners (known-model
MCTS) do not train: one jitted rollout per condition.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from innerlab.agents import HParams, NetworkConfig, PPOConfig, make_network, make_train
from innerlab.agents.pbt import PBTConfig, broadcast_hparams, make_population
from innerlab.envs import ObjectWorld, make_params
from innerlab.envs.persistent import InvestWorld, MyopiaPD
from innerlab.experiments.cross_episodic.config import PLANNERS, round_interval, rounds
from innerlab.experiments.fields import structure_key
from innerlab.experiments.outputs import save_agents
from innerlab.experiments.training import ChunkedRun, base_keys, compile_chunked, run_chunked

EPISODE_INFO = ("exploited", "own_return", "cross_return")
# metrics.parquet metric name <- PPO/env metric name
CURVE_METRICS = {"exploitation_rate": "exploited", "episode_return": "own_return",
                 "cross_episode_return": "cross_return", "received_return": "episode_return"}


def make_env(config, env_name: str):
    if env_name == "pd":
        return MyopiaPD()
    return InvestWorld(ObjectWorld(size=config.grid_size, num_objects=config.num_objects, num_colours=1,
                                   obs_view="egocentric"))


def env_params(config, env, env_name: str, pay: str, view: str):
    if env_name == "pd":
        return env.default_params.replace(temptation=jnp.float32(config.pd_temptation),
                                          cooperation=jnp.float32(config.pd_cooperation),
                                          observe_state=jnp.bool_(view == "visible"))
    world = make_params(env.world, max_steps_in_episode=config.max_steps, reward_table=[[1.0]],
                        terminate_when_rewarded_collected=config.end_on_collect)
    return env.default_params.replace(world=world, cost=jnp.float32(config.cost), bonus=jnp.float32(config.bonus),
                                      pay_next_episode=jnp.bool_(pay == "next"), visible=jnp.bool_(view == "visible"))


def ppo_config(structure, env_name: str) -> PPOConfig:
    # The learning rate is not annealed: PBT sets and perturbs it.
    if env_name == "pd":
        return PPOConfig(num_envs=structure.pd_num_envs, rollout_len=structure.pd_rollout_len,
                         total_steps=structure.pd_steps, update_epochs=structure.pd_update_epochs,
                         num_minibatches=structure.pd_num_minibatches, gamma=structure.pd_gamma, anneal_lr=False)
    return PPOConfig(total_steps=structure.total_steps, anneal_lr=False, **structure.ppo_kwargs())


class CompiledPopulation(NamedTuple):
    env: Any
    ppo: PPOConfig
    training: ChunkedRun
    """init(keys [S], hparams [P], env params) -> state; chunks of whole PBT rounds (`num_rounds`)."""
    network_spec: tuple
    """(NetworkConfig, obs_dim, num_actions): what rebuilds every member's network."""


class CompiledPlanner(NamedTuple):
    env: Any
    rollout: Callable
    """(keys [S], env params) -> {stat: [S]}."""


@functools.lru_cache(maxsize=32)
def _compiled_population(structure, env_name: str, regime: str, interval: int, population: int,
                         num_rounds: int) -> CompiledPopulation:
    env = make_env(structure, env_name)
    obs_dim = env.observation_space(None).shape[0]
    width, depth = (structure.pd_width, structure.pd_depth) if env_name == "pd" else (structure.width, structure.depth)
    net_config = NetworkConfig(arch="mlp", width=width, depth=depth)
    network = make_network(net_config, obs_dim, env.num_actions)
    ppo = ppo_config(structure, env_name)
    trainer = make_train(ppo, env, network, episode_info=EPISODE_INFO)
    pbt = PBTConfig(interval=interval, truncation=structure.truncation, fitness=structure.fitness,
                    perturb=(1.0,) if regime == "pbt_weights" else tuple(structure.perturb),
                    exploit=not regime.startswith("plain"), swap_envs=regime.endswith("_swap"),
                    eval_envs=structure.eval_envs, eval_steps=structure.eval_steps)
    pop = make_population(trainer, env, network, pbt, population, ppo.rollout_len)
    training = compile_chunked(pop.init, pop.run, num_updates=num_rounds, chunks=structure.progress_chunks,
                               run_kwarg="num_rounds")
    return CompiledPopulation(env, ppo, training, (net_config, obs_dim, env.num_actions))


@functools.lru_cache(maxsize=4)
def _compiled_planner(structure, cross_episodes: bool) -> CompiledPlanner:
    from innerlab.agents.planner import plan_rollout

    env = make_env(structure, "invest")

    def one(key, params):
        return plan_rollout(env, params, key, num_envs=structure.planner_envs, num_steps=structure.planner_steps,
                            num_simulations=structure.planner_simulations, max_depth=structure.planner_depth,
                            cross_episodes=cross_episodes, episode_info=EPISODE_INFO)

    return CompiledPlanner(env, jax.jit(jax.vmap(one, in_axes=(0, None))))


def _bin_curve(values: np.ndarray, points: int) -> tuple[np.ndarray, np.ndarray]:
    """values [S, U] -> (bin end update [B], nan-mean per bin [S, B]) with B = min(points, U)."""
    updates = values.shape[1]
    edges = np.linspace(0, updates, min(points, updates) + 1).astype(int)
    binned = np.stack([np.nanmean(values[:, a:b], axis=1) for a, b in zip(edges[:-1], edges[1:])], axis=1)
    return edges[1:], binned


@contextlib.contextmanager
def _quiet():
    """Silence numpy's 'Mean of empty slice' warnings (an all-nan bin is a legitimate nan)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _per_update(metric: np.ndarray) -> np.ndarray:
    """[S, rounds, interval, P] -> [S, rounds * interval, P]."""
    return metric.reshape(metric.shape[0], -1, metric.shape[-1])


def _update_curves(metrics: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A chunk's metrics for the live curves, one point per PPO update (not per PBT round):
    per-update ones [S, rounds, interval, P] as [S, updates, P]; per-round ones [S, rounds, ...]
    repeated over their round's updates."""
    interval = next(np.shape(v)[2] for v in metrics.values() if np.ndim(v) == 4)
    return {name: _per_update(value) if np.ndim(value) == 4 else np.repeat(value, interval, axis=1)
            for name, value in metrics.items()}


def exploitation_status(metrics: dict[str, np.ndarray]) -> str:
    """'exploitation 0.42': the mean exploitation rate over the last quarter of a chunk's updates."""
    exploited = _per_update(metrics["exploited"])
    with _quiet():
        return f"exploitation {np.nanmean(exploited[:, -max(1, exploited.shape[1] // 4):]):.2f}"


def run_job(config, condition, seeds: tuple[int, ...], progress=None) -> list[dict]:
    """Train a population per seed (or roll out a planner) for one condition; tidy rows."""
    if condition.fields["regime"] in PLANNERS:
        return _run_planner(config, condition.fields, seeds, progress)
    if condition.fields["learner"] in ("reinforce", "q"):
        return _run_krueger(config, condition.fields, seeds, progress)
    return _run_population(config, condition.fields, seeds, progress)


def _run_population(config, fields, seeds, progress) -> list[dict]:
    env_name, regime = fields["env"], fields["regime"]
    compiled = _compiled_population(structure_key(config), env_name, regime, round_interval(config, fields),
                                    fields["population"], rounds(config, fields))
    params = env_params(config, compiled.env, env_name, fields["pay"], fields["view"])
    lr = config.pd_lr if env_name == "pd" else config.lr
    ent = config.pd_ent_coef if env_name == "pd" else config.ent_coef
    hparams = broadcast_hparams(HParams(lr=lr, ent_coef=ent), fields["population"])

    state = compiled.training.init(base_keys(seeds), hparams, params)
    state, metrics = run_chunked(compiled.training, state, params, progress, exploitation_status,
                                 curves=_update_curves)
    # Every member of every seed's population, with its final hyper-parameters.
    save_agents("agent", state.members.params, network=compiled.network_spec,
                meta={"members": int(fields["population"]),
                      "lr": np.asarray(state.members.hparams.lr).tolist(),
                      "ent_coef": np.asarray(state.members.hparams.ent_coef).tolist()})
    series = {name: _per_update(metrics[name]) for name in CURVE_METRICS.values()}  # [S, U, P]
    updates = series["exploited"].shape[1]
    steps_per_update = compiled.ppo.steps_per_update
    tail = max(1, updates // 10)
    final_lr = np.exp(np.log(np.asarray(state.members.hparams.lr)).mean(axis=1))  # [S] geometric mean
    # Env steps of each member, counted by its update counter inside the jitted loop (members update
    # in lockstep, and PBT never copies the counter, so the mean over members is every member's count).
    measured_steps = np.asarray(state.members.update).mean(axis=1) * steps_per_update  # [S]

    total_steps = int(updates * steps_per_update)
    rows: list[dict] = []

    def add(stage, env_steps, values, metric):
        rows.extend({"stage": stage, "env_steps": int(env_steps), "seed": int(seed), "metric": metric,
                     "value": float(values[s])} for s, seed in enumerate(seeds))

    with _quiet():  # an all-nan window (no episode ended in it) is a legitimate nan
        for metric, name in CURVE_METRICS.items():
            per_member = np.nanmean(series[name][:, -tail:], axis=1)  # [S, P]
            add("final", total_steps, np.nanmean(per_member, axis=1), metric)
            ends, binned = _bin_curve(np.nanmean(series[name], axis=2), config.curve_points)
            for b, end in enumerate(ends):
                add("curve", end * steps_per_update, binned[:, b], metric)
        member_exploitation = np.nanmean(series["exploited"][:, -tail:], axis=1)  # [S, P]
    add("final", total_steps, (member_exploitation > 0.5).mean(axis=1), "exploiting_members")
    add("final", total_steps, final_lr, "final_lr")
    rows.extend({"stage": "train", "env_steps": int(measured_steps[s]), "seed": int(seed), "metric": "env_steps",
                 "value": float(measured_steps[s])} for s, seed in enumerate(seeds))
    return rows


def _run_krueger(config, fields, seeds, progress) -> list[dict]:
    """Krueger et al.'s own learners (agents/myopia_unit_test.py), one trial per seed, all trials in
    one jitted program. Rows: final P(cooperate) (REINFORCE: the mean over agents of sigmoid(param) at
    the last step, the end of their figure's curve; Q: the mean over learners of each one's running
    share of cooperation at the last step, what their Q script plots), the share of agents that
    cooperate more often than not, REINFORCE's final learning rate (geometric mean over agents), and
    the curve."""
    from innerlab.agents.myopia_unit_test import UnitTestConfig, q_trials, reinforce_trials

    learner, interval = fields["learner"], fields["interval"]
    unit = UnitTestConfig(n_agents=fields["population"], n_trials=len(seeds), interval=interval,
                          env_swap="swap" in fields["regime"], beta=float(config.krueger_beta),
                          explore=fields["regime"] != "pbt_weights", epsilon=float(config.q_epsilon),
                          explore_factors=(1.25, 0.8) if fields["regime"].endswith("_sym") else (1.2, 0.8),
                          n_steps=config.krueger_steps if learner == "reinforce" else config.q_steps)
    keys = base_keys(seeds)
    if learner == "reinforce":
        out = {k: np.asarray(v) for k, v in reinforce_trials(keys, unit).items()}
        curve = out["p_cooperate"]  # [S, steps]
        final = curve[:, -1]
        cooperators = (out["param"] > 0).mean(axis=1)  # sigmoid(param) > 0.5
        save_agents("agent", {"param": out["param"], "lr": out["lr"]}, kind="krueger_reinforce",
                    meta={"members": unit.n_agents, "policy": "P(cooperate) = sigmoid(param)"})
    else:
        out = {k: np.asarray(v) for k, v in q_trials(keys, unit).items()}
        curve = out["cooperate"]
        final = out["running"][:, -1]
        cooperators = (out["q"][..., 1] > out["q"][..., 0]).mean(axis=1)
        save_agents("agent", {"q": out["q"]}, kind="krueger_q",
                    meta={"members": unit.n_agents, "policy": "epsilon-greedy on q[..., (defect, cooperate)]"})
    if progress is not None:
        progress(1.0, f"P(cooperate) {final.mean():.2f}")
    rows: list[dict] = []

    def add(stage, steps, values, metric):
        rows.extend({"stage": stage, "env_steps": int(steps), "seed": int(seed), "metric": metric,
                     "value": float(values[s])} for s, seed in enumerate(seeds))

    add("final", unit.n_steps, final, "exploitation_rate")
    add("final", unit.n_steps, cooperators, "exploiting_members")
    if learner == "reinforce":
        add("final", unit.n_steps, np.exp(np.log(out["lr"]).mean(axis=1)), "final_lr")
        add("final", unit.n_steps, out["reward"][:, -max(1, unit.n_steps // 10):].mean(axis=1), "episode_return")
    ends, binned = _bin_curve(curve, config.curve_points)
    for b, end in enumerate(ends):
        add("curve", end, binned[:, b], "exploitation_rate")
    add("train", unit.n_steps, np.full(len(seeds), unit.n_steps), "env_steps")
    return rows


def _run_planner(config, fields, seeds, progress) -> list[dict]:
    compiled = _compiled_planner(structure_key(config), fields["regime"] == "planner_crossing")
    params = env_params(config, compiled.env, "invest", fields["pay"], fields["view"])
    out = {k: np.asarray(v) for k, v in compiled.rollout(base_keys(seeds), params).items()}
    if progress is not None:
        progress(1.0, f"exploitation {np.nanmean(out['exploited']):.2f}")
    rows = []
    names = {"exploitation_rate": "exploited", "episode_return": "own_return",
             "cross_episode_return": "cross_return", "received_return": "episode_return", "episodes": "episodes"}
    for s, seed in enumerate(seeds):
        for metric, name in names.items():
            value = out[name][s] if out["episodes"][s] > 0 or name == "episodes" else np.nan
            rows.append({"stage": "final", "env_steps": int(config.planner_envs * config.planner_steps),
                         "seed": int(seed), "metric": metric, "value": float(value)})
    return rows
