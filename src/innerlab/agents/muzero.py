"""A MuZero-style agent: learned representation, dynamics, reward ensemble and value; acts by
Gumbel MuZero tree search (mctx) in its own learned model.

    agent = make_muzero(config, env)
    state = agent.init(key, env_params)                  # MuZeroState (one seed), buffer pre-filled
    state, metrics = agent.run(state, env_params, n)    # n updates, one lax.scan
    rewards = agent.reward_heads(state.params, obs, action)      # [E]: the agent's objective
    returns = agent.evaluate(state.params, key, env_params, episodes)

What it is for: the robust-reward experiment compares the objective of a model-based agent
with the true reward. Here the objective is explicit: the agent plans with the mean of an
ensemble of E reward heads r_e(h(o), a), so `reward_heads` read at every (state, action) of
a level is the agent's reward function, comparable exactly with the env's (EPIC, regret).

Model (all MLPs, one flax module, STYLE.md 6):
    s_0 = h(o)                          representation, latent [latent_dim] in [0, 1] (min-max scaled)
    s_{k+1} = g(s_k, a_k)               dynamics, same scaling
    r_e(s_k, a_k), e = 1..E             reward heads (independent initialisations)
    pi(s_k), v(s_k)                     policy logits [A] and value
The search's reward is mean_e r_e; its discount is `discount` on every edge (the model knows
nothing of episode ends; after an end its targets are those of an absorbing state: reward 0,
value 0, policy loss masked).

Training (one update = one `lax.scan` step): every env takes `rollout_len` steps acting on
`gumbel_muzero_policy` (Gumbel noise on, which explores), writing observation, action,
reward, episode end, the search's root value and its improved policy (`action_weights`) into
a time-major ring buffer of `buffer_len` steps x num_envs; then `sgd_steps` gradient steps on
`batch_size` sequences drawn uniformly from the buffer, each unrolled `unroll` steps through
the dynamics from its first observation, with losses (rlax-style, one sequence, vmapped):
    reward: sum_e sum_k (r_e(s_k, a_{t+k}) - r_{t+k})^2                  (masked after an episode end)
    value:  sum_k (v(s_k) - z_{t+k})^2,  z_t = sum_{i<n} d^i r_{t+i} + d^n v_root(t+n)   (n = td_steps;
            the sum stops and nothing is bootstrapped at an episode end, truncation included)
    policy: sum_k CE(pi_search(t+k), pi(s_k))                                (masked after an end)
Gradients into the dynamics are halved at each unrolled step (MuZero's scaling).

Choices: Gumbel MuZero because it improves the policy with few simulations (8 here on CPU),
and all 4 actions are considered at the root. A random network's policy is peaked, so the
prediction head starts at zero (uniform prior, value 0); 8 gradient steps per 128 env steps
(lr 1e-3) learned a 5 x 5 ObjectWorld with random positions (return 1.7-1.9 of 2 after 40 k
steps, random policy about 0); 2 steps (lr 3e-3) had learned nothing by then. Value and reward are regressed with squared
error (ObjectWorld rewards are small, |r| <= 1); MuZero's categorical heads are not needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import mctx
import optax
from flax import struct


@dataclass(frozen=True)
class MuZeroConfig:
    num_envs: int = 16
    """Parallel environments per seed."""
    rollout_len: int = 8
    """Env steps per environment per update."""
    total_steps: int = 40_960
    """Env steps per seed over the run (rounded down to whole updates; buffer pre-fill not counted)."""
    buffer_len: int = 128
    """Time steps (per env) kept in the replay ring buffer."""
    batch_size: int = 128
    """Sequences per gradient step."""
    sgd_steps: int = 8
    """Gradient steps per update."""
    unroll: int = 3
    """K: dynamics steps unrolled per training sequence."""
    td_steps: int = 5
    """n of the n-step value target."""
    discount: float = 0.95
    num_simulations: int = 8
    """Simulations per Gumbel MuZero search."""
    latent_dim: int = 32
    width: int = 64
    """Hidden width of every MLP."""
    ensemble: int = 4
    """E: reward heads; the agent plans with their mean."""
    explore_start: float = 0.5
    explore_end: float = 0.05
    """Chance of a uniformly random action instead of the search's, decayed linearly from
    explore_start to explore_end over the first half of training (the search's improved
    policy is nearly deterministic, and a reward never seen is a reward never learned)."""
    lr: float = 1e-3
    value_coef: float = 0.5
    max_grad_norm: float = 5.0

    def __post_init__(self):
        for name in ("num_envs", "rollout_len", "batch_size", "sgd_steps", "unroll", "td_steps", "num_simulations",
                     "latent_dim", "width", "ensemble"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.buffer_len < self.window + self.rollout_len:
            raise ValueError(f"buffer_len ({self.buffer_len}) must hold a training window (unroll + td_steps + 1 = "
                             f"{self.window}) plus one rollout ({self.rollout_len})")
        if self.total_steps < self.steps_per_update:
            raise ValueError(f"total_steps ({self.total_steps}) must be at least one update "
                             f"(num_envs * rollout_len = {self.steps_per_update})")
        if not 0.0 <= self.discount <= 1.0:
            raise ValueError(f"discount must be in [0, 1], got {self.discount}")

    @property
    def window(self) -> int:
        """Consecutive buffer steps one training sequence reads."""
        return self.unroll + self.td_steps + 1

    @property
    def steps_per_update(self) -> int:
        return self.num_envs * self.rollout_len

    @property
    def num_updates(self) -> int:
        return self.total_steps // self.steps_per_update

    @property
    def prefill_rollouts(self) -> int:
        """Rollouts made before learning starts, so that a window can be drawn."""
        return -(-self.window // self.rollout_len)


def _scale(x: jax.Array) -> jax.Array:
    """Min-max scale a latent [..., D] to [0, 1] (MuZero's hidden-state normalisation)."""
    low, high = x.min(-1, keepdims=True), x.max(-1, keepdims=True)
    return (x - low) / jnp.maximum(high - low, 1e-5)


class _MLP(nn.Module):
    width: int
    out: int
    zero_out: bool = False
    """Zero-initialise the output layer (the policy starts uniform and the value at 0, so the
    first searches explore instead of following a random network's peaked prior)."""

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Dense(self.width)(x))
        x = nn.relu(nn.Dense(self.width)(x))
        init = nn.initializers.zeros if self.zero_out else nn.initializers.lecun_normal()
        return nn.Dense(self.out, kernel_init=init)(x)


class _RewardHead(nn.Module):
    width: int

    @nn.compact
    def __call__(self, x):
        return _MLP(self.width, 1)(x)[..., 0]


class MuZeroNet(nn.Module):
    """Unbatched: obs [D], latent [latent_dim], action [] int."""

    num_actions: int
    latent_dim: int
    width: int
    ensemble: int

    def setup(self):
        self.repr_net = _MLP(self.width, self.latent_dim)
        self.dyn_net = _MLP(self.width, self.latent_dim)
        self.pred_net = _MLP(self.width, self.num_actions + 1, zero_out=True)
        self.reward_net = nn.vmap(_RewardHead, variable_axes={"params": 0}, split_rngs={"params": True},
                                  in_axes=None, axis_size=self.ensemble)(self.width)

    def represent(self, obs):
        return _scale(self.repr_net(obs))

    def dynamics(self, latent, action):
        return _scale(self.dyn_net(jnp.concatenate([latent, jax.nn.one_hot(action, self.num_actions)])))

    def rewards(self, latent, action):
        """[E] each head's reward for taking `action` in `latent`."""
        return self.reward_net(jnp.concatenate([latent, jax.nn.one_hot(action, self.num_actions)]))

    def predict(self, latent):
        out = self.pred_net(latent)
        return out[:-1], out[-1]

    def __call__(self, obs, action):  # touches every submodule, for init
        latent = self.represent(obs)
        logits, value = self.predict(latent)
        return self.dynamics(latent, action), self.rewards(latent, action), logits, value


@struct.dataclass
class Buffer:
    """Time-major ring buffer [L, N, ...]; `count` steps written so far (all envs together)."""

    obs: jax.Array            # [L, N, D]
    action: jax.Array         # [L, N] int32
    reward: jax.Array         # [L, N]
    done: jax.Array           # [L, N] bool, the episode ended on this step (terminated or truncated)
    root_value: jax.Array     # [L, N] search value at obs
    policy: jax.Array         # [L, N, A] search's improved policy at obs
    count: jax.Array          # [] int32


@struct.dataclass
class MuZeroState:
    params: Any
    opt_state: Any
    buffer: Buffer
    env_state: Any            # [N]
    obs: jax.Array            # [N, D]
    key: jax.Array
    episode_return: jax.Array  # [N] running return of the current episode
    updates: jax.Array        # [] int32 updates done (drives the exploration schedule)


class MuZero(NamedTuple):
    config: MuZeroConfig
    net: MuZeroNet
    init: Callable[..., MuZeroState]
    run: Callable[..., tuple[MuZeroState, dict]]
    search: Callable[..., Any]
    act: Callable[..., jax.Array]
    reward_heads: Callable[[Any, jax.Array, jax.Array], jax.Array]
    latent_reward_heads: Callable[[Any, jax.Array, jax.Array], jax.Array]
    represent: Callable[[Any, jax.Array], jax.Array]
    evaluate: Callable[..., jax.Array]


def make_muzero(config: MuZeroConfig, env) -> MuZero:
    """Build the agent for `env` (flat observation views only)."""
    obs_dim = env.observation_space(env.default_params).shape
    if len(obs_dim) != 1:
        raise ValueError(f"MuZero needs flat observations, the env gives shape {obs_dim}")
    num_actions = env.num_actions
    net = MuZeroNet(num_actions, config.latent_dim, config.width, config.ensemble)
    optimizer = optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(config.lr))
    n, a, d = config.num_envs, num_actions, obs_dim[0]

    def reward_heads(params, obs, action):
        """[E] per-head reward of taking `action` [] at observation `obs` [D]."""
        return net.apply(params, net.apply(params, obs, method=MuZeroNet.represent), action,
                         method=MuZeroNet.rewards)

    def latent_reward_heads(params, latent, action):
        return net.apply(params, latent, action, method=MuZeroNet.rewards)

    def represent(params, obs):
        return net.apply(params, obs, method=MuZeroNet.represent)

    def recurrent_fn(params, key, action, latent):
        del key
        def one(lat, act):
            nxt = net.apply(params, lat, act, method=MuZeroNet.dynamics)
            reward = net.apply(params, lat, act, method=MuZeroNet.rewards).mean()
            logits, value = net.apply(params, nxt, method=MuZeroNet.predict)
            return nxt, reward, logits, value
        nxt, reward, logits, value = jax.vmap(one)(latent, action)
        out = mctx.RecurrentFnOutput(reward=reward, discount=jnp.full_like(reward, config.discount),
                                     prior_logits=logits, value=value)
        return out, nxt

    def search(params, key, obs, gumbel_scale=1.0):
        """Gumbel MuZero search from observations [B, D]; returns mctx's PolicyOutput."""
        latent = jax.vmap(represent, (None, 0))(params, obs)
        logits, value = jax.vmap(lambda l: net.apply(params, l, method=MuZeroNet.predict))(latent)
        root = mctx.RootFnOutput(prior_logits=logits, value=value, embedding=latent)
        return mctx.gumbel_muzero_policy(params, key, root, recurrent_fn, config.num_simulations,
                                         max_num_considered_actions=a, gumbel_scale=gumbel_scale)

    def act(params, key, obs, epsilon, gumbel_scale=1.0):
        """Actions [B] for observations [B, D]: the search's, or with chance `epsilon` a uniform
        random one; also returns the search's PolicyOutput."""
        k_search, k_eps, k_rand = jax.random.split(key, 3)
        out = search(params, k_search, obs, gumbel_scale)
        count = obs.shape[0]
        random = jax.random.uniform(k_eps, (count,)) < epsilon
        return jnp.where(random, jax.random.randint(k_rand, (count,), 0, a), out.action).astype(jnp.int32), out

    step_envs = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def rollout(state: MuZeroState, env_params, epsilon):
        def one_step(carry, _):
            state = carry
            key, k_act, k_step = jax.random.split(state.key, 3)
            action, out = act(state.params, k_act, state.obs, epsilon)
            obs, env_state, reward, terminated, truncated, _ = step_envs(
                jax.random.split(k_step, n), state.env_state, action, env_params)
            done = terminated | truncated
            ret = state.episode_return + reward
            record = dict(obs=state.obs, action=action, reward=reward, done=done,
                          root_value=out.search_tree.node_values[:, 0], policy=out.action_weights,
                          ended_return=jnp.where(done, ret, jnp.nan))
            state = state.replace(key=key, obs=obs, env_state=env_state,
                                  episode_return=jnp.where(done, 0.0, ret))
            return state, record
        return jax.lax.scan(one_step, state, None, config.rollout_len)

    def write(buffer: Buffer, record) -> Buffer:
        steps = config.rollout_len
        slots = (buffer.count + jnp.arange(steps)) % config.buffer_len
        fields = {name: getattr(buffer, name).at[slots].set(record[name].astype(getattr(buffer, name).dtype))
                  for name in ("obs", "action", "reward", "done", "root_value", "policy")}
        return buffer.replace(count=buffer.count + steps, **fields)

    def sample(buffer: Buffer, key):
        """`batch_size` windows [B, W, ...] starting uniformly among complete windows."""
        filled = jnp.minimum(buffer.count, config.buffer_len)
        oldest = buffer.count - filled
        k_t, k_n = jax.random.split(key)
        start = oldest + jax.random.randint(k_t, (config.batch_size,), 0, filled - config.window + 1)
        env_index = jax.random.randint(k_n, (config.batch_size,), 0, n)
        slots = (start[:, None] + jnp.arange(config.window)) % config.buffer_len  # [B, W]
        take = lambda x: x[slots, env_index[:, None]]
        return {name: take(getattr(buffer, name)) for name in ("obs", "action", "reward", "done", "root_value",
                                                                "policy")}

    def targets(window):
        """One sequence's targets: value z [K+1], reward [K], policy [K+1, A], masks alive [K+1]."""
        k_unroll, td, disc = config.unroll, config.td_steps, config.discount
        reward, done, root_value = window["reward"], window["done"].astype(jnp.float32), window["root_value"]
        alive = jnp.concatenate([jnp.ones(1), jnp.cumprod(1.0 - done[:k_unroll])])  # [K+1] no end before k
        values = []
        for k in range(k_unroll + 1):
            running, cont = 0.0, 1.0
            for i in range(td):
                running = running + cont * disc ** i * reward[k + i]
                cont = cont * (1.0 - done[k + i])
            values.append(running + cont * disc ** td * root_value[k + td])
        return (alive * jnp.stack(values), alive[:-1] * reward[:k_unroll], window["policy"][:k_unroll + 1],
                alive)

    def sequence_loss(params, window):
        value_t, reward_t, policy_t, alive = targets(window)
        latent = net.apply(params, window["obs"][0], method=MuZeroNet.represent)
        value_loss = reward_loss = policy_loss = 0.0
        for k in range(config.unroll + 1):
            logits, value = net.apply(params, latent, method=MuZeroNet.predict)
            value_loss += (value - value_t[k]) ** 2
            policy_loss += -alive[k] * (policy_t[k] * jax.nn.log_softmax(logits)).sum()
            if k < config.unroll:
                action = window["action"][k]
                heads = net.apply(params, latent, action, method=MuZeroNet.rewards)
                reward_loss += ((heads - reward_t[k]) ** 2).sum()
                latent = net.apply(params, latent, action, method=MuZeroNet.dynamics)
                latent = 0.5 * latent + 0.5 * jax.lax.stop_gradient(latent)
        scale = 1.0 / (config.unroll + 1)
        total = scale * (reward_loss + config.value_coef * value_loss + policy_loss)
        return total, dict(reward_loss=reward_loss / config.unroll / config.ensemble,
                           value_loss=value_loss * scale, policy_loss=policy_loss * scale)

    def batch_loss(params, batch):
        total, parts = jax.vmap(sequence_loss, (None, 0))(params, batch)
        return total.mean(), jax.tree.map(jnp.mean, parts)

    def sgd_step(state: MuZeroState, _):
        key, k_sample = jax.random.split(state.key)
        batch = sample(state.buffer, k_sample)
        (_, parts), grads = jax.value_and_grad(batch_loss, has_aux=True)(state.params, batch)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        return state.replace(params=optax.apply_updates(state.params, updates), opt_state=opt_state, key=key), parts

    def update(state: MuZeroState, env_params):
        done_frac = state.updates / jnp.maximum(config.num_updates / 2, 1)
        epsilon = config.explore_start + (config.explore_end - config.explore_start) * jnp.minimum(done_frac, 1.0)
        state, record = rollout(state, env_params, epsilon)
        state = state.replace(buffer=write(state.buffer, record))
        state, parts = jax.lax.scan(sgd_step, state, None, config.sgd_steps)
        state = state.replace(updates=state.updates + 1)
        ended = record["ended_return"]
        metrics = dict(jax.tree.map(jnp.mean, parts), episode_return=jnp.nanmean(ended),
                       episodes=jnp.isfinite(ended).sum())
        return state, metrics

    def init(key, env_params) -> MuZeroState:
        k_net, k_reset, k_run = jax.random.split(key, 3)
        obs, env_state = jax.vmap(env.reset, (0, None))(jax.random.split(k_reset, n), env_params)
        params = net.init(k_net, obs[0], jnp.int32(0))
        buffer = Buffer(obs=jnp.zeros((config.buffer_len, n, d)), action=jnp.zeros((config.buffer_len, n), jnp.int32),
                        reward=jnp.zeros((config.buffer_len, n)), done=jnp.zeros((config.buffer_len, n), bool),
                        root_value=jnp.zeros((config.buffer_len, n)), policy=jnp.zeros((config.buffer_len, n, a)),
                        count=jnp.int32(0))
        state = MuZeroState(params=params, opt_state=optimizer.init(params), buffer=buffer, env_state=env_state,
                            obs=obs, key=k_run, episode_return=jnp.zeros(n),
                            updates=jnp.int32(0))
        def prefill(state, _):  # a scan, so the rollout compiles once
            state, record = rollout(state, env_params, config.explore_start)
            return state.replace(buffer=write(state.buffer, record)), None

        state, _ = jax.lax.scan(prefill, state, None, config.prefill_rollouts)
        return state

    def run(state: MuZeroState, env_params, num_updates: int):
        return jax.lax.scan(lambda s, _: update(s, env_params), state, None, num_updates)

    def evaluate(params, key, env_params, num_envs: int, num_steps: int, epsilon=0.0):
        """Mean return of ended episodes over `num_steps` steps of `num_envs` envs, acting on the
        search's most-weighted action (no Gumbel noise), or with chance `epsilon` a uniform random
        action (epsilon 1: the random-policy baseline); nan if no episode ended."""
        k_reset, k_run = jax.random.split(key)
        obs, env_state = jax.vmap(env.reset, (0, None))(jax.random.split(k_reset, num_envs), env_params)

        def one_step(carry, _):
            key, obs, env_state, ret = carry
            key, k_act, k_step = jax.random.split(key, 3)
            action, _ = act(params, k_act, obs, epsilon, gumbel_scale=0.0)
            obs, env_state, reward, terminated, truncated, _ = step_envs(
                jax.random.split(k_step, num_envs), env_state, action, env_params)
            done = terminated | truncated
            ret = ret + reward
            return (key, obs, env_state, jnp.where(done, 0.0, ret)), jnp.where(done, ret, jnp.nan)

        _, ended = jax.lax.scan(one_step, (k_run, obs, env_state, jnp.zeros(num_envs)), None, num_steps)
        return jnp.nanmean(ended)

    return MuZero(config=config, net=net, init=init, run=run, search=search, act=act, reward_heads=reward_heads,
                  latent_reward_heads=latent_reward_heads, represent=represent, evaluate=evaluate)
