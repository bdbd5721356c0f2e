"""XLA flags that must be set before jax is imported.

jaxlib 0.10.2's CPU backend deadlocks (0% CPU, forever) on `jit(vmap(train))` over several
seeds; single-seed runs never hang. What we measured on the 2-core machine (8 seeds, PPO
training of innerlab's networks on ObjectWorld level sets, 2026-11-24):

    flags                                   mlp   lstm  gru   transformer  cnn (4+ seeds)
    none (defaults)                         ok    hang  -     -            hang
    concurrency-optimised scheduler off     ok    ok    -     hang         hang
    multi-threaded Eigen off                ok    hang  -     hang         ok
    both off                                ok    ok    ok    ok           hang (2 seeds: ok)

So we turn both off (the LSTM also trained ~20% faster so); the CNN's remaining hang is
handled where it is trained (seeds in vmapped groups of 2 on a CPU). `runner.watchdog`
restarts a run that stalls anyway. The flags only affect the CPU backend, so they are harmless
on a GPU. We append them and keep whatever XLA_FLAGS the user set; a flag the user set
(either value) wins.
"""

import os
import sys

CPU_SCHEDULER_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"
CPU_EIGEN_FLAG = "--xla_cpu_multi_thread_eigen"


def configure() -> None:
    """Add our CPU flags to XLA_FLAGS, each unless the user already chose a value."""
    if os.environ.get("INNERLAB_KEEP_XLA_FLAGS"):
        return
    if "jax" in sys.modules:
        # Too late to take effect for this process's backend; nothing sensible to do.
        return
    flags = os.environ.get("XLA_FLAGS", "")
    for flag in (CPU_SCHEDULER_FLAG, CPU_EIGEN_FLAG):
        if flag not in flags:
            flags = (flags + " " + flag + "=false").strip()
    os.environ["XLA_FLAGS"] = flags
