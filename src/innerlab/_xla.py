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


CACHE_ENV = "INNERLAB_CACHE_DIR"
OFF = ("", "0", "off", "none", "false")


def cache_dir() -> str | None:
    """Where compiled XLA programs are kept between processes: $INNERLAB_CACHE_DIR, else
    $XDG_CACHE_HOME/innerlab/jax (~/.cache/innerlab/jax); None if INNERLAB_CACHE_DIR is set to
    off/0/none/empty. Safe to delete at any time (it only holds compiled programs, keyed by
    program, jax version and flags)."""
    if CACHE_ENV in os.environ:
        value = os.environ[CACHE_ENV]
        return None if value.strip().lower() in OFF else value
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "innerlab", "jax")


def configure_cache() -> None:
    """Turn on jax's persistent compilation cache (through its environment variables, so jax
    need not be imported here): a second process that compiles the same training program, such
    as a resumed run, a Ray worker or a test, loads it instead (a smoke job: 74 s -> 19 s on the
    2-core machine). A JAX_COMPILATION_CACHE_DIR the user set wins."""
    path = cache_dir()
    if path is None or "JAX_COMPILATION_CACHE_DIR" in os.environ:
        return
    os.environ["JAX_COMPILATION_CACHE_DIR"] = path
    # Programs that compile in under half a second are cheaper to compile than to look up.
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")


def configure() -> None:
    """Add our CPU flags to XLA_FLAGS, each unless the user already chose a value; turn on the
    persistent compilation cache."""
    if "jax" not in sys.modules:
        configure_cache()
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
