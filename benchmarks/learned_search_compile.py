"""Compile time and XLA memory plan of the learned-search trainers (quick and paper presets).

    .venv/bin/python benchmarks/learned_search_compile.py [--presets quick paper] [--archs drc resnet lstm]

For each preset and architecture: lowers and compiles one training chunk of the experiment's own
program (`train._compiled`: PPO, vmapped over a seed group as the experiment runs it) and prints
the compile time and the bytes XLA plans for the call (arguments + outputs + temporaries -
aliased). On a CPU, conv agents run in seed groups of 2; the plan is per group. The paper
preset is meant for a GPU: its CPU plan is what a CPU would need, not a GPU's.
Levels are not generated: the trainer is compiled against a dummy bank of the right shape.
"""

from __future__ import annotations

import argparse
import time

import innerlab  # noqa: F401  (first: sets the CPU XLA flags before jax starts)
import jax
import jax.numpy as jnp
import numpy as np

from innerlab.agents import HParams
from innerlab.envs.sokoban import bank_params
from innerlab.envs.sokoban_levels import LevelSet
from innerlab.experiments import get
from innerlab.experiments.fields import structure_key
from innerlab.experiments.learned_search import train
from innerlab.experiments.training import seed_groups, seed_keys


def dummy_levels(size: int, count: int) -> LevelSet:
    walls = np.zeros((count, size, size), bool)
    walls[:, 0], walls[:, -1], walls[:, :, 0], walls[:, :, -1] = True, True, True, True
    targets = np.zeros_like(walls)
    boxes = np.zeros_like(walls)
    targets[:, 2, 2] = boxes[:, 2, 3] = True
    return LevelSet(walls=walls, targets=targets, boxes=boxes, player=np.tile([[1, 1]], (count, 1)).astype(np.int32),
                    solution_length=np.ones(count, np.int32))


def measure(preset: str, arch: str) -> dict:
    config = get("learned-search").preset(preset)
    compiled = train._compiled(structure_key(config), arch, "fixed")
    group = seed_groups(tuple(range(config.num_seeds)), train.CPU_SEED_GROUP.get(arch))[0]
    params = bank_params(compiled.env, dummy_levels(config.size, min(config.train_levels, 1024)),
                         max_steps_in_episode=config.max_steps)
    hparams = HParams(lr=jnp.float32(config.lr), ent_coef=jnp.float32(config.ent_coef))
    state = compiled.training.init(seed_keys(group, train.STREAMS)["train"], hparams, params)
    t0 = time.perf_counter()
    lowered = compiled.training.run_chunk.lower(state, params)
    executable = lowered.compile()
    seconds = time.perf_counter() - t0
    memory = executable.memory_analysis()
    planned = None
    if memory is not None:
        planned = (memory.argument_size_in_bytes + memory.output_size_in_bytes + memory.temp_size_in_bytes
                   - memory.alias_size_in_bytes)
    return {"preset": preset, "arch": arch, "seeds per program": len(group),
            "updates per chunk": compiled.training.chunk, "compile s": round(seconds, 1),
            "XLA plan MB": None if planned is None else round(planned / 2 ** 20, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["quick", "paper"])
    parser.add_argument("--archs", nargs="+", default=["drc", "resnet", "lstm"])
    args = parser.parse_args()
    print(f"backend {jax.default_backend()}, jax {jax.__version__}")
    for preset in args.presets:
        for arch in args.archs:
            print(measure(preset, arch), flush=True)


if __name__ == "__main__":
    main()
