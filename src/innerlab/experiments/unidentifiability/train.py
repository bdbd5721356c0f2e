"""Training and evaluation for the unidentifiability experiment (the JAX part, imported lazily).

One condition = one jitted PPO training function vmapped over seeds on a `LevelSet` of
training levels, run in chunks for progress (exactly the configured updates); then one jitted
rollout of every test level per seed (`rollout_levels`). What the agent did in each level's
first episode is scored on the host from the recorded trace (which object it reached first,
after how many steps, whether it passed the top-right corner; see scoring.py), so the metrics
are plain numpy over [seeds, levels]. Compiled functions are cached per structure (the
shape-setting config, task, architecture, width, depth and training length).
"""

from __future__ import annotations

import functools
import os
import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from innerlab.agents import (HParams, Network, NetworkConfig, PPOConfig, make_network, make_train, network_act,
                             rollout_levels)
from innerlab.envs.levels import (NEIGHBOURS, LevelSet, LevelSetParams, ProxySpec, Suite, maze_env, maze_levels,
                                  proxy_levels, suite_kinds, training_levels)
from innerlab.envs.procgen_maze import ProcgenMaze, procgen_maze_levels
from innerlab.experiments.fields import structure_key
from innerlab.experiments.outputs import save_agents
from innerlab.experiments.training import (ChunkedRun, compile_chunked, final_return, return_status, run_chunked,
                                           seed_groups, seed_keys, stack_seeds, substream)
from innerlab.experiments.unidentifiability.scoring import (concat_episodes, first_episode, score_maze_suite,
                                                            score_proxy_suite)

STREAMS = ("train", "eval")  # eval: one substream per test suite, in the suites' order
RECORD = ("collected", "agent_pos", "true_reward")
# Conv networks train in vmapped seed groups of 2 on a CPU (`training.seed_groups`).
CPU_SEED_GROUP = {"cnn": 2, "impala": 2}
# Maze as published: reward for the cheese. Procgen gives 10, and the authors' training code divides
# rewards by a running std of the discounted return (VecNormalize(ob=False), normalize_rew: True); our
# PPO has no reward normalisation, so the cheese is worth 1 (the scale their normalisation removes).
PAPER_MAZE_REWARD = 1.0


def _groups(arch: str, seeds: tuple[int, ...]) -> list[tuple[int, ...]]:
    return seed_groups(seeds, CPU_SEED_GROUP.get(arch))


def proxy_spec(config) -> ProxySpec:
    return ProxySpec(size=config.grid_size, num_objects=config.num_objects, corner=config.corner,
                     true_proxy=config.true_proxy, maze=config.maze_walls, max_steps=config.max_steps)


# --- levels (cached: the same for every condition and seed of a run) --------------------------

@functools.lru_cache(maxsize=4)
def proxy_suites(config) -> dict[str, Any]:
    spec = proxy_spec(config)
    suites = {"train": proxy_levels(spec, "aligned", config.test_levels, config.level_seed + 7)}
    for i, kind in enumerate(suite_kinds(spec.proxies)):
        suites[kind] = proxy_levels(spec, kind, config.test_levels, config.level_seed + 100 + i)
    return suites


@functools.lru_cache(maxsize=8)
def proxy_train_levels(config, diversity: float):
    return training_levels(proxy_spec(config), config.train_levels, diversity, config.level_seed)


@functools.lru_cache(maxsize=8)
def maze_train_levels(config, diversity: float):
    return maze_levels(config.maze_size, config.train_levels, config.level_seed + 11, "corner", diversity,
                       openings=config.maze_openings, max_steps=config.maze_max_steps)


@functools.lru_cache(maxsize=4)
def maze_suites(config) -> dict[str, Any]:
    return {"train": maze_levels(config.maze_size, config.test_levels, config.level_seed + 13, "corner", 0.0,
                                 openings=config.maze_openings, max_steps=config.maze_max_steps),
            "test": maze_levels(config.maze_size, config.test_levels, config.level_seed + 17, "anywhere",
                                openings=config.maze_openings, max_steps=config.maze_max_steps)}


@functools.lru_cache(maxsize=8)
def paper_train_levels(config, rand_region: int):
    return procgen_maze_levels(config.maze_paper_world, config.maze_paper_train_levels, config.level_seed + 19,
                               rand_region, PAPER_MAZE_REWARD, config.maze_paper_max_steps)


@functools.lru_cache(maxsize=8)
def paper_suites(config, rand_region: int) -> dict[str, Any]:
    """'train': fresh mazes drawn as in training (can it solve them?); 'test': cheese anywhere (procgen's
    vanilla maze, the authors' test env)."""
    world, count, steps = config.maze_paper_world, config.maze_paper_test_levels, config.maze_paper_max_steps
    return {"train": procgen_maze_levels(world, count, config.level_seed + 23 + rand_region, rand_region,
                                         PAPER_MAZE_REWARD, steps),
            "test": procgen_maze_levels(world, count, config.level_seed + 29, None, PAPER_MAZE_REWARD, steps)}


# --- networks, training and evaluation (compiled once per structure) -------------------------

def make_world(config, task: str):
    if task == "maze_paper":
        return ProcgenMaze(config.maze_paper_world, config.maze_paper_pixels or None)
    return proxy_spec(config).env() if task == "proxies" else maze_env(config.maze_size)


def network_config(config, env, arch: str, width: int, depth: int) -> NetworkConfig:
    image = None
    if arch == "impala":
        return NetworkConfig(arch="impala", width=width, image_shape=env.image_shape, mlp_width=256)
    if arch == "cnn":
        n = 2 * env.size - 1
        image = (env.image_channels - 1, n, n)  # the egocentric view drops the agent plane
    if arch == "random":
        return NetworkConfig(arch="random", width=1, depth=1)
    heads = 2 if width % 2 == 0 else 1
    return NetworkConfig(arch=arch, width=width, depth=depth, context=config.context, heads=heads,
                         image_shape=image)


class Compiled(NamedTuple):
    world: Any            # the ObjectWorld the levels configure
    network: Network
    network_spec: tuple   # (NetworkConfig, obs_dim, num_actions): what rebuilds `network`
    ppo: PPOConfig
    training: ChunkedRun
    rollout: Callable     # (params [S], keys [S], levels, num_steps) -> trace {name: [S, T, L, ...]}


@functools.lru_cache(maxsize=24)
def _compiled(structure, task: str, arch: str, width: int, depth: int, total_steps: int) -> Compiled:
    world = make_world(structure, task)
    env = LevelSet(world)
    obs_dim = world.observation_space(None).shape[0]
    net_config = network_config(structure, world, arch, width, depth)
    network = make_network(net_config, obs_dim, world.num_actions)
    # A training length under one update trains one update (see config.env_steps).
    if task == "maze_paper":
        per_update = structure.maze_paper_num_envs * structure.maze_paper_rollout_len
        ppo = PPOConfig(total_steps=max(total_steps, per_update), num_envs=structure.maze_paper_num_envs,
                        rollout_len=structure.maze_paper_rollout_len, update_epochs=structure.maze_paper_epochs,
                        num_minibatches=structure.maze_paper_minibatches, gamma=structure.maze_paper_gamma)
    else:
        steps = max(total_steps, structure.num_envs * structure.rollout_len)
        ppo = PPOConfig(total_steps=steps, **structure.ppo_kwargs())
    trainer = make_train(ppo, env, network)
    training = compile_chunked(trainer.init, trainer.run, ppo.num_updates, structure.progress_chunks)

    def rollout_one(params, key, levels, num_steps):
        return rollout_levels(world, network_act(network, params), network.initial_carry(), levels, key,
                              num_steps, RECORD)

    rollout = jax.jit(jax.vmap(rollout_one, in_axes=(0, 0, None, None)), static_argnums=3)
    return Compiled(world, network, (net_config, obs_dim, world.num_actions), ppo, training, rollout)


def _compiled_for(config, fields) -> Compiled:
    return _compiled(structure_key(config), fields["task"], fields["arch"], fields["width"], fields["depth"],
                     fields["total_steps"])


class Trained(NamedTuple):
    params: Any              # network params, leading [S]
    final_return: np.ndarray  # [S] mean episode return over the last 10% of updates
    env_steps: np.ndarray     # [S] environment steps trained (the update counter x steps per update)


def train(config, fields: dict[str, Any], train_levels, seeds, progress=None) -> Trained:
    """Train one condition for `seeds` (vmapped, in seed groups on a CPU for the CNN)."""
    compiled = _compiled_for(config, fields)
    params = LevelSetParams(levels=train_levels.params)
    if fields["task"] == "maze_paper":
        hparams = HParams(lr=jnp.float32(config.maze_paper_lr), ent_coef=jnp.float32(config.maze_paper_ent_coef))
    else:
        hparams = HParams(lr=jnp.float32(config.lr), ent_coef=jnp.float32(config.ent_coef))
    groups = _groups(fields["arch"], tuple(seeds))
    results = []
    for g, group in enumerate(groups):
        state = compiled.training.init(seed_keys(group, STREAMS)["train"], hparams, params)
        state, metrics = run_chunked(compiled.training, state, params, progress, return_status,
                                     fraction=(g / len(groups), (g + 1) / len(groups)), seeds=group)
        steps = np.asarray(state.update) * compiled.ppo.steps_per_update  # counted inside the jitted loop
        results.append(Trained(state.params, final_return(metrics["episode_return"]), steps))
    trained = Trained(stack_seeds([r.params for r in results]), np.concatenate([r.final_return for r in results]),
                      np.concatenate([r.env_steps for r in results]))
    save_agents("agent", trained.params, network=compiled.network_spec)
    return trained


def rollout_params(config, fields, params, suites: dict, seeds) -> dict[str, dict]:
    """Roll every suite out for every seed; {suite: first_episode(...)}."""
    compiled = _compiled_for(config, fields)
    steps = {"proxies": config.max_steps, "maze": config.maze_max_steps,
             "maze_paper": config.maze_paper_max_steps}[fields["task"]]
    out = {}
    for i, (name, suite) in enumerate(suites.items()):
        traces, start = [], 0
        for group in _groups(fields["arch"], tuple(seeds)):
            eval_keys = substream(seed_keys(group, STREAMS)["eval"], i)
            group_params = jax.tree.map(lambda x, s=start, n=len(group): x[s:s + n], params)
            traces.append(jax.tree.map(np.asarray, compiled.rollout(group_params, eval_keys, suite.params, steps)))
            start += len(group)
        out[name] = first_episode({k: np.concatenate([t[k] for t in traces]) for k in traces[0]})
    return out


def run_job(config, condition, seeds: tuple[int, ...], progress=None) -> list[dict]:
    """Train (unless arch == 'random') and evaluate one condition for `seeds`; tidy rows with
    the extra columns `suite` and `proxy` (training rows: suite 'train', proxy '-')."""
    fields = condition.fields
    rows: list[dict[str, Any]] = []
    if fields["task"] == "proxies":
        train_levels = proxy_train_levels(config, fields["diversity"])
        suites = proxy_suites(config)
    elif fields["task"] == "maze":
        train_levels = maze_train_levels(config, fields["diversity"])
        suites = maze_suites(config)
    else:
        train_levels = paper_train_levels(config, fields["rand_region"])
        suites = paper_suites(config, fields["rand_region"])
    if fields["arch"] == "random":
        params = {}  # the random network has no parameters
    else:
        started = time.perf_counter()
        trained = train(config, fields, train_levels, seeds, progress)
        seconds = time.perf_counter() - started  # all seeds, compiles included
        for i, seed in enumerate(seeds):
            rows.append({"suite": "train", "proxy": "-", "seed": int(seed), "metric": "train_return",
                         "value": float(trained.final_return[i])})
            rows.append({"suite": "train", "proxy": "-", "seed": int(seed), "metric": "env_steps",
                         "value": float(trained.env_steps[i])})
            if fields["task"] == "maze_paper":
                rows.append({"suite": "train", "proxy": "-", "seed": int(seed), "metric": "train_seconds",
                             "value": seconds})
        params = trained.params
    episodes = rollout_params(config, fields, params, suites, seeds)
    for suite_name, episode in episodes.items():
        if fields["task"] == "proxies":
            scores = score_proxy_suite(episode, suites[suite_name])
        else:
            scores = score_maze_suite(episode, suites[suite_name], config.maze_size)
        rows += _rows(scores, suite_name, seeds)
    if fields["task"] == "maze_paper":  # the hardware, for the report's "how far from theirs"
        for row in rows:
            row["device"] = device_text()
    if fields["task"] == "proxies":  # the pair suites pooled: one attribution over all of them
        pairs = [name for name in episodes if name.startswith("pair:")]
        rows += _rows(score_proxy_suite(concat_episodes([episodes[n] for n in pairs]),
                                        _concat_suites([suites[n] for n in pairs])), "pairs", seeds)
    return rows


def device_text() -> str:
    """'cpu (2 cores)' or the accelerator's kind, e.g. 'NVIDIA H200 x1'."""
    devices = jax.devices()
    if devices[0].platform == "cpu":
        return f"cpu ({os.cpu_count()} cores)"
    return f"{devices[0].device_kind} x{len(devices)}"


def _rows(scores: dict, suite: str, seeds) -> list[dict[str, Any]]:
    out = []
    for (metric, proxy), values in scores.items():
        for i, seed in enumerate(seeds):
            out.append({"suite": suite, "proxy": proxy, "seed": int(seed), "metric": metric,
                        "value": float(values[i])})
    return out


def _concat_suites(suites: list[Suite]) -> Suite:
    return Suite(kind="+".join(s.kind for s in suites), params=None,
                 features=np.concatenate([s.features for s in suites]),
                 true_object=np.concatenate([s.true_object for s in suites]),
                 shortest=np.concatenate([s.shortest for s in suites]), proxies=suites[0].proxies)


# --- scripted agents (the attribution metric's known answers) ---------------------------------

def distance_to(walls: jax.Array, blocked: jax.Array, target: jax.Array) -> jax.Array:
    """[N, N] float32 steps from each cell to `target` [2] moving through cells that are
    neither walls nor `blocked` (the target itself may be blocked); inf where unreachable.
    Bellman relaxation, N*N sweeps (enough for any path)."""
    n = walls.shape[0]
    big = jnp.float32(jnp.inf)
    passable = ~walls & ~blocked
    dist = jnp.full((n, n), big).at[target[0], target[1]].set(0.0)

    def sweep(_, d):
        padded = jnp.pad(d, 1, constant_values=big)
        best = jnp.minimum(jnp.minimum(padded[:-2, 1:-1], padded[2:, 1:-1]),
                           jnp.minimum(padded[1:-1, :-2], padded[1:-1, 2:]))
        return jnp.where(passable, jnp.minimum(d, best + 1.0), d)

    return jax.lax.fori_loop(0, n * n, sweep, dist)


def proxy_seeker(spec: ProxySpec, proxy: str):
    """The `act` of a scripted agent that goes, by a shortest path that passes no other object,
    to the first present object with `proxy`'s feature (a uniformly random move if none has it)."""
    index = spec.proxies.index(proxy)
    moves = jnp.asarray(NEIGHBOURS, jnp.int32)

    def act(key, carry, obs, is_first, state, params):
        inner = state.inner if hasattr(state, "inner") else state
        row, col = inner.obj_pos[:, 0], inner.obj_pos[:, 1]
        feats = {"colour": inner.obj_colour == 0, "shape": inner.obj_shape == 0,
                 "corner": (row < spec.corner) & (col >= spec.size - spec.corner)}
        has = feats[spec.proxies[index]] & inner.obj_present
        target = jnp.argmax(has)
        n = spec.size
        occupied = jnp.zeros((n, n), bool).at[row, col].max(inner.obj_present)
        dist = distance_to(params.walls, occupied.at[row[target], col[target]].set(False), inner.obj_pos[target])
        nxt = inner.agent_pos[None, :] + moves
        inside = ((nxt >= 0) & (nxt < n)).all(-1)
        d = jnp.where(inside, dist[jnp.clip(nxt[:, 0], 0, n - 1), jnp.clip(nxt[:, 1], 0, n - 1)], jnp.inf)
        action = jnp.where(has.any(), jnp.argmin(d), jax.random.randint(key, (), 0, 4))
        return carry, action.astype(jnp.int32)

    return act


def scripted_rollout(config, proxy: str, suite, key) -> dict[str, np.ndarray]:
    """One scripted proxy-seeker on every level of `suite`: first_episode(...) for one 'seed'."""
    spec = proxy_spec(config)
    world = spec.env()
    trace = jax.jit(lambda k, levels: rollout_levels(world, proxy_seeker(spec, proxy), jnp.zeros((0,)), levels, k,
                                                     config.max_steps, RECORD))(key, suite.params)
    return first_episode(jax.tree.map(lambda x: np.asarray(x)[None], trace))
