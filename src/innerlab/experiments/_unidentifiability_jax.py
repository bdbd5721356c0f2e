"""Training and evaluation for the unidentifiability experiment (the JAX part, imported lazily).

One condition = one jitted PPO training function vmapped over seeds on a `LevelSet` of
training levels, run in equal chunks for progress; then one jitted rollout of every test level
per seed (`rollout_levels`). What the agent did in each level's first episode is scored on the
host from the recorded trace (which object it reached first, after how many steps, whether it
passed the top-right corner), so the metrics below are plain numpy over [seeds, levels].
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from innerlab.agents import (HParams, NetworkConfig, PPOConfig, final_return, make_network, make_train, network_act,
                             rollout_levels, run_in_chunks)
from innerlab.envs.levels import (NEIGHBOURS, LevelSet, LevelSetParams, ProxySpec, maze_env, maze_levels,
                                  proxy_levels, suite_kinds, training_levels)

RECORD = ("collected", "agent_pos", "true_reward")
# On a CPU, jaxlib 0.10.2 deadlocks running the CNN's training vmapped over 4+ seeds (2 run;
# see innerlab/_xla.py), so there seeds are trained and evaluated in vmapped groups of 2, with
# one compilation. Each seed's result depends only on its own key, so grouping changes nothing.
CPU_SEED_GROUP = {"cnn": 2}


def seed_groups(arch: str, seeds: tuple[int, ...]) -> list[tuple[int, ...]]:
    size = CPU_SEED_GROUP.get(arch) if jax.default_backend() == "cpu" else None
    if not size:
        return [tuple(seeds)]
    return [tuple(seeds[i:i + size]) for i in range(0, len(seeds), size)]


def _concat(trees):
    return jax.tree.map(lambda *leaves: jnp.concatenate(leaves), *trees)
# What a reached object is attributed to besides the proxies.
FEATURELESS, NOTHING = "featureless", "nothing"


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


# --- networks, training and evaluation (compiled once per structure) -------------------------

def make_world(config, task: str):
    return proxy_spec(config).env() if task == "proxies" else maze_env(config.maze_size)


def network_config(config, env, arch: str, width: int, depth: int) -> NetworkConfig:
    image = None
    if arch == "cnn":
        n = 2 * env.size - 1
        image = (env.image_channels - 1, n, n)  # the egocentric view drops the agent plane
    if arch == "random":
        return NetworkConfig(arch="random", width=1, depth=1)
    heads = 2 if width % 2 == 0 else 1
    return NetworkConfig(arch=arch, width=width, depth=depth, context=config.context, heads=heads,
                         image_shape=image)


@functools.lru_cache(maxsize=24)
def _compiled(config, task: str, arch: str, width: int, depth: int, total_steps: int):
    world = make_world(config, task)
    env = LevelSet(world)
    obs_dim = world.observation_space(None).shape[0]
    network = make_network(network_config(config, world, arch, width, depth), obs_dim, world.num_actions)
    steps = max(total_steps, config.num_envs * config.rollout_len)
    ppo = PPOConfig(num_envs=config.num_envs, rollout_len=config.rollout_len, total_steps=steps,
                    update_epochs=config.update_epochs, num_minibatches=config.num_minibatches,
                    gamma=config.gamma)
    trainer = make_train(ppo, env, network)
    chunk = max(ppo.num_updates // config.progress_chunks, 1)
    init = jax.jit(jax.vmap(trainer.init, in_axes=(0, None, None)))
    run = jax.jit(jax.vmap(functools.partial(trainer.run, num_updates=chunk), in_axes=(0, None)))
    tail = ppo.num_updates - chunk * (ppo.num_updates // chunk)
    run_tail = jax.jit(jax.vmap(functools.partial(trainer.run, num_updates=tail), in_axes=(0, None))) if tail else None

    def rollout_one(params, key, levels, num_steps):
        return rollout_levels(world, network_act(network, params), network.initial_carry(), levels, key,
                              num_steps, RECORD)

    rollout = jax.jit(jax.vmap(rollout_one, in_axes=(0, 0, None, None)), static_argnums=3)
    return world, network, ppo, chunk, init, run, run_tail, rollout


def train(config, fields: dict[str, Any], train_levels, seeds, progress=None):
    """Train one condition for `seeds` (vmapped); (params [S, ...], final train return [S])."""
    groups = seed_groups(fields["arch"], tuple(seeds))
    results = []
    for g, group in enumerate(groups):
        def group_progress(fraction, status, g=g):
            if progress is not None:
                progress((g + fraction) / len(groups), status)
        results.append(_train_group(config, fields, train_levels, group, group_progress))
    return _concat([r[0] for r in results]), np.concatenate([r[1] for r in results])


def _train_group(config, fields, train_levels, seeds, progress):
    _, _, ppo, chunk, init, run, run_tail, _ = _compiled(
        config, fields["task"], fields["arch"], fields["width"], fields["depth"], fields["total_steps"])
    keys = jax.vmap(jax.random.key)(jnp.asarray(seeds, dtype=jnp.uint32))
    train_keys = jax.vmap(lambda k: jax.random.fold_in(k, 0))(keys)
    params = LevelSetParams(levels=train_levels.params)
    hparams = HParams(lr=jnp.float32(config.lr), ent_coef=jnp.float32(config.ent_coef))
    state = init(train_keys, hparams, params)
    state, returns = run_in_chunks(run, state, params, ppo.num_updates // chunk, progress, run_tail)
    final = final_return(returns)
    return state.params, final


def first_episode(trace: dict) -> dict[str, np.ndarray]:
    """Per seed and level, the first episode of a `rollout_levels` trace ([S, T, L] arrays):
    `collected` (first object collected, -1 if none), `steps` (steps until it ended, T if it
    did not), `ret` (its return) and `positions` ([S, T, L, 2]) with `live` [S, T, L] marking
    its steps."""
    done = np.asarray(trace["done"])
    s, t, n = done.shape
    ended = done.any(axis=1)
    end = np.where(ended, done.argmax(axis=1), t - 1)  # [S, L] index of the last step of episode 1
    live = np.arange(t)[None, :, None] <= end[:, None, :]
    collected_t = np.where(live, np.asarray(trace["collected"]), -1)
    has = collected_t >= 0
    first_t = np.where(has.any(axis=1), has.argmax(axis=1), 0)
    collected = np.where(has.any(axis=1), np.take_along_axis(collected_t, first_t[:, None, :], 1)[:, 0], -1)
    ret = np.where(live, np.asarray(trace["reward"]), 0.0).sum(axis=1)
    return {"collected": collected, "steps": np.where(ended, end + 1, t), "ret": ret,
            "positions": np.asarray(trace["agent_pos"]), "live": live}


def rollout_params(config, fields, params, suites: dict, seeds) -> dict[str, dict]:
    """Roll every suite out for every seed; {suite: first_episode(...)}."""
    world, network, _, _, _, _, _, rollout = _compiled(
        config, fields["task"], fields["arch"], fields["width"], fields["depth"], fields["total_steps"])
    steps = config.max_steps if fields["task"] == "proxies" else config.maze_max_steps
    out = {}
    for i, (name, suite) in enumerate(suites.items()):
        traces, start = [], 0
        for group in seed_groups(fields["arch"], tuple(seeds)):
            keys = jax.vmap(jax.random.key)(jnp.asarray(group, dtype=jnp.uint32))
            eval_keys = jax.vmap(lambda k, i=i: jax.random.fold_in(jax.random.fold_in(k, 1), i))(keys)
            group_params = jax.tree.map(lambda x, s=start, n=len(group): x[s:s + n], params)
            traces.append(jax.tree.map(np.asarray, rollout(group_params, eval_keys, suite.params, steps)))
            start += len(group)
        out[name] = first_episode({k: np.concatenate([t[k] for t in traces]) for k in traces[0]})
    return out


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
