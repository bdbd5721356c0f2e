"""Training and evaluation for the side-channels experiment (the JAX part, imported lazily).

One condition = one jitted training function vmapped over seeds, run in chunks for progress
(exactly the configured updates); then one jitted evaluation vmapped over seeds, reused for
every perturbation (the perturbation is a traced params field). Compiled functions are cached
per structure (channel mode, transform, architecture and the shape-setting config), so
conditions that differ only in p reuse them.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from innerlab.agents import HParams, Network, NetworkConfig, PPOConfig, evaluate, make_network, make_train
from innerlab.channels import ChannelParams, RewardChannel, perturbation_index
from innerlab.envs import ObjectWorld, make_params
from innerlab.experiments.fields import structure_key
from innerlab.experiments.outputs import save_agents
from innerlab.experiments.training import (ChunkedRun, compile_chunked, final_return, return_status, run_chunked,
                                           seed_keys)

STREAMS = ("train", "eval")


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


class Compiled(NamedTuple):
    env: RewardChannel
    network: Network
    network_spec: tuple   # (NetworkConfig, obs_dim, num_actions): what rebuilds `network`
    ppo: PPOConfig
    training: ChunkedRun
    evaluate_seeds: Any   # (params [S], keys [S], env params) -> {stat: [S]}


@functools.lru_cache(maxsize=16)
def _compiled(structure, channel: str, transform: str, arch: str) -> Compiled:
    env = make_env(structure, channel, transform)
    obs_dim = env.observation_space(env.default_params).shape[0]
    net_config = NetworkConfig(arch=arch, width=structure.width, context=structure.context)
    network = make_network(net_config, obs_dim, env.num_actions)
    ppo = PPOConfig(total_steps=structure.total_steps, **structure.ppo_kwargs())
    trainer = make_train(ppo, env, network)
    training = compile_chunked(trainer.init, trainer.run, ppo.num_updates, structure.progress_chunks)

    def evaluate_one(params, key, params_env):
        return evaluate(env, network, params, params_env, key, structure.eval_envs, structure.eval_steps,
                        step_stats)

    evaluate_seeds = jax.jit(jax.vmap(evaluate_one, in_axes=(0, 0, None)))
    return Compiled(env, network, (net_config, obs_dim, env.num_actions), ppo, training, evaluate_seeds)


def _compiled_for(config, fields) -> Compiled:
    return _compiled(structure_key(config), fields["channel"], fields["transform"], fields["arch"])


def _row(perturbation: str, seed, metric: str, value) -> dict:
    return {"perturbation": perturbation, "seed": int(seed), "metric": metric, "value": float(value)}


def run_job(config, condition, seeds: tuple[int, ...], progress=None) -> list[dict]:
    """Train (unless arch == 'random') and evaluate one condition for `seeds`; tidy rows."""
    fields = condition.fields
    compiled = _compiled_for(config, fields)
    rows: list[dict] = []
    if fields["arch"] == "random":
        params = {}  # the random network has no parameters
    else:
        train_params = env_params(config, compiled.env, fields["p"])
        hparams = HParams(lr=jnp.float32(config.lr), ent_coef=jnp.float32(config.ent_coef))
        state = compiled.training.init(seed_keys(seeds, STREAMS)["train"], hparams, train_params)
        state, metrics = run_chunked(compiled.training, state, train_params, progress, return_status)
        final = final_return(metrics["episode_return"])
        steps = np.asarray(state.update) * compiled.ppo.steps_per_update  # counted inside the jitted loop
        for s, seed in enumerate(seeds):
            rows.append(_row("train", seed, "train_return", final[s]))
            rows.append(_row("train", seed, "env_steps", steps[s]))
        params = state.params
        save_agents("agent", params, network=compiled.network_spec)
    return rows + evaluate_agents(config, condition, params, seeds)


def agent_env(config, condition):
    """(env, env params) a condition's agents were trained in (for `innerlab.load_agent`). The
    env object is the condition's cached one, shared by every seed's agent (rollouts that take
    the env as a static argument compile once)."""
    env = _compiled_for(config, condition.fields).env
    return env, env_params(config, env, condition.fields["p"])


def evaluate_agents(config, condition, params, seeds: tuple[int, ...]) -> list[dict]:
    """The evaluation rows of `condition`'s agents with `params` (leading axis: `seeds`): every
    perturbation, its returns, collections, B share, follow index and retention. What `run_job`
    does after training; also how a checkpoint is checked against the stored rows."""
    compiled = _compiled_for(config, condition.fields)
    env = compiled.env
    keys = seed_keys(seeds, STREAMS)
    rows: list[dict] = []

    def add(pert, seed, metric, value):
        rows.append(_row(pert, seed, metric, value))

    perturbations = ["none"] + [p for p in config.perturbation if p != "none"]
    results = {}
    for pert in perturbations:
        out = compiled.evaluate_seeds(params, keys["eval"], env_params(config, env, 0.0, pert))
        results[pert] = {k: np.asarray(v) for k, v in out.items()}

    for pert in perturbations:
        r = results[pert]
        collected = r["collected_a"] + r["collected_b"]
        with np.errstate(invalid="ignore", divide="ignore"):
            b_share = np.where(collected > 0, r["collected_b"] / collected, np.nan)
            retention = r["true_return"] / results["none"]["true_return"]
        for s, seed in enumerate(seeds):
            for metric in ("true_return", "observed_return", "collected_a", "collected_b", "episodes"):
                add(pert, seed, metric, r[metric][s])
            add(pert, seed, "b_share", b_share[s])
            if pert == "swap":
                # Under swap the channel rewards B: the follow index is the B share.
                add(pert, seed, "follow_index", b_share[s])
            if pert != "none":
                add(pert, seed, "true_return_retention", retention[s])
    return rows
