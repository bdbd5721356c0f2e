"""Shared training helpers for experiments (imports jax: only train.py modules use it).

    run = compile_chunked(trainer.init, trainer.run, num_updates=ppo.num_updates, chunks=config.progress_chunks)
    state = run.init(seed_keys(seeds, STREAMS)["train"], hparams, env_params)
    state, metrics = run_chunked(run, state, env_params, progress, status=return_status)

`compile_chunked` vmaps over seeds and jits a trainer's `init` and its `run(state, env_params, n)`
for a chunk of n = num_updates // chunks updates; `run_chunked` runs whole chunks and then one
shorter tail chunk (compiled once, only if needed), so training always does exactly
`num_updates` updates however `chunks` divides them. Every chunk has the same shapes: one
compile for all chunks of all conditions that share a structure.

`seed_keys(seeds, streams)` gives one key per seed for each named stream: stream i of seed s is
`fold_in(key(s), i)`, so naming streams in a fixed order keeps results reproducible.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from innerlab.experiments import outputs


class ChunkedRun(NamedTuple):
    """A trainer compiled for chunked running over a vmapped seed axis.

    init(keys [S], *args) -> state [S, ...]; run_chunk / run_tail(state, env_params) ->
    (state, metrics with leading [S, updates]). `run_tail` is None when chunks divide
    `num_updates` exactly."""

    init: Callable
    run_chunk: Callable
    run_tail: Callable | None
    num_updates: int
    chunk: int
    num_chunks: int
    tail: int


def split_chunks(num_updates: int, chunks: int) -> tuple[int, int, int]:
    """(chunk, number of whole chunks, tail): `chunk * whole + tail == num_updates` and
    `0 <= tail < chunk`. The chunk is num_updates // chunks (at least 1)."""
    if num_updates < 1:
        raise ValueError(f"num_updates must be >= 1, got {num_updates}")
    chunk = max(num_updates // max(chunks, 1), 1)
    whole = num_updates // chunk
    return chunk, whole, num_updates - chunk * whole


def compile_chunked(init: Callable, run: Callable, num_updates: int, chunks: int,
                    init_axes: tuple = (0, None, None), run_kwarg: str = "num_updates",
                    vmap: bool = True) -> ChunkedRun:
    """Jit (and, with `vmap`, vmap over seeds) `init` and `run(state, env_params, **{run_kwarg: n})`
    for the chunk and tail lengths of `split_chunks(num_updates, chunks)`."""
    chunk, whole, tail = split_chunks(num_updates, chunks)

    def batch(fn, axes):
        return jax.jit(jax.vmap(fn, in_axes=axes) if vmap else fn)

    run_chunk = batch(functools.partial(run, **{run_kwarg: chunk}), (0, None))
    run_tail = batch(functools.partial(run, **{run_kwarg: tail}), (0, None)) if tail else None
    return ChunkedRun(init=batch(init, init_axes), run_chunk=run_chunk, run_tail=run_tail,
                      num_updates=num_updates, chunk=chunk, num_chunks=whole, tail=tail)


def run_chunked(compiled: ChunkedRun, state, env_params, progress=None,
                status: Callable[[dict[str, np.ndarray]], str] | None = None, update_axis: int = 1,
                fraction: tuple[float, float] = (0.0, 1.0), seeds=None,
                curves: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] | None = None,
                prefix: str = "train"):
    """Advance `state` by exactly `compiled.num_updates` updates, chunk by chunk.

    progress(fraction, text) is called on the host after each chunk (never inside jit), with
    the fraction mapped into `fraction` (for jobs whose training is only part of their work) and
    `status(metrics of that chunk as numpy)` as its text. Each chunk's per-update metrics also go
    to the job's live curves (`outputs.log_chunk`: TensorBoard, W&B with --track) as the chunk
    returns: nothing leaves the jitted scan mid-chunk (`seeds`: the seeds of the state's seed
    axis when a job trains its seeds in groups; default the job's; `curves`: what of a chunk's
    metrics to log, when its update axis needs reshaping first; `prefix`: the curves' tag prefix,
    for a job that trains several agents one after another). Returns (state, metrics as numpy,
    concatenated over chunks along `update_axis`)."""
    steps = [compiled.run_chunk] * compiled.num_chunks + ([compiled.run_tail] if compiled.run_tail else [])
    done, collected = 0, []
    low, high = fraction
    for step in steps:
        state, metrics = step(state, env_params)
        metrics = jax.tree.map(np.asarray, metrics)
        collected.append(metrics)
        outputs.log_chunk(curves(metrics) if curves else metrics, update_axis, prefix, seeds)
        done += compiled.chunk if step is compiled.run_chunk else compiled.tail
        if progress is not None:
            progress(low + (high - low) * done / compiled.num_updates, status(metrics) if status else "")
    return state, jax.tree.map(lambda *xs: np.concatenate(xs, axis=update_axis), *collected)


def return_status(metrics: dict[str, np.ndarray]) -> str:
    """'train return +0.42': the mean episode return over the last quarter of a chunk."""
    returns = metrics["episode_return"]
    recent = returns[..., -max(1, returns.shape[-1] // 4):]
    with np.errstate(all="ignore"):
        return f"train return {np.nanmean(recent):+.2f}" if np.isfinite(recent).any() else "train return n/a"


def final_return(returns: np.ndarray) -> np.ndarray:
    """[S] mean episode return over the last 10% of updates (returns [S, updates])."""
    return np.nanmean(returns[:, -max(1, returns.shape[1] // 10):], axis=1)


def base_keys(seeds) -> jax.Array:
    """[S] one root key per seed: `jax.random.key(seed)`."""
    return jax.vmap(jax.random.key)(jnp.asarray(seeds, dtype=jnp.uint32))


def seed_keys(seeds, streams: tuple[str, ...]) -> dict[str, jax.Array]:
    """{stream name: [S] keys}; stream i of seed s is fold_in(key(s), i). Declare `streams`
    once per experiment as a module constant and only ever append to it."""
    if len(set(streams)) != len(streams):
        raise ValueError(f"stream names repeat: {streams}")
    keys = base_keys(seeds)
    return {name: jax.vmap(lambda k, i=i: jax.random.fold_in(k, i))(keys) for i, name in enumerate(streams)}


def substream(keys: jax.Array, index: int) -> jax.Array:
    """[S] keys folded with `index` (e.g. one evaluation suite of several)."""
    return jax.vmap(lambda k: jax.random.fold_in(k, index))(keys)


def seed_groups(seeds: tuple[int, ...], cpu_group: int | None) -> list[tuple[int, ...]]:
    """`seeds` split into vmapped groups of `cpu_group` on a CPU (one group elsewhere, or when
    `cpu_group` is None).

    jaxlib 0.10.2's CPU runtime deadlocks training convolutional networks vmapped over 4+ seeds
    (2 run; see innerlab/_xla.py), so their experiments train and evaluate seeds in groups of 2:
    one compilation serves every group (same shapes), and each seed's result depends only on its
    own key, so grouping changes no number. The last group may be shorter (one more compile)."""
    seeds = tuple(seeds)
    if not cpu_group or jax.default_backend() != "cpu":
        return [seeds]
    return [seeds[i:i + cpu_group] for i in range(0, len(seeds), cpu_group)]


def stack_seeds(trees: list[Any]):
    """Concatenate pytrees with a leading seed axis (results of seed groups)."""
    return jax.tree.map(lambda *leaves: jnp.concatenate(leaves), *trees)
