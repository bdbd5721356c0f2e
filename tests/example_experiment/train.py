"""REINFORCE on Bernoulli bandit arms, seeds vmapped, on the kit's chunked runner."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from innerlab.experiments.outputs import save_agents
from innerlab.experiments.training import compile_chunked, run_chunked, seed_keys

STREAMS = ("train",)


@struct.dataclass
class State:
    logits: jax.Array   # [arms]
    key: jax.Array
    update: jax.Array   # [] int32, updates done


def init(key, arms: int) -> State:
    return State(logits=jnp.zeros((arms,)), key=key, update=jnp.zeros((), jnp.int32))


def update(state: State, gap, num_envs: int, lr) -> tuple[State, dict]:
    key, k_arm, k_pay = jax.random.split(state.key, 3)
    arm = jax.random.categorical(k_arm, state.logits, shape=(num_envs,))
    pay_prob = jnp.where(arm == 0, 0.5 + gap, 0.5)
    reward = jax.random.bernoulli(k_pay, pay_prob).astype(jnp.float32)
    advantage = reward - reward.mean()
    # grad of log softmax(logits)[arm] is onehot(arm) - softmax(logits)
    grad = ((jax.nn.one_hot(arm, state.logits.shape[0]) - jax.nn.softmax(state.logits)) * advantage[:, None]).mean(0)
    state = State(logits=state.logits + lr * grad, key=key, update=state.update + 1)
    return state, {"mean_reward": reward.mean()}


def run(state: State, gap, num_updates: int, num_envs: int, lr) -> tuple[State, dict]:
    return jax.lax.scan(lambda s, _: update(s, gap, num_envs, lr), state, None, length=num_updates)


@functools.lru_cache(maxsize=4)
def _compiled(arms: int, num_envs: int, num_updates: int, chunks: int, lr: float):
    return compile_chunked(functools.partial(init, arms=arms),
                           functools.partial(run, num_envs=num_envs, lr=lr), num_updates, chunks, init_axes=(0,))


def run_job(config, condition, seeds, progress=None) -> list[dict]:
    num_updates = config.total_steps // config.num_envs
    compiled = _compiled(config.arms, config.num_envs, num_updates, config.progress_chunks, config.lr)
    state = compiled.init(seed_keys(seeds, STREAMS)["train"])
    state, metrics = run_chunked(compiled, state, jnp.float32(condition.fields["gap"]), progress,
                                 status=lambda m: f"mean reward {np.mean(m['mean_reward']):.2f}")
    # Every seed's trained policy (its logits, [S, arms]) into run_dir/checkpoints, for load_agent.
    save_agents("agent", {"logits": state.logits}, kind="logits", meta={"arms": config.arms})
    p_best = np.asarray(jax.nn.softmax(state.logits)[:, 0])
    steps = np.asarray(state.update) * config.num_envs
    rows = []
    for s, seed in enumerate(seeds):
        rows.append({"seed": int(seed), "metric": "p_best", "value": float(p_best[s])})
        rows.append({"seed": int(seed), "metric": "final_reward", "value": float(metrics["mean_reward"][s, -1])})
        rows.append({"seed": int(seed), "metric": "env_steps", "value": float(steps[s])})
    return rows
