"""Roll a policy out (no learning) and average per-episode statistics.

    totals = evaluate(env, network, params, env_params, key, num_envs, num_steps, step_stats)

`step_stats(info, reward) -> dict[name, [N] float]` says what one step contributes; the
result is each statistic summed within an episode and averaged over the episodes that ended
within `num_steps` (episodes still running at the end are not counted), plus `episodes`.
Actions are sampled from the policy (the policy the agent was trained as).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from innerlab.agents.networks import Network


def evaluate(env, network: Network, params, env_params, key, num_envs: int, num_steps: int,
             step_stats: Callable[[dict, jax.Array], dict]) -> dict:
    apply_batch = jax.vmap(network.apply, in_axes=(None, 0, 0, 0))
    step_env = jax.vmap(env.step, in_axes=(0, 0, 0, None))
    key, k_reset = jax.random.split(key)
    obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_reset, num_envs), env_params)
    carry = jax.tree.map(lambda c: jnp.broadcast_to(c, (num_envs, *c.shape)), network.initial_carry())

    # Shapes of the per-step statistics, from a dry step (traced only, never run separately).
    _, _, r0, _, _, info0 = jax.eval_shape(step_env, jax.random.split(key, num_envs), env_state,
                                           jnp.zeros((num_envs,), jnp.int32), env_params)
    names = list(jax.eval_shape(step_stats, info0, r0))
    zeros = {n: jnp.zeros((num_envs,)) for n in names}

    def body(loop, _):
        key, obs, env_state, carry, is_first, running, totals, episodes = loop
        key, k_act, k_env = jax.random.split(key, 3)
        carry, logits, _ = apply_batch(params, carry, obs, is_first)
        action = jax.random.categorical(k_act, logits)
        obs, env_state, reward, terminated, truncated, info = step_env(
            jax.random.split(k_env, num_envs), env_state, action, env_params)
        done = terminated | truncated
        stats = step_stats(info, reward)
        running = {n: running[n] + stats[n] for n in names}
        totals = {n: totals[n] + jnp.where(done, running[n], 0.0) for n in names}
        running = {n: jnp.where(done, 0.0, running[n]) for n in names}
        return (key, obs, env_state, carry, done, running, totals, episodes + done), None

    init = (key, obs, env_state, carry, jnp.ones((num_envs,), bool), zeros, zeros,
            jnp.zeros((num_envs,), jnp.int32))
    (_, _, _, _, _, _, totals, episodes), _ = jax.lax.scan(body, init, None, length=num_steps)
    n = episodes.sum()
    out = {name: totals[name].sum() / jnp.maximum(n, 1) for name in names}
    out["episodes"] = n.astype(jnp.float32)
    return out


# An acting function for `rollout_levels`, for ONE environment:
#   act(key, carry, obs, is_first, env_state, env_params) -> (carry, action)
# A network policy ignores the state; a scripted agent may read it (and the level's params).
ActFn = Callable


def network_act(network: Network, params) -> ActFn:
    """The `act` of a trained network: sample from its policy (as it acted in training)."""
    def act(key, carry, obs, is_first, env_state, env_params):
        carry, logits, _ = network.apply(params, carry, obs, is_first)
        return carry, jax.random.categorical(key, logits)
    return act


def rollout_levels(env, act: ActFn, carry0, levels, key, num_steps: int, record: tuple[str, ...]) -> dict:
    """Play each level of `levels` (env params whose leaves have a leading [L] axis) once,
    one environment per level, for `num_steps` steps.

    carry0: the acting carry for one environment, broadcast to every level.
    Returns `done` [T, L] bool, `reward` [T, L] and each `info` key in `record` [T, L, ...].
    The env auto-resets after an episode ends; callers read each level's first episode
    (up to and including its first `done`).
    """
    num_levels = jax.tree.leaves(levels)[0].shape[0]
    step_env = jax.vmap(env.step, in_axes=(0, 0, 0, 0))
    act_batch = jax.vmap(act, in_axes=(0, 0, 0, 0, 0, 0))
    key, k_reset = jax.random.split(key)
    obs, env_state = jax.vmap(env.reset, in_axes=(0, 0))(jax.random.split(k_reset, num_levels), levels)
    carry = jax.tree.map(lambda c: jnp.broadcast_to(c, (num_levels, *jnp.shape(c))), carry0)

    def body(loop, _):
        key, obs, env_state, carry, is_first = loop
        key, k_act, k_env = jax.random.split(key, 3)
        carry, action = act_batch(jax.random.split(k_act, num_levels), carry, obs, is_first, env_state, levels)
        obs, env_state, reward, terminated, truncated, info = step_env(
            jax.random.split(k_env, num_levels), env_state, action, levels)
        done = terminated | truncated
        out = {"done": done, "reward": reward, **{name: info[name] for name in record}}
        return (key, obs, env_state, carry, done), out

    init = (key, obs, env_state, carry, jnp.ones((num_levels,), bool))
    _, trace = jax.lax.scan(body, init, None, length=num_steps)
    return trace
