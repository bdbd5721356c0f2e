"""Adversaries for a reward ensemble: where do its heads disagree most?

    inputs = random_inputs(env, base, key, count)                    # valid levels + actions
    obs, reward = build(env, base, inputs)                           # [B, D], true reward [B]
    inputs = input_adversary(score, env, base, key, count, pool, rounds)
    latents = latent_adversary(latent_score, latents, actions, steps, step_size)

The input-space adversary searches the env's *valid* inputs only: an input is an ObjectWorld
level (agent cell, object cells, colours, shapes, which objects are present) plus one action,
turned into an observation by putting those values in `EnvParams` (fixed positions) and
calling the env's own `reset`, so every input is a state the env could really be in and the
true reward of the action there is the env's `step_env` reward (the "query"). Positions are
distinct free cells (walls come from the base params); colours and shapes range over all the
env's values, including any that the training levels never show.

Search: best-of-pool over `rounds`: each round draws `pool` random inputs, scores them, and
keeps the `count` best of those and the previous best (a (mu + lambda) selection without
mutation; no input is kept twice). The random control is `random_inputs` with the same
count, from the same generator.

The latent ("pseudo-input") adversary relaxes the search to the agent's activation space:
latents start at the representations of random inputs and take `steps` signed-gradient
ascent steps of size `step_size` on the heads' disagreement, each coordinate kept within
`radius` of its start and in [0, 1] (the agent's latents are min-max scaled, so every real
latent lies in that cube). They have no true
label; training asks the heads to agree there (`agreement_loss`).

Disagreement of an ensemble's predictions [..., E] is their variance over heads.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from flax import struct

from innerlab.envs.objectworld import EnvParams, ObjectWorld


@struct.dataclass
class Inputs:
    """A batch of B valid inputs (shapes [B, ...])."""

    agent_pos: jax.Array    # [B, 2] int32
    obj_pos: jax.Array      # [B, K, 2] int32
    obj_colour: jax.Array   # [B, K] int32
    obj_shape: jax.Array    # [B, K] int32
    obj_present: jax.Array  # [B, K] bool
    action: jax.Array       # [B] int32

    @property
    def count(self) -> int:
        return self.action.shape[0]


def _one_random(env: ObjectWorld, base: EnvParams, key: jax.Array) -> Inputs:
    k_cells, k_colour, k_shape, k_present, k_action = jax.random.split(key, 5)
    n, k = env.size, env.num_objects
    free = (~base.walls).reshape(-1).astype(jnp.float32)
    cells = jax.random.choice(k_cells, n * n, (k + 1,), replace=False, p=free / free.sum())
    pos = jnp.stack([cells // n, cells % n], -1).astype(jnp.int32)
    return Inputs(agent_pos=pos[0], obj_pos=pos[1:],
                  obj_colour=jax.random.randint(k_colour, (k,), 0, env.num_colours),
                  obj_shape=jax.random.randint(k_shape, (k,), 0, env.num_shapes),
                  obj_present=jax.random.bernoulli(k_present, 0.75, (k,)),
                  action=jax.random.randint(k_action, (), 0, env.num_actions))


def random_inputs(env: ObjectWorld, base: EnvParams, key: jax.Array, count: int) -> Inputs:
    """`count` inputs drawn uniformly: cells, colours, shapes, action; each object present
    with probability 0.75."""
    return jax.vmap(_one_random, (None, None, 0))(env, base, jax.random.split(key, count))


def level_params(base: EnvParams, one: Inputs) -> EnvParams:
    """The EnvParams of one input's level: `base` with fixed positions and its objects."""
    return base.replace(randomize_positions=jnp.bool_(False), agent_start=one.agent_pos, obj_pos=one.obj_pos,
                        obj_colour=one.obj_colour, obj_shape=one.obj_shape, obj_present=one.obj_present)


def build(env: ObjectWorld, base: EnvParams, inputs: Inputs) -> tuple[jax.Array, jax.Array]:
    """Observations [B, D] of the inputs' states and the true reward [B] of their actions,
    both from the env's own reset and step_env (the queries an adversary pays for)."""
    def one(item: Inputs):
        params = level_params(base, item)
        key = jax.random.key(0)  # fixed positions: reset and step draw nothing that matters
        obs, state = env.reset(key, params)
        _, _, reward, _, _ = env.step_env(key, state, item.action, params)
        return obs, reward
    return jax.vmap(one)(inputs)


def disagreement(predictions: jax.Array) -> jax.Array:
    """Variance over the last axis (the ensemble's heads)."""
    return predictions.var(-1)


def _take(inputs: Inputs, index: jax.Array) -> Inputs:
    return jax.tree.map(lambda x: x[index], inputs)


def _concat(a: Inputs, b: Inputs) -> Inputs:
    return jax.tree.map(lambda x, y: jnp.concatenate([x, y]), a, b)


def input_adversary(score: Callable[[jax.Array, jax.Array], jax.Array], env: ObjectWorld, base: EnvParams,
                    key: jax.Array, count: int, pool: int, rounds: int = 1) -> tuple[Inputs, jax.Array]:
    """The `count` inputs of highest `score(obs [B, D], action [B]) -> [B]` found by best-of-pool
    search over `rounds` pools of `pool` random inputs (see module docstring); returns them
    and their scores [count], highest first."""
    if count > pool:
        raise ValueError(f"count ({count}) must be <= pool ({pool})")
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")

    def scored(key):
        inputs = random_inputs(env, base, key, pool)
        obs, _ = build(env, base, inputs)
        return inputs, score(obs, inputs.action)

    keys = jax.random.split(key, rounds)
    best, best_score = scored(keys[0])
    order = jnp.argsort(-best_score)[:count]
    best, best_score = _take(best, order), best_score[order]

    def round_(carry, key):
        best, best_score = carry
        fresh, fresh_score = scored(key)
        merged, merged_score = _concat(best, fresh), jnp.concatenate([best_score, fresh_score])
        order = jnp.argsort(-merged_score)[:count]
        return (_take(merged, order), merged_score[order]), None

    (best, best_score), _ = jax.lax.scan(round_, (best, best_score), keys[1:])
    return best, best_score


def latent_adversary(score: Callable[[jax.Array, jax.Array], jax.Array], latents: jax.Array, actions: jax.Array,
                     steps: int, step_size: float, radius: float | jax.Array = 1.0) -> jax.Array:
    """Latents [B, L] moved by `steps` signed-gradient ascent steps on `score(latents, actions)
    -> [B]` (projected gradient ascent): each coordinate stays within `radius` of where it
    started (an L-infinity ball; radius 1 = anywhere in the cube) and in [0, 1]."""
    grad = jax.grad(lambda z: score(z, actions).sum())
    low, high = jnp.clip(latents - radius, 0.0, 1.0), jnp.clip(latents + radius, 0.0, 1.0)

    def step(z, _):
        return jnp.clip(z + step_size * jnp.sign(grad(z)), low, high), None

    latents, _ = jax.lax.scan(step, latents, None, steps)
    return jax.lax.stop_gradient(latents)


def labelled_loss(predictions: jax.Array, target: jax.Array, weight: jax.Array | None = None) -> jax.Array:
    """Mean over items of sum over heads of squared error: predictions [B, E], target [B]."""
    err = ((predictions - target[:, None]) ** 2).sum(-1)
    if weight is None:
        return err.mean()
    return (weight * err).sum() / jnp.maximum(weight.sum(), 1.0)


def agreement_loss(predictions: jax.Array, weight: jax.Array | None = None) -> jax.Array:
    """Heads pulled together where there is no label: mean over items of the sum over heads of
    (r_e - mean_e r_e)^2, i.e. E times the disagreement."""
    err = predictions.shape[-1] * disagreement(predictions)
    if weight is None:
        return err.mean()
    return (weight * err).sum() / jnp.maximum(weight.sum(), 1.0)
