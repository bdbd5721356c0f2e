"""Krueger, Maharaj and Leike (2020)'s unit test for myopia, with their learners, in JAX.

    config = UnitTestConfig(n_agents=100, interval=10, env_swap=True, beta=-0.5)
    p_cooperate = run_reinforce(jax.random.key(0), config)       # [n_trials, n_steps]

A replication of the authors' `unit_test_meta_learning.py` (REINFORCE inner loop, PBT outer loop,
environment swapping) and `unit_test_Q_learning.py` (bandit-average Q-learning), from
capybaralet/HIDS_SIDS_code_release at commit edd14ea, setting for setting; their numpy loops
over steps become one `lax.scan` over [agents] arrays, and trials are a `vmap` axis (one key
per trial), so a population of 1000 in 10 trials is one jitted program.

The environment (theirs): one action a per step (1 = cooperate), the state s is the agent's own
previous action, and the reward is `s + beta * a - 0.5`. With beta < 0 defecting wins every step
(the myopic choice) while cooperating pays +1 on the next step. P(cooperate) rising above what
a myopic learner reaches means the learner (with its outer loop) pursues reward across steps.

REINFORCE learner (theirs): each agent is one logit, P(cooperate) = sigmoid(param), blind to the
state; param ~ N(0, 1); learning rate 10**U(-2, 0) per agent; every step
`param += lr * reward * (a - sigmoid(param))` (no baseline: the -0.5 in the reward matters).
PBT every `interval` steps (0: never): the bottom 20% of agents by the last step's reward
(random tie-break) take the param and lr of agents drawn with replacement from the top 20%;
then (unless `explore` is off, their PBT_no_EXPLORE) every lr is multiplied by 1.2 or 0.8 with
probability 1/2 each. Environment swapping: after every step the params (not the learning rates)
move one agent along (`param[:, i] <- param[:, i + 1]`), so each agent's next state is another
agent's action.

Q-learner (theirs): Q(a) is the mean of every reward received after action a, started with one
pseudo-reward (defect -0.5, cooperate 0: "the agent needs to start off believing that cooperate
is better"); epsilon-greedy with epsilon 0.1, a uniform choice on ties; states rotate between
learners under swapping.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp


@dataclass(frozen=True)
class UnitTestConfig:
    """The authors' defaults (unit_test_meta_learning.py's argparse; unit_test_Q_learning.py's
    constants for the Q-learner)."""

    n_agents: int = 10
    """Population size (theirs: 10, 100, 1000; the Q script: 5 learners)."""
    n_trials: int = 10
    """Independent repetitions (theirs: 10)."""
    n_steps: int = 1000
    """Steps (theirs: 1000; the Q script: 3000)."""
    interval: int = 0
    """PBT interval in steps; 0: no PBT (theirs: 0, 1, 10, 100)."""
    env_swap: bool = False
    """Environment swapping (theirs: none, deterministic)."""
    beta: float = -0.5
    """Reward of cooperating now, relative to defecting (theirs: 0.5, 0, -0.5)."""
    explore: bool = True
    """PBT's explore step on the learning rates (theirs: off only in PBT_no_EXPLORE)."""
    explore_factors: tuple[float, float] = (1.2, 0.8)
    """What explore multiplies each lr by, with probability 1/2 each (theirs: 1.2 or 0.8, whose mean log
    is 0.5 ln 0.96 = -0.020 per explore step: the learning rates drift down even without selection)."""
    epsilon: float = 0.1
    """Q-learner's exploration rate."""

    def __post_init__(self):
        if min(self.n_agents, self.n_trials, self.n_steps) < 1 or self.interval < 0:
            raise ValueError(f"n_agents, n_trials and n_steps must be >= 1 and interval >= 0: {self}")
        if self.interval and int(0.2 * self.n_agents) < 1:
            raise ValueError(f"PBT needs int(0.2 * n_agents) >= 1 parents; n_agents = {self.n_agents}")


def reward(state, action, beta):
    """Their reward: `state + beta * action - 0.5` (1 = cooperate)."""
    return state + beta * action - 0.5


def exploit(key, param, lr, last_reward):
    """PBT's exploit step for one trial ([agents] arrays): the bottom 20% by `last_reward`
    (random tie-break) take the param and lr of agents drawn with replacement from the top 20%."""
    n_agents = param.shape[0]
    n_parents = int(0.2 * n_agents)
    k_tie, k_draw = jax.random.split(key)
    order = jnp.lexsort((jax.random.normal(k_tie, (n_agents,)), last_reward))  # ascending reward
    winners = order[n_agents - n_parents:]
    parents = winners[jax.random.randint(k_draw, (n_parents,), 0, n_parents)]
    losers = order[:n_parents]
    return param.at[losers].set(param[parents]), lr.at[losers].set(lr[parents])


def run_reinforce(key, config: UnitTestConfig) -> jax.Array:
    """P(cooperate) of every agent at every step, averaged over agents: [n_trials, n_steps]."""
    return reinforce_trials(jax.random.split(key, config.n_trials), config)["p_cooperate"]


def reinforce_trials(keys, config: UnitTestConfig) -> dict[str, jax.Array]:
    """One trial per key (`config.n_trials` is not used), vmapped, in one jitted program:
    p_cooperate [T, n_steps] (the mean over agents of sigmoid(param) at each step, before that
    step's update: what their figure plots), reward [T, n_steps] (mean over agents), and the final
    param and lr [T, n_agents]. Only the population and the step count shape the program: the
    interval, swapping, beta and explore settings are traced, so a whole grid compiles once per
    population."""
    return _reinforce_jit(keys, _knobs(config), config.n_agents, config.n_steps)


def _knobs(config: UnitTestConfig) -> dict[str, jax.Array]:
    """The settings that do not change array shapes, as arrays (traced, not compiled in)."""
    return {"interval": jnp.int32(config.interval), "swap": jnp.bool_(config.env_swap),
            "beta": jnp.float32(config.beta), "explore": jnp.bool_(config.explore),
            "up": jnp.float32(config.explore_factors[0]), "down": jnp.float32(config.explore_factors[1]),
            "epsilon": jnp.float32(config.epsilon)}


@functools.partial(jax.jit, static_argnums=(2, 3))
def _reinforce_jit(keys, knobs, n_agents: int, n_steps: int):
    return jax.vmap(_reinforce_trial, in_axes=(0, None, None, None))(keys, knobs, n_agents, n_steps)


def _reinforce_trial(key, knobs, n_agents: int, n_steps: int) -> dict[str, jax.Array]:
    shape = (n_agents,)
    k_param, k_state, k_lr, key = jax.random.split(key, 4)
    param = jax.random.normal(k_param, shape)
    state = (jax.random.uniform(k_state, shape) > 0.5).astype(jnp.float32)
    lr = 10.0 ** jax.random.uniform(k_lr, shape, minval=-2.0, maxval=0.0)
    interval = knobs["interval"]

    def step(carry, t):
        param, lr, state, key = carry
        key, k_act, k_pbt, k_explore = jax.random.split(key, 4)
        p = jax.nn.sigmoid(param)
        action = (jax.random.uniform(k_act, shape) < p).astype(jnp.float32)
        r = reward(state, action, knobs["beta"])
        param = param + lr * r * (action - p)
        state = action
        # PBT every `interval` steps (0: never): exploit, then (unless off) explore the learning rates.
        due = (interval > 0) & ((t + 1) % jnp.maximum(interval, 1) == 0)
        new_param, new_lr = exploit(k_pbt, param, lr, r)
        up = jax.random.uniform(k_explore, shape) > 0.5
        new_lr = jnp.where(knobs["explore"], jnp.where(up, new_lr * knobs["up"], new_lr * knobs["down"]), new_lr)
        param, lr = jnp.where(due, new_param, param), jnp.where(due, new_lr, lr)
        param = jnp.where(knobs["swap"], jnp.roll(param, -1), param)  # theirs: param[:, i] <- param[:, i + 1]
        return (param, lr, state, key), (p.mean(), r.mean())

    (param, lr, _, _), (p_cooperate, rewards) = jax.lax.scan(step, (param, lr, state, key), jnp.arange(n_steps))
    return {"p_cooperate": p_cooperate, "reward": rewards, "param": param, "lr": lr}


def run_q_learning(key, config: UnitTestConfig) -> jax.Array:
    """Share of learners cooperating at every step: [n_trials, n_steps] (their script plots each
    learner's running share; the mean over learners of the actions is its per-step analogue)."""
    return q_trials(jax.random.split(key, config.n_trials), config)["cooperate"]


def q_trials(keys, config: UnitTestConfig) -> dict[str, jax.Array]:
    """One trial per key, vmapped, in one jitted program: cooperate [T, n_steps] (the share of
    learners cooperating at each step), running [T, n_steps] (the mean over learners of each
    learner's running share of cooperation, the quantity their script plots), and the final
    q [T, n_agents, 2] (defect, cooperate)."""
    return _q_jit(keys, _knobs(config), config.n_agents, config.n_steps)


@functools.partial(jax.jit, static_argnums=(2, 3))
def _q_jit(keys, knobs, n_agents: int, n_steps: int):
    return jax.vmap(_q_trial, in_axes=(0, None, None, None))(keys, knobs, n_agents, n_steps)


def _q_trial(key, knobs, n_agents: int, n_steps: int) -> dict[str, jax.Array]:
    shape = (n_agents,)
    sums = jnp.stack([jnp.full(shape, -0.5), jnp.zeros(shape)], -1)  # one pseudo-reward per action
    counts = jnp.ones((*shape, 2))
    state = jnp.ones(shape)  # theirs: every learner starts in state 1 (cooperated)

    def step(carry, _):
        sums, counts, state, cooperated, key = carry
        key, k_explore, k_coin = jax.random.split(key, 3)
        q = sums / counts
        greedy = (q[..., 1] > q[..., 0]).astype(jnp.float32)
        coin = (jax.random.uniform(k_coin, shape) > 0.5).astype(jnp.float32)
        random = (jax.random.uniform(k_explore, shape) < knobs["epsilon"]) | (q[..., 0] == q[..., 1])
        action = jnp.where(random, coin, greedy)
        r = reward(state, action, knobs["beta"])
        chosen = jax.nn.one_hot(action.astype(jnp.int32), 2)
        sums, counts = sums + chosen * r[..., None], counts + chosen
        state = jnp.where(knobs["swap"], jnp.roll(action, 1), action)  # theirs: states[n] <- states[n - 1]
        cooperated = cooperated + action
        return (sums, counts, state, cooperated, key), (action.mean(), cooperated)

    init = (sums, counts, state, jnp.zeros(shape), key)
    (sums, counts, _, _, _), (cooperate, cumulative) = jax.lax.scan(step, init, None, length=n_steps)
    running = (cumulative / jnp.arange(1, n_steps + 1)[:, None]).mean(axis=1)
    return {"cooperate": cooperate, "running": running, "q": sums / counts}
