"""Training and evaluation for the side-channels experiment (the JAX part, imported lazily).

One condition = one jitted training function vmapped over seeds, run in equal chunks for
progress; then one jitted evaluation vmapped over seeds, reused for every perturbation (the
perturbation is a traced params field). Compiled functions are cached per structure (channel
mode, transform, architecture and the shape-setting config), so conditions that differ only
in p reuse them.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from innerlab.agents import (HParams, NetworkConfig, PPOConfig, evaluate, final_return, make_network, make_train,
                             run_in_chunks)
from innerlab.channels import ChannelParams, RewardChannel, perturbation_index
from innerlab.envs import ObjectWorld, make_params
from innerlab.experiments.base import structure_key

# Config fields that do not change compiled shapes or code; excluded from the cache key.
_TRACED_FIELDS = ("num_seeds", "seed_offset", "channel", "p", "arch", "transform", "perturbation",
                  "noise_sigma", "random_control", "other_reward", "terminate_on_rewarded", "lr", "ent_coef")


def make_env(config, channel: str, transform: str) -> RewardChannel:
    world = ObjectWorld(size=config.grid_size, num_objects=2 * config.objects_per_colour,
                        num_colours=2, num_shapes=1, obs_view=config.obs_view)
    return RewardChannel(world, mode=channel, transform=transform)


def env_params(config, env: RewardChannel, p: float, perturbation: str = "none") -> ChannelParams:
    k = config.objects_per_colour
    world_params = make_params(
        env.env,
        max_steps_in_episode=config.max_steps,
        reward_table=[[1.0], [config.other_reward]],
        reward_shift_prob=p,
        obj_colour=[0] * k + [1] * k,
        terminate_when_rewarded_collected=config.terminate_on_rewarded,
    )
    return ChannelParams(env=world_params, perturbation=jnp.int32(perturbation_index(perturbation)),
                         noise_sigma=jnp.float32(config.noise_sigma))


def step_stats(info, reward):
    """Per-step statistics summed within episodes by `evaluate`."""
    colour = info["collected_colour"]
    return {"true_return": info["true_reward"], "observed_return": info["observed_reward"],
            "collected_a": (colour == 0).astype(jnp.float32), "collected_b": (colour == 1).astype(jnp.float32)}


def _structure_key(config):
    return structure_key(config, _TRACED_FIELDS)


@functools.lru_cache(maxsize=16)
def _compiled(structure, channel: str, transform: str, arch: str):
    env = make_env(structure, channel, transform)
    obs_dim = env.observation_space(env.default_params).shape[0]
    network = make_network(NetworkConfig(arch=arch, width=structure.width, context=structure.context),
                           obs_dim, env.num_actions)
    ppo = PPOConfig(num_envs=structure.num_envs, rollout_len=structure.rollout_len,
                    total_steps=structure.total_steps, update_epochs=structure.update_epochs,
                    num_minibatches=structure.num_minibatches, gamma=structure.gamma)
    trainer = make_train(ppo, env, network)
    chunk = max(ppo.num_updates // structure.progress_chunks, 1)
    init = jax.jit(jax.vmap(trainer.init, in_axes=(0, None, None)))
    run = jax.jit(jax.vmap(functools.partial(trainer.run, num_updates=chunk), in_axes=(0, None)))

    def evaluate_one(params, key, params_env):
        return evaluate(env, network, params, params_env, key, structure.eval_envs, structure.eval_steps,
                        step_stats)

    evaluate_seeds = jax.jit(jax.vmap(evaluate_one, in_axes=(0, 0, None)))
    return env, network, ppo, chunk, init, run, evaluate_seeds


def run_condition(config, fields: dict[str, Any], seeds: tuple[int, ...], progress=None) -> list[dict]:
    """Train (unless arch == 'random') and evaluate one condition for `seeds`; tidy rows."""
    env, network, ppo, chunk, init, run, evaluate_seeds = _compiled(
        _structure_key(config), fields["channel"], fields["transform"], fields["arch"])
    keys = jax.vmap(jax.random.key)(jnp.asarray(seeds, dtype=jnp.uint32))
    train_keys, eval_keys = (jax.vmap(lambda k, i=i: jax.random.fold_in(k, i))(keys) for i in (0, 1))
    rows: list[dict] = []

    if fields["arch"] == "random":
        params = {}  # the random network has no parameters
    else:
        train_params = env_params(config, env, fields["p"])
        hparams = HParams(lr=jnp.float32(config.lr), ent_coef=jnp.float32(config.ent_coef))
        state = init(train_keys, hparams, train_params)
        state, returns = run_in_chunks(run, state, train_params, ppo.num_updates // chunk, progress)
        final = final_return(returns)
        for s, seed in enumerate(seeds):
            rows.append({"perturbation": "train", "seed": int(seed), "metric": "train_return",
                         "value": float(final[s])})
        params = state.params

    perturbations = ["none"] + [p for p in config.perturbation if p != "none"]
    results = {}
    for pert in perturbations:
        out = evaluate_seeds(params, eval_keys, env_params(config, env, 0.0, pert))
        results[pert] = {k: np.asarray(v) for k, v in out.items()}

    for pert in perturbations:
        r = results[pert]
        collected = r["collected_a"] + r["collected_b"]
        with np.errstate(invalid="ignore", divide="ignore"):
            b_share = np.where(collected > 0, r["collected_b"] / collected, np.nan)
            retention = r["true_return"] / results["none"]["true_return"]
        for s, seed in enumerate(seeds):
            def add(metric, value):
                rows.append({"perturbation": pert, "seed": int(seed), "metric": metric, "value": float(value)})
            for metric in ("true_return", "observed_return", "collected_a", "collected_b", "episodes"):
                add(metric, r[metric][s])
            add("b_share", b_share[s])
            if pert == "swap":
                # Under swap the channel rewards B: the follow index is the B share.
                add("follow_index", b_share[s])
            if pert != "none":
                add("true_return_retention", retention[s])
    return rows
