"""Reward side-channels: what the agent may observe about its reward, and test-time
perturbations of what it observes.

`RewardChannel(env, mode, transform)` wraps an ObjectWorld and appends a reward signal to
its flat observation:

- `none`: nothing is appended (the agent never sees its reward).
- `prev`: the reward of the previous step (0 on the first step of an episode).
- `next`: for each action, the reward that action would give from the current state.

Each scalar reward r passes through the channel *transform* before it is shown, in training
and at test alike (the seed's extension): `identity` shows [r]; `mlp` shows a fixed, randomly
initialised small network of r, tanh(W2 tanh(W1 r + b1) + b2), a vector of `transform_dim`.

A *perturbation* (a `ChannelParams` field, so the test distribution is just another params
value) changes the observed signal only; the true reward, which is what is returned as the
step reward and scored, is untouched:

- `none`; `swap`: the channel reports rewards as if the next colour were the rewarded one
  (the episode's reward table rolled by one along colours); `negate`: -r; `zero`: 0;
  `noise`: r + sigma * N(0, 1), fresh noise per shown value.

`info["observed_reward"]` is the perturbed reward of what was collected this step (before
the transform), so the observed return can be scored whatever the mode, even `none`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from innerlab.vocab import CHANNEL_MODES, CHANNEL_TRANSFORMS, PERTURBATIONS

MODES, TRANSFORMS = CHANNEL_MODES, CHANNEL_TRANSFORMS


@struct.dataclass
class ChannelParams:
    env: environment.EnvParams
    perturbation: int = 0
    """Index into PERTURBATIONS."""
    noise_sigma: float = 0.0
    """Standard deviation of the `noise` perturbation."""


@struct.dataclass
class ChannelState:
    env: environment.EnvState
    signal: jax.Array  # [signal_dim] the reward signal shown with the current observation
    time: jax.Array


def perturbation_index(name: str) -> int:
    if name not in PERTURBATIONS:
        raise ValueError(f"perturbation must be one of {PERTURBATIONS}, got {name!r}")
    return PERTURBATIONS.index(name)


class RewardChannel(environment.Environment):
    """ObjectWorld with a reward side-channel in its (flat) observation. See the module doc."""

    def __init__(self, env, mode: str = "prev", transform: str = "identity", transform_dim: int = 8,
                 transform_seed: int = 0):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if transform not in TRANSFORMS:
            raise ValueError(f"transform must be one of {TRANSFORMS}, got {transform!r}")
        if getattr(env, "obs_view", "flat") == "image":
            raise ValueError("RewardChannel needs a flat observation view ('flat' or 'egocentric')")
        super().__init__()
        self.env = env
        self.mode = mode
        self.transform = transform
        self.value_dim = 1 if transform == "identity" else transform_dim
        if transform == "mlp":
            # Fixed weights: part of the channel, never trained. numpy so they are constants.
            rng = np.random.default_rng(transform_seed)
            hidden = 16
            self._w1 = rng.normal(0, 1.0, (hidden,)).astype(np.float32)
            self._b1 = rng.normal(0, 0.5, (hidden,)).astype(np.float32)
            self._w2 = (rng.normal(0, 1.0, (hidden, transform_dim)) / np.sqrt(hidden)).astype(np.float32)
            self._b2 = rng.normal(0, 0.1, (transform_dim,)).astype(np.float32)
        n_values = {"none": 0, "prev": 1, "next": env.num_actions}[mode]
        self.signal_dim = n_values * self.value_dim

    # -- the channel ---------------------------------------------------------------------
    def encode(self, reward: jax.Array) -> jax.Array:
        """Transform rewards [...] -> [..., value_dim]."""
        if self.transform == "identity":
            return reward[..., None]
        h = jnp.tanh(reward[..., None] * self._w1 + self._b1)
        return jnp.tanh(h @ self._w2 + self._b2)

    @staticmethod
    def observed_table(reward_table, params: ChannelParams):
        """The reward table as the channel reports it under the perturbation (noise aside)."""
        k = params.perturbation
        table = jnp.where(k == 1, jnp.roll(reward_table, 1, axis=0), reward_table)
        table = jnp.where(k == 2, -table, table)
        return jnp.where(k == 3, jnp.zeros_like(table), table)

    def _noise(self, key, shape, params: ChannelParams):
        return jnp.where(params.perturbation == 4, params.noise_sigma, 0.0) * jax.random.normal(key, shape)

    def _next_signal(self, key, env_state, params: ChannelParams):
        if self.mode != "next":
            return jnp.zeros((self.signal_dim,))
        table = self.observed_table(env_state.reward_table, params)
        rewards = self.env.action_rewards(env_state, params.env, table)
        rewards = rewards + self._noise(key, rewards.shape, params)
        return self.encode(rewards).reshape(-1)

    # -- gymnax API ----------------------------------------------------------------------
    @property
    def default_params(self) -> ChannelParams:
        return ChannelParams(env=self.env.default_params)

    def reset_env(self, key, params: ChannelParams):
        k_env, k_sig = jax.random.split(key)
        obs, env_state = self.env.reset_env(k_env, params.env)
        signal = self._next_signal(k_sig, env_state, params)
        state = ChannelState(env=env_state, signal=signal, time=env_state.time)
        return self._obs(obs, signal), state

    def step_env(self, key, state: ChannelState, action, params: ChannelParams):
        k_env, k_prev, k_next = jax.random.split(key, 3)
        obs, env_state, reward, terminated, info = self.env.step_env(k_env, state.env, action, params.env)
        table = self.observed_table(state.env.reward_table, params)
        observed = self.env.reward_of(info["collected_colour"], info["collected_shape"], table)
        observed = observed + jnp.where(info["collected_colour"] >= 0, self._noise(k_prev, (), params), 0.0)
        if self.mode == "prev":
            signal = self.encode(observed).reshape(-1)
        else:
            signal = self._next_signal(k_next, env_state, params)
        info = {**info, "observed_reward": observed}
        state = ChannelState(env=env_state, signal=signal, time=env_state.time)
        return self._obs(obs, signal), state, reward, terminated, info

    def _obs(self, obs, signal):
        return jnp.concatenate([obs, signal]) if self.signal_dim else obs

    def get_obs(self, state: ChannelState, params=None, key=None):
        return self._obs(self.env.get_obs(state.env, params.env if params is not None else None), state.signal)

    def is_truncated(self, state: ChannelState, params: ChannelParams):
        return self.env.is_truncated(state.env, params.env)

    def is_terminated(self, state: ChannelState, params: ChannelParams):
        return self.env.is_terminated(state.env, params.env)

    @property
    def name(self) -> str:
        return f"RewardChannel[{self.mode},{self.transform}]({self.env.name})"

    @property
    def num_actions(self) -> int:
        return self.env.num_actions

    def action_space(self, params=None):
        return self.env.action_space(params.env if params is not None else None)

    def observation_space(self, params: ChannelParams):
        inner = self.env.observation_space(params.env)
        dim = int(np.prod(inner.shape)) + self.signal_dim
        low = -1.0 if self.transform == "mlp" else -jnp.inf
        return spaces.Box(low, jnp.inf, (dim,), jnp.float32)
