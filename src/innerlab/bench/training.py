"""The JAX side of `innerlab bench`: training and env throughput, matmul peak, memory.

Every measurement compiles first (compile time reported apart), runs once to warm up, then
takes the best of `repeats` timed calls: on a shared machine the best is the least noisy
estimate of what the code costs.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from innerlab.agents import HParams, NetworkConfig, PPOConfig, make_network, make_train
from innerlab.agents.pbt import PBTConfig, broadcast_hparams, make_population
from innerlab.envs import ObjectWorld, make_params
from innerlab.experiments.training import compile_chunked


@dataclass(frozen=True)
class TrainSetup:
    """The benchmark's agent and PPO settings (the sb3 peer is built from the same)."""

    arch: str = "lstm"
    width: int = 128
    rollout_len: int = 128
    update_epochs: int = 4
    num_minibatches: int = 4
    lr: float = 3e-4
    ent_coef: float = 0.01


def bench_env():
    """ObjectWorld 7x7, 6 objects, 2 colours, flat observation, 30-step episodes: the env both
    innerlab and the numpy peer (`np_objectworld`) run."""
    env = ObjectWorld(size=7, num_objects=6, num_colours=2)
    return env, make_params(env, max_steps_in_episode=30)


def forward_flops(obs_dim: int, width: int, num_actions: int, arch: str = "lstm") -> int:
    """FLOPs of one network step for one env (2 per multiply-add): torso obs -> width, the
    recurrent cell's input and hidden products (4 gates for an LSTM, 3 for a GRU, none for an
    MLP), and the policy and value heads."""
    gates = {"lstm": 4, "gru": 3, "mlp": 0}[arch]
    macs = obs_dim * width + 2 * width * gates * width + width * (num_actions + 1)
    return 2 * macs


def train_flops_per_step(setup: TrainSetup, obs_dim: int, num_actions: int) -> float:
    """FLOPs per env step of PPO training: two forward steps in the rollout (acting, and the
    value of the true next observation) and, per epoch, a forward and a backward pass
    (counted as 2x forward) over the step."""
    fwd = forward_flops(obs_dim, setup.width, num_actions, setup.arch)
    return fwd * (2 + 3 * setup.update_epochs)


def matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """This machine's float32 matmul rate in GFLOP/s (an n x n product through XLA)."""
    a = jax.random.normal(jax.random.key(0), (n, n))
    b = jax.random.normal(jax.random.key(1), (n, n))
    f = jax.jit(lambda a, b: a @ b)
    jax.block_until_ready(f(a, b))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(f(a, b))
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


def _memory(compiled) -> int | None:
    """Bytes XLA plans for a compiled call (arguments + outputs + temporaries - aliased)."""
    try:
        m = compiled.memory_analysis()
        return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
                   - m.alias_size_in_bytes)
    except Exception:  # not every backend reports it
        return None


def _time(compiled, state, args, repeats: int) -> tuple[float, object]:
    state, _ = jax.block_until_ready(compiled(state, *args))  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        state, _ = jax.block_until_ready(compiled(state, *args))
        best = min(best, time.perf_counter() - t0)
    return best, state


def _nothing():
    return contextlib.nullcontext()


def _trainer(setup: TrainSetup, num_envs: int, updates: int):
    """(env, env params, network, PPO trainer) of the benchmark for `updates` updates."""
    env, params = bench_env()
    obs_dim = env.observation_space(params).shape[0]
    network = make_network(NetworkConfig(arch=setup.arch, width=setup.width), obs_dim, env.num_actions)
    ppo = PPOConfig(num_envs=num_envs, rollout_len=setup.rollout_len, update_epochs=setup.update_epochs,
                    num_minibatches=setup.num_minibatches, total_steps=num_envs * setup.rollout_len * updates)
    return env, params, network, make_train(ppo, env, network)


def train_throughput(setup: TrainSetup, num_envs: int, seeds: int = 1, updates: int = 2,
                     repeats: int = 3) -> dict:
    """Env steps per second of `seeds` vmapped PPO runs of `num_envs` envs each."""
    env, params, _, trainer = _trainer(setup, num_envs, updates)
    obs_dim = env.observation_space(params).shape[0]
    chunked = compile_chunked(trainer.init, trainer.run, num_updates=updates, chunks=1)  # one chunk: all updates
    hparams = HParams(lr=jnp.float32(setup.lr), ent_coef=jnp.float32(setup.ent_coef))
    t0 = time.perf_counter()
    state = jax.block_until_ready(chunked.init(jax.random.split(jax.random.key(0), seeds), hparams, params))
    compiled = chunked.run_chunk.lower(state, params).compile()
    compile_s = time.perf_counter() - t0
    seconds, _ = _time(compiled, state, (params,), repeats)
    steps = seeds * num_envs * setup.rollout_len * updates
    flops = train_flops_per_step(setup, obs_dim, env.num_actions) if setup.arch in ("lstm", "gru", "mlp") else None
    rate = steps / seconds
    return {"arch": setup.arch, "width": setup.width, "seeds": seeds, "num_envs": num_envs,
            "steps_per_s": rate, "compile_s": compile_s, "xla_bytes": _memory(compiled),
            "gflops": None if flops is None else rate * flops / 1e9}


def logging_overhead(setup: TrainSetup, num_envs: int, updates: int = 4, repeats: int = 3) -> dict:
    """What live curves (experiments.outputs, TensorBoard) cost the PPO-LSTM, written after
    every update (`updates` chunks of one update: the worst case; experiments write after each
    of `progress_chunks` chunks).

    Logging runs on the host between chunks, while the device waits, so its cost adds to the
    wall time: `log_s` is the time the logging of a whole run takes (writers opened, every
    chunk's scalars written, files closed; best of `repeats`), `overhead` = log_s / train_s
    with `train_s` the run without logging (best of `repeats`). As a cross-check, whole runs
    with and without logging, alternated (`ab_overhead`; on a shared machine its noise is often
    larger than the effect)."""
    import tempfile

    from innerlab.experiments import outputs
    from innerlab.experiments.training import run_chunked

    env, params, _, trainer = _trainer(setup, num_envs, updates)
    chunked = compile_chunked(trainer.init, trainer.run, num_updates=updates, chunks=updates)
    hparams = HParams(lr=jnp.float32(setup.lr), ent_coef=jnp.float32(setup.ent_coef))
    state0 = jax.block_until_ready(chunked.init(jax.random.split(jax.random.key(0), 1), hparams, params))

    def train(logged: bool):
        with tempfile.TemporaryDirectory() as tmp:
            context = outputs.job_outputs(tmp, "bench", (0,)) if logged else _nothing()
            t0 = time.perf_counter()
            with context:
                state, metrics = run_chunked(chunked, state0, params)
                jax.block_until_ready(state)
            return time.perf_counter() - t0, metrics

    def log_only(metrics) -> float:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            with outputs.job_outputs(tmp, "bench", (0,)):
                for u in range(updates):
                    outputs.log_chunk({k: v[:, u:u + 1] for k, v in metrics.items()})
            seconds = time.perf_counter() - t0
            if len(list(Path(tmp).rglob("events.out.tfevents.*"))) != 1:
                raise RuntimeError("expected one event file")
        return seconds

    _, metrics = train(False)  # compile and warm up
    train_s, logged_s, log_s = float("inf"), float("inf"), float("inf")
    for _ in range(repeats):
        train_s = min(train_s, train(False)[0])
        logged_s = min(logged_s, train(True)[0])
        log_s = min(log_s, log_only(metrics))
    return {"num_envs": num_envs, "updates": updates, "chunks": updates, "scalars": len(metrics),
            "train_s": train_s, "log_s": log_s, "overhead": log_s / train_s, "logged_s": logged_s,
            "ab_overhead": logged_s / train_s - 1.0}


def population_throughput(setup: TrainSetup, num_envs: int, population: int, interval: int = 2,
                          repeats: int = 3) -> dict:
    """Env steps per second of a PBT population (one round of `interval` updates, then
    exploit/explore), members vmapped."""
    env, params, network, trainer = _trainer(setup, num_envs, interval)
    pop = make_population(trainer, env, network, PBTConfig(interval=interval), population, setup.rollout_len)
    hparams = broadcast_hparams(HParams(lr=setup.lr, ent_coef=setup.ent_coef), population)
    t0 = time.perf_counter()
    state = jax.block_until_ready(jax.jit(pop.init)(jax.random.key(0), hparams, params))
    compiled = jax.jit(lambda s, p: pop.run(s, p, 1)).lower(state, params).compile()
    compile_s = time.perf_counter() - t0
    seconds, _ = _time(compiled, state, (params,), repeats)
    steps = population * num_envs * setup.rollout_len * interval
    return {"population": population, "num_envs": num_envs, "steps_per_s": steps / seconds,
            "compile_s": compile_s, "xla_bytes": _memory(compiled)}


def jax_env_throughput(num_envs: int, steps: int = 256, repeats: int = 3) -> dict:
    """Env steps per second of the JAX ObjectWorld alone (random actions, auto-reset), vmapped
    over `num_envs` and scanned over `steps`."""
    env, params = bench_env()
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def rollout(carry, _):
        state, key = carry
        key, k_act, k_env = jax.random.split(key, 3)
        action = jax.random.randint(k_act, (num_envs,), 0, env.num_actions)
        _, state, reward, *_ = step(jax.random.split(k_env, num_envs), state, action, params)
        return (state, key), reward.sum()

    run = jax.jit(lambda c: jax.lax.scan(rollout, c, None, length=steps))
    _, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.key(0), num_envs), params)
    carry = (state, jax.random.key(1))
    jax.block_until_ready(run(carry))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        carry, _ = jax.block_until_ready(run(carry))
        best = min(best, time.perf_counter() - t0)
    return {"impl": "jax", "num_envs": num_envs, "steps_per_s": num_envs * steps / best}


def device_peak_bytes() -> int | None:
    """Peak bytes in use on the default device (GPU backends report it; the CPU does not)."""
    stats = jax.devices()[0].memory_stats() or {}
    peak = stats.get("peak_bytes_in_use")
    return int(peak) if peak is not None else None


def param_count(setup: TrainSetup) -> int:
    network = _trainer(setup, setup.num_minibatches, 1)[2]
    return int(sum(np.prod(x.shape) for x in jax.tree.leaves(network.init(jax.random.key(0)))))
