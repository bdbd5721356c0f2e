"""Equal sample efficiency of a speed-up: PPO-LSTM return per env step, fast path vs reference.

Trains the benchmark's PPO-LSTM (ObjectWorld 7x7, hidden 128, rollout 128, 4 epochs x 4
minibatches) on the same seeds twice:
  reference  the update replays rollouts by scanning `network.apply` step by step (vmapped
             over envs), as before the speed work;
  fast       `network.unroll` (step-independent layers as one product over all steps).
and prints the mean episode return (95% bootstrap CI over seeds) at checkpoints, and the
paired difference at the end. The two compute the same function (tests/test_ppo.py checks it
to 1e-5), so the curves should agree up to float rounding, which compounds over training.

    python benchmarks/sample_efficiency.py [--seeds 4] [--steps 1000000] [--num-envs 256] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import innerlab  # noqa: F401  (XLA flags before jax)
import jax
import jax.numpy as jnp
import numpy as np

from innerlab.agents import HParams, NetworkConfig, PPOConfig, make_network, make_train
from innerlab.bench.training import TrainSetup, bench_env
from innerlab.report.stats import bootstrap_ci


def train(variant: str, seeds: int, steps: int, num_envs: int, checkpoints: int) -> tuple[np.ndarray, float]:
    setup = TrainSetup()
    env, params = bench_env()
    obs_dim = env.observation_space(params).shape[0]
    network = make_network(NetworkConfig(arch="lstm", width=setup.width), obs_dim, env.num_actions)
    if variant == "reference":
        network = network._replace(unroll=None)
    ppo = PPOConfig(num_envs=num_envs, rollout_len=setup.rollout_len, update_epochs=setup.update_epochs,
                    num_minibatches=setup.num_minibatches, total_steps=steps)
    trainer = make_train(ppo, env, network)
    per_chunk = ppo.num_updates // checkpoints
    init = jax.jit(jax.vmap(trainer.init, in_axes=(0, None, None)))
    run = jax.jit(jax.vmap(lambda s, p: trainer.run(s, p, per_chunk), in_axes=(0, None)))
    state = init(jax.random.split(jax.random.key(0), seeds),
                 HParams(lr=jnp.float32(setup.lr), ent_coef=jnp.float32(setup.ent_coef)), params)
    curve = []
    t0 = time.perf_counter()
    for _ in range(checkpoints):
        state, metrics = run(state, params)
        returns = np.asarray(metrics["episode_return"])  # [S, per_chunk]
        curve.append(np.nanmean(returns[:, -max(1, per_chunk // 4):], axis=1))
    return np.stack(curve, axis=1), time.perf_counter() - t0  # [S, checkpoints]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=1_000_000, help="env steps per seed")
    parser.add_argument("--num-envs", type=int, default=256)
    parser.add_argument("--checkpoints", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    out = {}
    for variant in ("reference", "fast"):
        curve, seconds = train(variant, args.seeds, args.steps, args.num_envs, args.checkpoints)
        out[variant] = {"curve": curve.tolist(), "seconds": seconds}
    ref, fast = np.asarray(out["reference"]["curve"]), np.asarray(out["fast"]["curve"])
    if args.json:
        print(json.dumps(out))
        return
    per = args.steps // args.checkpoints
    print(f"# PPO-LSTM on ObjectWorld 7x7, {args.seeds} seeds x {args.num_envs} envs; mean return [95% CI over seeds]")
    print(f"{'env steps/seed':>14} {'reference':>24} {'fast':>24}")
    for i in range(args.checkpoints):
        fmt = lambda c: "{:+.3f} [{:+.3f}, {:+.3f}]".format(*bootstrap_ci(c[:, i]))
        print(f"{per * (i + 1):>14,} {fmt(ref):>24} {fmt(fast):>24}")
    diff = fast[:, -1] - ref[:, -1]
    mean, lo, hi = bootstrap_ci(diff)
    print(f"final fast - reference, paired by seed: {mean:+.3f} [{lo:+.3f}, {hi:+.3f}]")
    print(f"wall: reference {out['reference']['seconds']:.0f} s, fast {out['fast']['seconds']:.0f} s")


if __name__ == "__main__":
    main()
