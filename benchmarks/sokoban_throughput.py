"""Throughput of Sokoban (prints figures; not a test).

- env steps per second of the JAX env (`innerlab.envs.sokoban`): random actions, one jitted
  `lax.scan` over `vmap(env.step)` (auto-reset included), on a bank of generated levels of size
  8 (2 boxes) and size 10 (Boxoban's, 4 boxes), at 1 and at 1024 envs; timed after a warm-up
  call that compiles, best of 3;
- level generation and the exact solver (`innerlab.envs.sokoban_levels`), per level: generation
  (room, reverse play, dedup) and solving (A*, the optimal solution length) apart, for
  (size 8, 2 boxes) and (size 10, 4 boxes).

    .venv/bin/python benchmarks/sokoban_throughput.py [--levels8 200] [--levels10 50] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import innerlab  # noqa: F401  (first: sets the CPU XLA flags before jax starts)
import jax
import jax.numpy as jnp
import numpy as np

from innerlab.envs.sokoban import Sokoban, bank_params
from innerlab.envs.sokoban_levels import LevelSet, generate, solve


def level_timings(count: int, size: int, num_boxes: int, seed: int = 0) -> tuple[LevelSet, dict]:
    """(levels, per-level seconds): `generate` end to end, then each level solved again alone;
    generation alone is the difference. Solve times are heavy-tailed, so median and max too."""
    start = time.perf_counter()
    levels = generate(count, size, num_boxes, seed)
    total = time.perf_counter() - start
    solve_times = []
    for i in range(count):
        start = time.perf_counter()
        solve(*levels.level(i))
        solve_times.append(time.perf_counter() - start)
    solve_times = np.array(solve_times)
    return levels, {"levels": count, "generate_and_solve_s": total / count,
                    "generate_s": max(total - solve_times.sum(), 0.0) / count,
                    "solve_mean_s": float(solve_times.mean()), "solve_median_s": float(np.median(solve_times)),
                    "solve_max_s": float(solve_times.max()),
                    "solution_length_mean": float(levels.solution_length.mean()),
                    "solution_length_range": [int(levels.solution_length.min()), int(levels.solution_length.max())]}


def step_rate(levels: LevelSet, num_envs: int, steps: int, repeats: int = 3) -> float:
    """Env steps per second: `steps` x `num_envs` random-action steps in one jitted scan, best of
    `repeats` after a compiling warm-up call."""
    env = Sokoban(size=levels.walls.shape[1])
    params = bank_params(env, levels)

    @jax.jit
    def run(key):
        k_reset, key = jax.random.split(key)
        _, state = jax.vmap(env.reset, (0, None))(jax.random.split(k_reset, num_envs), params)

        def body(carry, _):
            key, state, solved = carry
            key, k_act, k_step = jax.random.split(key, 3)
            action = jax.random.randint(k_act, (num_envs,), 0, env.num_actions)
            _, state, _, terminated, _, _ = jax.vmap(env.step, (0, 0, 0, None))(
                jax.random.split(k_step, num_envs), state, action, params)
            return (key, state, solved + terminated.sum()), None

        (_, _, solved), _ = jax.lax.scan(body, (key, state, jnp.int32(0)), None, length=steps)
        return solved

    jax.block_until_ready(run(jax.random.key(0)))
    best = float("inf")
    for repeat in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(run(jax.random.key(repeat + 1)))
        best = min(best, time.perf_counter() - start)
    return steps * num_envs / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels8", type=int, default=200, help="levels generated at size 8, 2 boxes")
    parser.add_argument("--levels10", type=int, default=50, help="levels generated at size 10, 4 boxes")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    args = parser.parse_args()

    results: dict = {"device": str(jax.devices()[0]), "levels": {}, "steps_per_s": {}}
    banks = {}
    for size, boxes, count in ((8, 2, args.levels8), (10, 4, args.levels10)):
        banks[size], results["levels"][f"{size}-{boxes}"] = level_timings(count, size, boxes)
    for size, bank in banks.items():
        for num_envs, steps in ((1, 20_000), (1024, 500)):
            results["steps_per_s"][f"size{size}-envs{num_envs}"] = step_rate(bank, num_envs, steps)

    if args.json:
        print(json.dumps(results, indent=1))
        return
    print(f"device: {results['device']}")
    for name, t in results["levels"].items():
        size, boxes = name.split("-")
        print(f"levels size {size}, {boxes} boxes ({t['levels']} levels, solution length mean "
              f"{t['solution_length_mean']:.1f}, range {t['solution_length_range']}): "
              f"generate {1e3 * t['generate_s']:.1f} ms/level, solve mean {1e3 * t['solve_mean_s']:.1f} "
              f"(median {1e3 * t['solve_median_s']:.1f}, max {1e3 * t['solve_max_s']:.0f}) ms/level, "
              f"together {1e3 * t['generate_and_solve_s']:.1f} ms/level")
    for name, rate in results["steps_per_s"].items():
        print(f"env steps/s {name}: {rate:,.0f}")


if __name__ == "__main__":
    main()
