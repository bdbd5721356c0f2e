"""Training throughput of PPO-LSTM on ObjectWorld at 1, 8 and 32 vmapped seeds.

Prints env-steps per second of training (rollout + GAE + PPO update; the jitted function is
compiled and warmed up first, and compile time is reported apart) and, as a peer measured in
the same run, the same training with an MLP policy. Machines are shared and noisy: compare
ratios within one run, not absolute figures across runs.

    python benchmarks/train_throughput.py [--seeds 1,8,32] [--num-envs 64] [--width 128] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import innerlab  # noqa: F401  (sets the XLA CPU flag before jax is imported)
import jax
import jax.numpy as jnp

from innerlab.agents import HParams, NetworkConfig, PPOConfig, make_network, make_train
from innerlab.channels import ChannelParams, RewardChannel
from innerlab.envs import ObjectWorld, make_params


def measure(arch: str, n_seeds: int, num_envs: int, width: int, updates: int, repeats: int) -> dict:
    env = RewardChannel(ObjectWorld(size=7, num_objects=6, num_colours=2), mode="prev")
    params = ChannelParams(env=make_params(env.env, max_steps_in_episode=30))
    obs_dim = env.observation_space(params).shape[0]
    network = make_network(NetworkConfig(arch=arch, width=width), obs_dim, env.num_actions)
    ppo = PPOConfig(num_envs=num_envs, rollout_len=128, update_epochs=4, num_minibatches=4,
                    total_steps=num_envs * 128 * updates)
    trainer = make_train(ppo, env, network)
    init = jax.jit(jax.vmap(trainer.init, in_axes=(0, None, None)))
    run = jax.jit(jax.vmap(lambda s, p: trainer.run(s, p, updates), in_axes=(0, None)))
    keys = jax.random.split(jax.random.key(0), n_seeds)
    hparams = HParams(lr=jnp.float32(3e-4), ent_coef=jnp.float32(0.01))
    t0 = time.perf_counter()
    state = jax.block_until_ready(init(keys, hparams, params))
    compiled = run.lower(state, params).compile()
    compile_s = time.perf_counter() - t0
    state, _ = jax.block_until_ready(compiled(state, params))  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        state, metrics = jax.block_until_ready(compiled(state, params))
        best = min(best, time.perf_counter() - t0)
    steps = n_seeds * num_envs * 128 * updates
    return {"arch": arch, "seeds": n_seeds, "num_envs": num_envs, "width": width,
            "steps_per_s": steps / best, "compile_s": compile_s}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,8,32")
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--updates", type=int, default=2, help="PPO updates per timed call")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = [measure("lstm", int(s), args.num_envs, args.width, args.updates, args.repeats)
               for s in args.seeds.split(",")]
    results.append(measure("mlp", 8, args.num_envs, args.width, args.updates, args.repeats))
    machine = f"{platform.machine()} {jax.devices()[0].platform}, {jax.device_count()} device(s), jax {jax.__version__}"
    if args.json:
        print(json.dumps({"machine": machine, "results": results}))
        return
    print(f"# PPO on ObjectWorld 7x7, rollout 128, 4 epochs x 4 minibatches; {machine}")
    print(f"{'arch':<6} {'seeds':>5} {'envs/seed':>9} {'width':>5} {'env-steps/s':>12} {'compile s':>9}")
    for r in results:
        print(f"{r['arch']:<6} {r['seeds']:>5} {r['num_envs']:>9} {r['width']:>5} "
              f"{r['steps_per_s']:>12,.0f} {r['compile_s']:>9.1f}")


if __name__ == "__main__":
    main()
