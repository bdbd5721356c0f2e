"""Recurrent PPO, PureJaxRL-style: the whole of training is jittable and seeds are a vmap axis.

    trainer = make_train(config, env, network)
    state = trainer.init(key, hparams, env_params)          # RunnerState (one seed)
    state, metrics = trainer.run(state, env_params, n)     # n updates, one lax.scan
    state, metrics = trainer.train(key, hparams, env_params)   # init + all updates

`run` lets a caller advance training in chunks (progress bars, checkpoints; see
`innerlab.experiments.training.compile_chunked`) without
recompiling: every chunk has the same shapes. Seeds: `jax.vmap(trainer.train, (0, None, None))`.

Conventions (STYLE.md 3): GAE stops bootstrapping on `terminated` and cuts its trace on
`terminated or truncated`; on truncation the value of the true final observation
(`info["final_observation"]`, before the auto-reset) is bootstrapped. The recurrent state is
reset when `is_first` is set (this observation begins an episode).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from innerlab.agents.networks import Network, _scan_unroll


@dataclass(frozen=True)
class PPOConfig:
    num_envs: int = 64
    """Parallel environments per seed."""
    rollout_len: int = 32
    """Steps per environment per update."""
    total_steps: int = 500_000
    """Environment steps per seed over the whole run (rounded down to whole updates)."""
    update_epochs: int = 4
    num_minibatches: int = 4
    """Minibatches per epoch; each holds whole sequences of num_envs / num_minibatches envs."""
    gamma: float = 0.95
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    anneal_lr: bool = True

    def __post_init__(self):
        if self.num_envs % self.num_minibatches:
            raise ValueError(f"num_minibatches ({self.num_minibatches}) must divide num_envs ({self.num_envs})")
        if self.total_steps < self.steps_per_update:
            raise ValueError(f"total_steps ({self.total_steps}) must be at least one update "
                             f"(num_envs * rollout_len = {self.steps_per_update})")

    @property
    def steps_per_update(self) -> int:
        return self.num_envs * self.rollout_len

    @property
    def num_updates(self) -> int:
        return self.total_steps // self.steps_per_update


@struct.dataclass
class HParams:
    """Hyper-parameters as traced arrays, so a population can carry different values."""

    lr: jax.Array | float = 1e-3
    ent_coef: jax.Array | float = 0.01


@struct.dataclass
class RunnerState:
    params: Any
    opt_state: Any
    hparams: HParams
    env_state: Any          # [N] env states
    obs: jax.Array          # [N, obs_dim]
    carry: Any              # [N, ...] recurrent state before `obs` is seen
    is_first: jax.Array     # [N] bool: `obs` begins an episode
    episode_return: jax.Array  # [N] return so far of the running episode
    key: jax.Array
    update: jax.Array       # [] int32, updates done


class Transition(NamedTuple):
    """One step of a rollout; in a rollout every field gains leading [T, N] axes."""

    obs: jax.Array
    is_first: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    reward: jax.Array
    terminated: jax.Array
    done: jax.Array          # terminated or truncated
    next_value: jax.Array    # V(true next observation) under the acting parameters


def gae(reward_t, value_t, next_value_t, terminated_t, done_t, gamma, lam):
    """Generalised advantage estimates for one trajectory (all inputs [T]).

        delta_t = r_t + gamma * (1 - terminated_t) * V(s_{t+1}) - V(s_t)
        A_t     = delta_t + gamma * lam * (1 - done_t) * A_{t+1}

    `next_value_t` is V of the true next state (the final observation when the episode ended
    this step), so truncation bootstraps and termination does not. Returns (advantages,
    value targets = advantages + values), each [T].
    """
    delta_t = reward_t + gamma * (1.0 - terminated_t) * next_value_t - value_t

    def backward(advantage_tp1, inputs):
        delta, done = inputs
        advantage = delta + gamma * lam * (1.0 - done) * advantage_tp1
        return advantage, advantage

    _, advantage_t = jax.lax.scan(backward, jnp.zeros_like(delta_t[0]), (delta_t, done_t), reverse=True)
    return advantage_t, advantage_t + value_t


class Trainer(NamedTuple):
    """`init`, `run` and `train` as in the module doc. `step` and `learn` are the two halves
    of one update, for callers that interleave members of a population inside a rollout
    (environment swapping): `update(state) == learn(state_after_steps, carry0, *scan(step))`.

        step(state, env_params) -> (state, (Transition, (finished_return, done, episode_info)))
        learn(state, carry0, traj, stats) -> (state, metrics)      # traj/stats: leading [T]
    """

    init: Callable[..., RunnerState]
    run: Callable[..., tuple[RunnerState, dict]]
    train: Callable[..., tuple[RunnerState, dict]]
    step: Callable[..., tuple[RunnerState, Any]] = None
    learn: Callable[..., tuple[RunnerState, dict]] = None


def _unroll(network: Network, params, carry0, obs_t, is_first_t):
    """Replay a batch of sequences: obs_t [T, B, D], is_first_t [T, B], carry0 [B, ...]. A
    `Network` built without `unroll` is replayed by scanning its `apply`."""
    unroll = network.unroll or _scan_unroll(network.apply)
    _, logits_t, value_t = unroll(params, carry0, obs_t, is_first_t)
    return logits_t, value_t


def ppo_loss(network: Network, config: PPOConfig, params, ent_coef, carry0, batch: Transition,
             advantage_t, target_t):
    """Clipped PPO loss over a minibatch of whole sequences ([T, B] fields)."""
    logits_t, value_t = _unroll(network, params, carry0, batch.obs, batch.is_first)
    log_probs = jax.nn.log_softmax(logits_t)
    log_prob_t = jnp.take_along_axis(log_probs, batch.action[..., None], axis=-1)[..., 0]
    entropy = -(jnp.exp(log_probs) * log_probs).sum(-1).mean()

    value_clipped = batch.value + jnp.clip(value_t - batch.value, -config.clip_eps, config.clip_eps)
    value_loss = 0.5 * jnp.maximum((value_t - target_t) ** 2, (value_clipped - target_t) ** 2).mean()

    advantage = (advantage_t - advantage_t.mean()) / (advantage_t.std() + 1e-8)
    ratio = jnp.exp(log_prob_t - batch.log_prob)
    policy_loss = -jnp.minimum(ratio * advantage,
                               jnp.clip(ratio, 1 - config.clip_eps, 1 + config.clip_eps) * advantage).mean()
    total = policy_loss + config.vf_coef * value_loss - ent_coef * entropy
    return total, {"policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy}


def make_train(config: PPOConfig, env, network: Network, episode_info: tuple[str, ...] = ()) -> Trainer:
    """PPO for a gymnax-style `env` (flat observations, discrete actions) and a `Network`.

    `episode_info` names `info` keys that are meaningful on the step that ends an episode
    (e.g. "exploited"); each becomes a per-update metric: its mean over the episodes that
    ended during the update's rollout (nan if none did).
    """
    num_envs = config.num_envs
    step_env = jax.vmap(env.step, in_axes=(0, 0, 0, None))
    reset_env = jax.vmap(env.reset, in_axes=(0, None))
    apply_batch = jax.vmap(network.apply, in_axes=(None, 0, 0, 0))
    optimizer = optax.chain(optax.clip_by_global_norm(config.max_grad_norm),
                            optax.inject_hyperparams(optax.adam)(learning_rate=1e-3, eps=1e-5))

    def init(key, hparams: HParams, env_params) -> RunnerState:
        key, k_net, k_env = jax.random.split(key, 3)
        params = network.init(k_net)
        opt_state = optimizer.init(params)
        obs, env_state = reset_env(jax.random.split(k_env, num_envs), env_params)
        carry = jax.tree.map(lambda c: jnp.broadcast_to(c, (num_envs, *c.shape)), network.initial_carry())
        return RunnerState(params=params, opt_state=_set_lr(opt_state, hparams.lr), hparams=hparams,
                           env_state=env_state, obs=obs, carry=carry,
                           is_first=jnp.ones((num_envs,), bool), episode_return=jnp.zeros((num_envs,)),
                           key=key, update=jnp.zeros((), jnp.int32))

    def rollout_step(state: RunnerState, env_params):
        key, k_act, k_env = jax.random.split(state.key, 3)
        carry, logits, value = apply_batch(state.params, state.carry, state.obs, state.is_first)
        action = jax.random.categorical(k_act, logits)
        log_prob = jnp.take_along_axis(jax.nn.log_softmax(logits), action[:, None], axis=-1)[:, 0]
        obs, env_state, reward, terminated, truncated, info = step_env(
            jax.random.split(k_env, num_envs), state.env_state, action, env_params)
        # V of the true next observation: the final one if the episode just ended.
        _, _, next_value = apply_batch(state.params, carry, info["final_observation"],
                                       jnp.zeros((num_envs,), bool))
        done = terminated | truncated
        transition = Transition(state.obs, state.is_first, action, log_prob, value, reward,
                                terminated.astype(jnp.float32), done.astype(jnp.float32), next_value)
        episode_return = state.episode_return + reward
        ended = {k: jnp.where(done, info[k], 0.0) for k in episode_info}
        stats = (jnp.where(done, episode_return, 0.0), done, ended)
        state = state.replace(key=key, env_state=env_state, obs=obs, carry=carry, is_first=done,
                              episode_return=jnp.where(done, 0.0, episode_return))
        return state, (transition, stats)

    def update_step(state: RunnerState, env_params):
        carry0 = state.carry
        state, (traj, stats) = jax.lax.scan(
            lambda s, _: rollout_step(s, env_params), state, None, length=config.rollout_len)
        return learn(state, carry0, traj, stats)

    def learn(state: RunnerState, carry0, traj: Transition, stats):
        finished_return, finished, ended = stats
        advantage_t, target_t = jax.vmap(gae, in_axes=(1, 1, 1, 1, 1, None, None), out_axes=1)(
            traj.reward, traj.value, traj.next_value, traj.terminated, traj.done,
            config.gamma, config.gae_lambda)

        lr = state.hparams.lr
        if config.anneal_lr:
            lr = lr * (1.0 - state.update.astype(jnp.float32) / config.num_updates)
        opt_state = _set_lr(state.opt_state, lr)

        def epoch(carry, key):
            params, opt_state = carry
            perm = jax.random.permutation(key, num_envs).reshape(config.num_minibatches, -1)

            def minibatch(carry, env_idx):
                params, opt_state = carry
                take = lambda x: x[:, env_idx]
                grads, aux = jax.grad(ppo_loss, argnums=2, has_aux=True)(
                    network, config, params, state.hparams.ent_coef,
                    jax.tree.map(lambda c: c[env_idx], carry0), jax.tree.map(take, traj),
                    take(advantage_t), take(target_t))
                updates, opt_state = optimizer.update(grads, opt_state, params)
                return (optax.apply_updates(params, updates), opt_state), aux

            return jax.lax.scan(minibatch, (params, opt_state), perm)

        key, k_epochs = jax.random.split(state.key)
        (params, opt_state), aux = jax.lax.scan(
            epoch, (state.params, opt_state), jax.random.split(k_epochs, config.update_epochs))
        n_finished = finished.sum()
        metrics = {k: v.mean() for k, v in aux.items()}
        metrics["episode_return"] = jnp.where(n_finished > 0, finished_return.sum() / jnp.maximum(n_finished, 1),
                                              jnp.nan)
        metrics["episodes"] = n_finished
        for k, v in ended.items():
            metrics[k] = jnp.where(n_finished > 0, v.sum() / jnp.maximum(n_finished, 1), jnp.nan)
        state = state.replace(params=params, opt_state=opt_state, key=key, update=state.update + 1)
        return state, metrics

    def run(state: RunnerState, env_params, num_updates: int):
        return jax.lax.scan(lambda s, _: update_step(s, env_params), state, None, length=num_updates)

    def train(key, hparams: HParams, env_params):
        return run(init(key, hparams, env_params), env_params, config.num_updates)

    return Trainer(init=init, run=run, train=train, step=rollout_step, learn=learn)


def _set_lr(opt_state, lr):
    """Write the learning rate into the inject_hyperparams state (second element of the chain)."""
    clip_state, adam_state = opt_state
    hyper = dict(adam_state.hyperparams)
    hyper["learning_rate"] = jnp.asarray(lr, dtype=jnp.asarray(hyper["learning_rate"]).dtype)
    return (clip_state, adam_state._replace(hyperparams=hyper))
