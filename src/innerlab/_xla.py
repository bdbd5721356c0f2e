"""XLA flags that must be set before jax is imported.

jaxlib 0.10.2's CPU backend deadlocks (0% CPU, forever) on `jit(vmap(train))` over two or
more seeds when `train` scans an LSTM rollout and a PPO update; single-seed runs never hang.
Turning off the concurrency-optimised scheduler fixed every such run, at roughly 12-17%
single-seed throughput (../shared/NOTES.md). The flag only affects the CPU backend, so it is
harmless on a GPU. We append it and keep whatever XLA_FLAGS the user set; a user who sets
the flag themselves (either value) wins.
"""

import os
import sys

CPU_SCHEDULER_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"


def configure() -> None:
    """Add our CPU flag to XLA_FLAGS unless the user already chose a value."""
    if os.environ.get("INNERLAB_KEEP_XLA_FLAGS"):
        return
    flags = os.environ.get("XLA_FLAGS", "")
    if CPU_SCHEDULER_FLAG in flags:
        return
    if "jax" in sys.modules:
        # Too late to take effect for this process's backend; nothing sensible to do.
        return
    os.environ["XLA_FLAGS"] = (flags + " " + CPU_SCHEDULER_FLAG + "=false").strip()
