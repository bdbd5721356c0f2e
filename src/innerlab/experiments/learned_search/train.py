"""Training and evaluation for the learned-search experiment (the JAX part, imported lazily).

One trained condition = PPO on the training levels, one jitted program vmapped over seeds (conv
agents in seed groups of 2 on a CPU, `training.seed_groups`), run in chunks for progress. Then,
per seed, jitted rollouts of every held-out level, one environment per level (its own bank of
one level), first episode only:

- thinking steps: before its first action the agent runs `n` extra forward passes on the first
  observation (a DRC: n * N more ticks), n traced, so one program serves every n;
- the same rollouts give solve rates per difficulty bin, returns, and pacing (cycles);
- on the validation levels, a rollout that also records the per-cell features of the trained
  network and of an untrained one of the same architecture fed the same observations; linear
  probes are fitted on half the levels and scored on the other half (probes.py);
- references: a uniformly random policy and MCTS (mctx) over the true env with a uniform prior
  and zero leaf values, at several budgets.

Everything after the rollouts is numpy on the host (scoring.py): the traces are [S, T, L].
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from innerlab._io import level_cache_dir
from innerlab.agents import HParams, Network, NetworkConfig, PPOConfig, make_network, make_train
from innerlab.agents.planner import make_planner_search
from innerlab.envs.sokoban import Sokoban, bank_params, level_params
from innerlab.envs.sokoban_levels import LevelSet, level_sets
from innerlab.experiments.fields import structure_key
from innerlab.experiments.learned_search import probes, scoring
from innerlab.experiments.learned_search.config import DIFFICULTIES
from innerlab.experiments.outputs import save_agents
from innerlab.experiments.training import (ChunkedRun, compile_chunked, final_return, run_chunked, seed_groups,
                                           seed_keys, stack_seeds, substream)

STREAMS = ("train", "eval", "untrained", "probe", "planner")
RECORD = ("solved", "pushed", "push_from", "push_dir", "player_pos", "thought")
CPU_SEED_GROUP = {"drc": 2, "resnet": 2}  # conv agents (see training.seed_groups)
SPLITS = ("train", "valid", "test")
LEVELS_PER_WORKER = 10_000


# --- levels (generated once per level config, cached on disk) ---------------------------------

@functools.lru_cache(maxsize=4)
def levels(config) -> dict[str, LevelSet]:
    """The train / valid / test level sets of `config` (disjoint; the same for every agent seed)."""
    counts = {"train": config.train_levels, "valid": config.valid_levels, "test": config.test_levels}
    # The paper preset's 101,500 Boxoban-size levels take about 45 ms each to solve (benchmarks/
    # README.md): over an hour in one process. Large sets are solved in a process per core (the
    # levels do not depend on the number of workers); small ones are not worth the start-up.
    workers = (os.cpu_count() or 1) if sum(counts.values()) >= LEVELS_PER_WORKER else 1
    return level_sets(config.size, config.num_boxes, config.level_seed, counts, level_cache_dir(), workers=workers)


def difficulty_edges(solution_length: np.ndarray) -> tuple[float, float]:
    """The tertiles of the test levels' optimal solution lengths: easy <= e1 < medium <= e2 < hard."""
    e1, e2 = np.quantile(solution_length, [1 / 3, 2 / 3])
    return float(e1), float(e2)


def difficulty(solution_length: np.ndarray, edges: tuple[float, float]) -> np.ndarray:
    """[L] labels from DIFFICULTIES."""
    index = (solution_length > edges[0]).astype(int) + (solution_length > edges[1]).astype(int)
    return np.asarray(DIFFICULTIES)[index]


def per_level(env: Sokoban, level_set: LevelSet, max_steps: int, think_cost: float):
    """EnvParams with a leading [L] axis, level i a bank of one level: rolled out one env per level."""
    bank = bank_params(env, level_set, max_steps_in_episode=max_steps, think_cost=think_cost)
    return jax.vmap(level_params, (None, 0))(bank, jnp.arange(len(level_set)))


# --- networks -------------------------------------------------------------------------------

def network_config(config, env: Sokoban, arch: str) -> NetworkConfig:
    if arch == "lstm":
        return NetworkConfig(arch="lstm", width=config.lstm_width)
    if arch in ("random", "planner"):
        return NetworkConfig(arch="random", width=1)
    return NetworkConfig(arch=arch, width=config.width, drc_depth=config.drc_depth, ticks=config.ticks,
                         mlp_width=config.mlp_width, resnet_blocks=config.resnet_blocks,
                         image_shape=env.image_shape)


def make_env(config, variant: str) -> Sokoban:
    return Sokoban(size=config.size, think_action=variant == "think")


# --- rollouts ---------------------------------------------------------------------------------

def rollout_level(env: Sokoban, network: Network, params, shadow_params, key, level, n_think,
                  num_steps: int, greedy: bool, sample: bool, with_features: bool) -> dict:
    """Play one level (a bank of one) for `num_steps` steps, after `n_think` (traced) extra
    forward passes on the first observation. Returns [T] traces of RECORD, `done`, `reward`,
    `action`, and with `with_features` the per-cell features [T, F, H, W] of the acting network
    (`features`) and of `shadow_params` fed the same observations (`shadow_features`)."""
    k_reset, key = jax.random.split(key)
    obs, state = env.reset(k_reset, level)
    carry = network.initial_carry()

    def think(_, c):
        c, _, _ = network.apply(params, c, obs, jnp.bool_(False))
        return c

    carry = jax.lax.fori_loop(0, n_think, think, carry)  # zero carry: no reset needed
    shadow_carry = network.initial_carry()
    shadow_carry = jax.lax.fori_loop(
        0, n_think, lambda _, c: network.apply(shadow_params, c, obs, jnp.bool_(False))[0], shadow_carry)

    def body(loop, _):
        key, obs, state, carry, shadow_carry, is_first = loop
        key, k_act, k_env = jax.random.split(key, 3)
        out = {}
        if with_features:
            out["features"] = network.features(params, carry, obs, is_first)
            out["shadow_features"] = network.features(shadow_params, shadow_carry, obs, is_first)
            shadow_carry, _, _ = network.apply(shadow_params, shadow_carry, obs, is_first)
        carry, logits, _ = network.apply(params, carry, obs, is_first)
        action = jnp.argmax(logits) if greedy and not sample else jax.random.categorical(k_act, logits)
        obs, state, reward, terminated, truncated, info = env.step(k_env, state, action, level)
        done = terminated | truncated
        out.update({"done": done, "reward": reward, "action": action, **{k: info[k] for k in RECORD}})
        return (key, obs, state, carry, shadow_carry, done), out

    init = (key, obs, state, carry, shadow_carry, jnp.bool_(False))
    _, trace = jax.lax.scan(body, init, None, length=num_steps)
    return trace


def planner_rollout(env: Sokoban, search, key, levels_params, shared_params, num_steps: int) -> dict:
    """MCTS over the true env on every level at once: reset each env into its level, then
    `num_steps` searches and steps (the shared bank only supplies rewards and the auto-reset,
    which the episode-bounded search never looks past). Returns [T, L] traces."""
    num_levels = jax.tree.leaves(levels_params)[0].shape[0]
    k_reset, key = jax.random.split(key)
    _, state = jax.vmap(env.reset)(jax.random.split(k_reset, num_levels), levels_params)
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def body(loop, _):
        key, state = loop
        key, k_search, k_env = jax.random.split(key, 3)
        action = search(k_search, state, shared_params).action.astype(jnp.int32)
        _, state, reward, terminated, truncated, info = step(
            jax.random.split(k_env, num_levels), state, action, shared_params)
        out = {"done": terminated | truncated, "reward": reward, "action": action,
               **{k: info[k] for k in RECORD}}
        return (key, state), out

    _, trace = jax.lax.scan(body, (key, state), None, length=num_steps)
    return trace


# --- compiled programs (once per structure and architecture) --------------------------------

class Compiled(NamedTuple):
    env: Sokoban
    network: Network
    network_spec: tuple      # (NetworkConfig, obs_dim, num_actions): what rebuilds `network`
    ppo: PPOConfig
    training: ChunkedRun | None
    init_params: Callable    # keys [S] -> params [S] (untrained networks)
    play: Callable           # (params [S], shadow [S], keys [S], levels [L], n_think) -> traces [S, T, L]
    play_features: Callable  # same, with features


@functools.lru_cache(maxsize=16)
def _compiled(structure, arch: str, variant: str) -> Compiled:
    env = make_env(structure, variant)
    obs_dim = env.observation_space(None).shape[0]
    net_config = network_config(structure, env, arch)
    network = make_network(net_config, obs_dim, env.num_actions)
    ppo = PPOConfig(total_steps=structure.total_steps, **structure.ppo_kwargs())
    training = None
    if arch not in ("random", "planner"):
        trainer = make_train(ppo, env, network, episode_info=("solved",))
        training = compile_chunked(trainer.init, trainer.run, ppo.num_updates, structure.progress_chunks)
    sample = arch == "random"

    def play_fn(with_features):
        def one_seed(params, shadow, key, levels_params, n_think):
            keys = jax.random.split(key, jax.tree.leaves(levels_params)[0].shape[0])
            one = functools.partial(rollout_level, env, network, params, shadow, num_steps=structure.max_steps,
                                    greedy=structure.greedy_eval, sample=sample, with_features=with_features)
            trace = jax.vmap(lambda k, lv: one(k, lv, n_think))(keys, levels_params)
            return jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), trace)  # [T, L, ...]
        return jax.jit(jax.vmap(one_seed, in_axes=(0, 0, 0, None, None)))

    return Compiled(env=env, network=network, network_spec=(net_config, obs_dim, env.num_actions), ppo=ppo,
                    training=training,
                    init_params=jax.jit(jax.vmap(network.init)), play=play_fn(False),
                    play_features=play_fn(True) if network.features is not None else None)


@functools.lru_cache(maxsize=8)
def _planner(structure, budget: int) -> Callable:
    env = make_env(structure, "fixed")
    search = make_planner_search(env, num_simulations=budget, max_depth=structure.planner_depth,
                                 cross_episodes=False)

    def one_seed(key, levels_params, shared_params):
        return planner_rollout(env, search, key, levels_params, shared_params, structure.max_steps)

    return jax.jit(jax.vmap(one_seed, in_axes=(0, None, None)))


# --- the job ----------------------------------------------------------------------------------

def row(seed, metric, value, split="test", thinking_steps=0, difficulty="all", budget=0, probe="-") -> dict:
    return {"split": split, "thinking_steps": int(thinking_steps), "difficulty": difficulty, "budget": int(budget),
            "probe": probe, "seed": int(seed), "metric": metric, "value": float(value)}


class Trained(NamedTuple):
    params: Any
    final_return: np.ndarray   # [S]
    final_solved: np.ndarray   # [S] share of training episodes solved over the last 10% of updates
    env_steps: np.ndarray      # [S]


def train(config, compiled: Compiled, arch: str, seeds, progress=None) -> Trained:
    structure_env = compiled.env
    train_params = bank_params(structure_env, levels(config)["train"], max_steps_in_episode=config.max_steps,
                               think_cost=config.think_cost)
    hparams = HParams(lr=jnp.float32(config.lstm_lr if arch == "lstm" else config.lr),
                      ent_coef=jnp.float32(config.ent_coef))
    groups = seed_groups(tuple(seeds), CPU_SEED_GROUP.get(arch))
    results = []
    for g, group in enumerate(groups):
        state = compiled.training.init(seed_keys(group, STREAMS)["train"], hparams, train_params)
        state, metrics = run_chunked(compiled.training, state, train_params, progress, _status,
                                     fraction=(0.6 * g / len(groups), 0.6 * (g + 1) / len(groups)), seeds=group)
        steps = np.asarray(state.update) * compiled.ppo.steps_per_update
        results.append(Trained(state.params, final_return(metrics["episode_return"]),
                               final_return(metrics["solved"]), steps))
    trained = Trained(stack_seeds([r.params for r in results]),
                      *(np.concatenate([getattr(r, f) for r in results])
                        for f in ("final_return", "final_solved", "env_steps")))
    save_agents("agent", trained.params, network=compiled.network_spec)
    return trained


def _status(metrics: dict[str, np.ndarray]) -> str:
    solved = metrics["solved"][..., -max(1, metrics["solved"].shape[-1] // 4):]
    with np.errstate(all="ignore"):
        return f"train solved {np.nanmean(solved):.2f}" if np.isfinite(solved).any() else "train solved n/a"


def _play_groups(compiled: Compiled, play: Callable, arch, seeds, params, shadow, stream: str, index: int,
                 levels_params, n_think: int) -> dict[str, np.ndarray]:
    """`play` over seed groups; numpy traces [S, T, L, ...]."""
    out, start = [], 0
    for group in seed_groups(tuple(seeds), CPU_SEED_GROUP.get(arch)):
        take = lambda tree, s=start, n=len(group): jax.tree.map(lambda x: x[s:s + n], tree)  # noqa: E731
        keys = substream(seed_keys(group, STREAMS)[stream], index)
        out.append(jax.tree.map(np.asarray, play(take(params), take(shadow), keys, levels_params,
                                                 jnp.int32(n_think))))
        start += len(group)
    return {k: np.concatenate([o[k] for o in out]) for k in out[0]}


def run_job(config, condition, seeds: tuple[int, ...], progress=None) -> list[dict]:
    """Train (unless random / planner) and evaluate one condition; tidy rows with the extra
    columns split, thinking_steps, difficulty, budget and probe."""
    arch, variant = condition.fields["arch"], condition.fields["variant"]
    sets = levels(config)
    test, valid = sets["test"], sets["valid"]
    edges = difficulty_edges(test.solution_length)
    bins = difficulty(test.solution_length, edges)
    rows: list[dict] = []
    for d in DIFFICULTIES:  # what each bin means, for the report
        lengths = test.solution_length[bins == d]
        for seed in seeds:
            rows.append(row(seed, "optimal_length", lengths.mean() if len(lengths) else np.nan, difficulty=d))
            rows.append(row(seed, "levels", len(lengths), difficulty=d))
    if arch == "planner":
        return rows + _planner_rows(config, test, bins, seeds, progress)

    compiled = _compiled(structure_key(config), arch, variant)
    env = compiled.env
    if arch == "random":
        params = shadow = jax.tree.map(lambda x: jnp.broadcast_to(x, (len(seeds), *jnp.shape(x))), {})
    else:
        trained = train(config, compiled, arch, seeds, progress)
        params = trained.params
        shadow = compiled.init_params(seed_keys(seeds, STREAMS)["untrained"])
        for i, seed in enumerate(seeds):
            rows.append(row(seed, "train_return", trained.final_return[i], split="train"))
            rows.append(row(seed, "train_solved", trained.final_solved[i], split="train"))
            rows.append(row(seed, "env_steps", trained.env_steps[i], split="train"))

    # The training distribution: as many training levels as there are test levels.
    train_sample = sets["train"].subset(np.arange(min(len(test), len(sets["train"]))))
    play = functools.partial(_play_groups, compiled, compiled.play, arch, seeds, params, shadow)
    trace = play("eval", 0, per_level(env, train_sample, config.max_steps, config.think_cost), 0)
    rows += _episode_rows(scoring.episodes(trace, train_sample, config.pacing_window), seeds, "train", 0, None)

    test_params = per_level(env, test, config.max_steps, config.think_cost)
    steps = (0,) if arch == "random" else config.thinking_steps
    first_actions = None
    for j, n in enumerate(steps):
        # The same key for every n (common random numbers): with sampled actions, an agent the
        # extra passes do not change (the ResNet) takes exactly the same actions.
        trace = play("eval", 1, test_params, n)
        scores = scoring.episodes(trace, test, config.pacing_window)
        rows += _episode_rows(scores, seeds, "test", n, bins)
        if first_actions is None:
            first_actions = trace["action"]
        else:  # do the extra passes change what the agent does? (the ResNet's must not)
            for i, seed in enumerate(seeds):
                rows.append(row(seed, "action_agreement", scoring.agreement(first_actions[i], trace["action"][i],
                                                                            trace["done"][i]), thinking_steps=n))
        if variant == "think":
            for i, seed in enumerate(seeds):
                rows.append(row(seed, "think_length_corr",
                                scoring.correlation(scores["thinks"][i], test.solution_length), thinking_steps=n))
        if progress is not None:
            progress(0.6 + 0.3 * (j + 1) / len(steps), f"thinking steps {n}: solved "
                     f"{np.nanmean(scores['solved']):.2f}")

    if compiled.play_features is not None and arch != "random":
        trace = _play_groups(compiled, compiled.play_features, arch, seeds, params, shadow, "eval", 99,
                             per_level(env, valid, config.max_steps, config.think_cost), 0)
        labels = scoring.probe_labels(trace, valid, config.probe_horizon)
        for features, suffix in (("features", ""), ("shadow_features", " (untrained)")):
            accuracy = probes.fit_and_score(trace[features], labels, seed_keys(seeds, STREAMS)["probe"])
            for name in config.probes:
                values = accuracy[name]
                for i, seed in enumerate(seeds):
                    rows.append(row(seed, "probe_accuracy", values[i], split="valid", probe=name + suffix))
        chance = probes.chance(labels)
        for name in config.probes:
            values = chance[name]
            for i, seed in enumerate(seeds):
                rows.append(row(seed, "probe_chance", values[i], split="valid", probe=name))
    return rows


def _episode_rows(scores: dict[str, np.ndarray], seeds, split: str, n: int, bins) -> list[dict]:
    """Per seed: each score's mean over all levels, and over each difficulty bin when `bins`."""
    out = []
    metrics = {"solved": "solved", "episode_return": "episode_return", "cycle_rate": "cycled",
               "cycle_rate_solved": "cycled_solved", "episode_length": "length", "think_rate": "think_rate"}
    for metric, key in metrics.items():
        values = scores[key]  # [S, L]
        groups = [("all", np.ones(values.shape[1], bool))]
        if bins is not None:
            groups += [(d, bins == d) for d in DIFFICULTIES]
        for label, mask in groups:
            if not mask.any():
                continue
            for i, seed in enumerate(seeds):
                kept = values[i, mask][~np.isnan(values[i, mask])]  # cycle_rate_solved: solved levels only
                out.append(row(seed, metric, kept.mean() if kept.size else np.nan, split=split, thinking_steps=n,
                               difficulty=label))
    return out


def _planner_rows(config, test: LevelSet, bins, seeds, progress) -> list[dict]:
    env = make_env(config, "fixed")
    levels_params = per_level(env, test, config.max_steps, 0.0)
    shared = bank_params(env, test, max_steps_in_episode=config.max_steps)
    keys = seed_keys(seeds, STREAMS)["planner"]
    rows = []
    for j, budget in enumerate(sorted(config.planner_budgets)):
        run = _planner(structure_key(config), int(budget))
        trace = jax.tree.map(np.asarray, run(substream(keys, j), levels_params, shared))
        scores = scoring.episodes(trace, test, config.pacing_window)
        for r in _episode_rows(scores, seeds, "test", 0, bins):
            rows.append({**r, "budget": int(budget)})
        if progress is not None:
            progress((j + 1) / len(config.planner_budgets),
                     f"planner budget {budget}: solved {np.nanmean(scores['solved']):.2f}")
    return rows
