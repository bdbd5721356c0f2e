"""Training and evaluation for the cross-episodic experiment (the JAX part, imported lazily).

One condition = one population trainer (agents/pbt.py) vmapped over seeds, run in equal
jitted chunks for progress; a seed is one independent population. Compiled functions are
cached per structure (world, regime, interval, population and the shape-setting config);
rewards, payment timing, visibility and learning rates are traced params, so conditions
that differ only in them share a compile.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from innerlab.agents import HParams, NetworkConfig, PPOConfig, make_network, make_train
from innerlab.agents.pbt import PBTConfig, broadcast_hparams, make_population
from innerlab.envs import ObjectWorld, make_params
from innerlab.envs.persistent import InvestWorld, MyopiaPD
from innerlab.experiments.base import structure_key

EPISODE_INFO = ("exploited", "own_return", "cross_return")
# metrics.parquet metric name <- PPO/env metric name
CURVE_METRICS = {"exploitation_rate": "exploited", "episode_return": "own_return",
                 "cross_episode_return": "cross_return", "received_return": "episode_return"}

# Config fields that change neither shapes nor code (traced, or only pick conditions).
_TRACED_FIELDS = ("num_seeds", "seed_offset", "env", "regime", "planners", "control", "view", "population",
                  "interval", "sweep_interval", "sweep_population", "sweep_env", "pd_temptation", "pd_cooperation",
                  "pd_observe_state", "pd_lr", "cost", "bonus", "lr", "ent_coef")


def _structure_key(config):
    return structure_key(config, _TRACED_FIELDS)


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
    if env_name == "pd":
        # One-step episodes that all terminate: the learner is myopic whatever gamma is.
        return PPOConfig(num_envs=structure.pd_num_envs, rollout_len=structure.pd_rollout_len,
                         total_steps=structure.pd_steps, update_epochs=1, num_minibatches=1, gamma=0.0,
                         anneal_lr=False)
    return PPOConfig(num_envs=structure.num_envs, rollout_len=structure.rollout_len,
                     total_steps=structure.total_steps, update_epochs=structure.update_epochs,
                     num_minibatches=structure.num_minibatches, gamma=structure.gamma, anneal_lr=False)


def schedule(structure, env_name: str, interval: int) -> tuple[int, int]:
    """(rounds per chunk, chunks): whole PBT rounds, in progress_chunks equal chunks (rounded down)."""
    updates = ppo_config(structure, env_name).num_updates
    chunk = max(updates // interval // structure.progress_chunks, 1)
    return chunk, max(updates // interval // chunk, 1)


@functools.lru_cache(maxsize=32)
def _compiled_population(structure, env_name: str, regime: str, interval: int, population: int):
    env = make_env(structure, env_name)
    obs_dim = env.observation_space(None).shape[0]
    width, depth = (16, 1) if env_name == "pd" else (structure.width, structure.depth)
    network = make_network(NetworkConfig(arch="mlp", width=width, depth=depth), obs_dim, env.num_actions)
    ppo = ppo_config(structure, env_name)
    trainer = make_train(ppo, env, network, episode_info=EPISODE_INFO)
    pbt = PBTConfig(interval=max(interval, 1), truncation=structure.truncation, fitness=structure.fitness,
                    perturb=(1.0,) if regime == "pbt_weights" else tuple(structure.perturb),
                    exploit=regime != "plain", swap_envs=regime == "pbt_swap", eval_envs=structure.eval_envs,
                    eval_steps=structure.eval_steps)
    pop = make_population(trainer, env, network, pbt, population, ppo.rollout_len)
    chunk, _ = schedule(structure, env_name, max(interval, 1))
    init = jax.jit(jax.vmap(pop.init, in_axes=(0, None, None)))
    run = jax.jit(jax.vmap(functools.partial(pop.run, num_rounds=chunk), in_axes=(0, None)))
    return env, ppo, init, run


@functools.lru_cache(maxsize=4)
def _compiled_planner(structure, cross_episodes: bool):
    from innerlab.agents.planner import plan_rollout

    env = make_env(structure, "invest")

    def one(key, params):
        return plan_rollout(env, params, key, num_envs=structure.planner_envs, num_steps=structure.planner_steps,
                            num_simulations=structure.planner_simulations, max_depth=structure.planner_depth,
                            cross_episodes=cross_episodes, episode_info=EPISODE_INFO)

    return env, jax.jit(jax.vmap(one, in_axes=(0, None)))


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


def run_condition(config, fields: dict[str, Any], seeds: tuple[int, ...], progress=None) -> list[dict]:
    if fields["regime"] in ("planner_crossing", "planner_bounded"):
        return _run_planner(config, fields, seeds, progress)
    return _run_population(config, fields, seeds, progress)


def _run_population(config, fields, seeds, progress) -> list[dict]:
    structure = _structure_key(config)
    env_name, regime = fields["env"], fields["regime"]
    interval = fields["interval"] if regime != "plain" else config.interval
    population = fields["population"]
    env, ppo, init, run = _compiled_population(structure, env_name, regime, interval, population)
    chunk, chunks = schedule(structure, env_name, interval)
    params = env_params(config, env, env_name, fields["pay"], fields["view"])
    lr = config.pd_lr if env_name == "pd" else config.lr
    ent = 0.0 if env_name == "pd" else config.ent_coef
    hparams = broadcast_hparams(HParams(lr=lr, ent_coef=ent), population)

    state = init(jax.vmap(jax.random.key)(jnp.asarray(seeds, dtype=jnp.uint32)), hparams, params)
    collected: dict[str, list[np.ndarray]] = {k: [] for k in CURVE_METRICS.values()}
    for i in range(chunks):
        state, metrics = run(state, params)
        for name in collected:
            m = np.asarray(metrics[name])  # [S, rounds, interval, P]
            collected[name].append(m.reshape(m.shape[0], -1, m.shape[-1]))
        if progress is not None:
            recent = np.nanmean(collected["exploited"][-1][:, -max(1, chunk * interval // 4):])
            progress((i + 1) / chunks, f"exploitation {recent:.2f}")
    series = {name: np.concatenate(parts, axis=1) for name, parts in collected.items()}  # [S, U, P]
    updates = series["exploited"].shape[1]
    steps_per_update = ppo.steps_per_update
    tail = max(1, updates // 10)
    final_lr = np.exp(np.log(np.asarray(state.members.hparams.lr)).mean(axis=1))  # [S] geometric mean

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
    return rows


def _run_planner(config, fields, seeds, progress) -> list[dict]:
    structure = _structure_key(config)
    env, evaluate = _compiled_planner(structure, fields["regime"] == "planner_crossing")
    params = env_params(config, env, "invest", fields["pay"], fields["view"])
    out = {k: np.asarray(v) for k, v in evaluate(jax.vmap(jax.random.key)(jnp.asarray(seeds, dtype=jnp.uint32)), params).items()}
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
