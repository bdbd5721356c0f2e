"""What a job leaves beside its metric rows: its trained agents and its live training curves.

    run_dir/checkpoints/<condition>/<name>.msgpack   parameters of every seed, stacked on axis 0
    run_dir/checkpoints/<condition>/<name>.json      seeds, kind, and what rebuilds the network
    run_dir/tb/<condition>/seed-<s>/events.out.tfevents.*   per-update scalars (TensorBoard)
    run_dir/wandb/                                   with --track: Weights & Biases (offline unless
                                                     WANDB_API_KEY or WANDB_MODE is set)

The runner opens a `JobOutputs` around each job (`job_outputs`); a job's code reaches it through
`current()`. `run_chunked` (experiments.training) logs each chunk's per-update scalars when the
chunk returns to the host, so nothing leaves the jitted scan mid-chunk and curves appear while
a job runs, one chunk at a time. A job saves its agents with `save_agents`. With no job open (a
job called directly, from a test or a notebook) both do nothing.

Checkpoints are flax's msgpack serialisation of the parameter pytree (no pickle: msgpack holds
only maps, lists, numbers, strings and raw array bytes) and a JSON file beside it;
`innerlab.load_agent` reads them back. Saving is on by default; the config field `save_agents`
(of `SeedFields`, so every experiment has it) turns it off.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from innerlab._io import atomic_write_bytes

CHECKPOINTS = "checkpoints"
TENSORBOARD = "tb"
WANDB = "wandb"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclasses.dataclass
class JobOutputs:
    """Where the job in flight writes its checkpoints and curves, and whether it does."""

    run_dir: Path
    condition: str
    seeds: tuple[int, ...]
    save_agents: bool = True
    tensorboard: bool = True
    track: bool = False
    experiment: str = ""
    config: dict | None = None
    _writers: dict = dataclasses.field(default_factory=dict)
    _wandb: Any = None
    _step: dict = dataclasses.field(default_factory=dict)

    # --- scalars -------------------------------------------------------------------------------

    def log_chunk(self, metrics: dict[str, np.ndarray], update_axis: int = 1, prefix: str = "train",
                  seeds=None) -> None:
        """Log one chunk's per-update scalars: each numeric array [S, U, ...] (seed axis first,
        updates on `update_axis`) becomes one curve per seed, averaged over any further axes
        (e.g. population members), NaN (no episode ended) left out. `seeds`: the seeds of the
        seed axis (default: the job's; a job that trains its seeds in groups names the group).
        Each seed's steps (update numbers, from 1) continue across chunks."""
        seeds = self.seeds if seeds is None else tuple(int(s) for s in seeds)
        curves = _curves(metrics, len(seeds), update_axis)
        if not curves:
            return
        lengths = {name: values.shape[1] for name, values in curves.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"metrics disagree on the number of updates in a chunk: {lengths}; pass "
                             "run_chunked a `curves` function that puts them on one update axis")
        updates = next(iter(lengths.values()))
        starts = [self._step.get((prefix, seed), 0) for seed in seeds]
        for seed, start in zip(seeds, starts):
            self._step[(prefix, seed)] = start + updates
        if self.tensorboard:
            for s, seed in enumerate(seeds):
                writer = self._writer(seed)
                for name, values in curves.items():
                    for u in range(updates):
                        if np.isfinite(values[s, u]):
                            writer.add_scalar(f"{prefix}/{name}", float(values[s, u]), starts[s] + u + 1)
                writer.flush()
        if self.track:
            run = self._wandb_run()
            for u in range(updates):
                row = {f"{prefix}/{name}/seed-{seed}": float(values[s, u])
                       for name, values in curves.items() for s, seed in enumerate(seeds)
                       if np.isfinite(values[s, u])}
                row["update"] = starts[0] + u + 1
                run.log(row)

    def _writer(self, seed: int):
        if seed not in self._writers:
            from tensorboardX import SummaryWriter

            logdir = self.run_dir / TENSORBOARD / self.condition / f"seed-{seed}"
            self._writers[seed] = SummaryWriter(logdir=str(logdir), flush_secs=30)
        return self._writers[seed]

    def _wandb_run(self):
        if self._wandb is None:
            import wandb

            mode = os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
            directory = self.run_dir / WANDB
            directory.mkdir(parents=True, exist_ok=True)
            self._wandb = wandb.init(project=os.environ.get("WANDB_PROJECT", "innerlab"), mode=mode,
                                     dir=str(directory), group=self.run_dir.name, name=self.condition,
                                     job_type=self.experiment or None, config=self.config or {},
                                     reinit="finish_previous")
            self._wandb.define_metric("*", step_metric="update")
        return self._wandb

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None

    # --- checkpoints ---------------------------------------------------------------------------

    def save(self, name: str, params, kind: str, meta: dict[str, Any]) -> Path | None:
        if not self.save_agents:
            return None
        from flax import serialization

        directory = checkpoint_dir(self.run_dir, self.condition)
        state = serialization.to_state_dict(_numpy(params))
        atomic_write_bytes(directory / f"{name}.msgpack", serialization.msgpack_serialize(state))
        record = {"name": name, "kind": kind, "condition": self.condition, "seeds": list(self.seeds), **meta}
        atomic_write_bytes(directory / f"{name}.json", (json.dumps(record, indent=2) + "\n").encode())
        return directory / f"{name}.msgpack"


_CURRENT: contextvars.ContextVar[JobOutputs | None] = contextvars.ContextVar("innerlab_job_outputs", default=None)


def current() -> JobOutputs | None:
    """The outputs of the job in flight in this context, or None."""
    return _CURRENT.get()


@contextlib.contextmanager
def job_outputs(run_dir, condition: str, seeds, *, save_agents: bool = True, tensorboard: bool = True,
                track: bool = False, experiment: str = "", config: dict | None = None) -> Iterator[JobOutputs]:
    """Open the outputs of one job for the code inside the block (see the module doc). A job
    that is run again (resume after a kill) starts its curves afresh: the old event files of
    the condition are removed."""
    run_dir = Path(run_dir)
    if tensorboard and (run_dir / TENSORBOARD / condition).is_dir():
        shutil.rmtree(run_dir / TENSORBOARD / condition)
    outputs = JobOutputs(run_dir, condition, tuple(int(s) for s in seeds), save_agents=save_agents,
                         tensorboard=tensorboard, track=track, experiment=experiment, config=config)
    token = _CURRENT.set(outputs)
    try:
        yield outputs
    finally:
        _CURRENT.reset(token)
        outputs.close()


def log_chunk(metrics, update_axis: int = 1, prefix: str = "train", seeds=None) -> None:
    """`JobOutputs.log_chunk` of the job in flight; nothing outside a job."""
    outputs = current()
    if outputs is not None and (outputs.tensorboard or outputs.track):
        outputs.log_chunk(metrics, update_axis, prefix, seeds)


def save_agents(name: str, params, *, kind: str = "network", network=None, meta: dict[str, Any] | None = None
                ) -> Path | None:
    """Save the trained parameters of every seed of the job in flight (leading axis: seeds, in
    the job's seed order) as checkpoints/<condition>/<name>.msgpack, with a JSON record.

    network: the `(NetworkConfig, obs_dim, num_actions)` that `make_network` rebuilds the agent
    from (kind "network"); meta: anything else a loader needs (JSON-serialisable). Returns the
    path, or None when no job is open or saving is off."""
    if not _NAME.match(name):
        raise ValueError(f"checkpoint name {name!r}: letters, digits, '_', '-' and '.' only")
    outputs = current()
    if outputs is None:
        return None
    leaves = [np.shape(x) for x in _leaves(params)]
    if any(not shape or shape[0] != len(outputs.seeds) for shape in leaves):
        raise ValueError(f"checkpoint {name!r}: every parameter needs a leading seed axis of {len(outputs.seeds)}")
    record = dict(meta or {})
    if network is not None:
        config, obs_dim, num_actions = network
        record["network"] = {"config": _plain(dataclasses.asdict(config)), "obs_dim": int(obs_dim),
                             "num_actions": int(num_actions)}
    return outputs.save(name, params, kind, record)


def checkpoint_dir(run_dir, condition: str) -> Path:
    return Path(run_dir) / CHECKPOINTS / condition


def checkpoint_bytes(run_dir) -> int:
    """Total size of a run's checkpoints in bytes."""
    root = Path(run_dir) / CHECKPOINTS
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.is_dir() else 0


# --- helpers -----------------------------------------------------------------------------------

def _leaves(tree):
    import jax

    return jax.tree.leaves(tree)


def _numpy(tree):
    import jax

    return jax.tree.map(np.asarray, tree)


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def _curves(metrics: dict, num_seeds: int, update_axis: int) -> dict[str, np.ndarray]:
    """{name: [S, U]} from the numeric arrays of `metrics` with a seed axis and an update axis."""
    out = {}
    for name, value in metrics.items():
        if isinstance(value, dict):
            out.update({f"{name}/{k}": v for k, v in _curves(value, num_seeds, update_axis).items()})
            continue
        array = np.asarray(value)
        if array.ndim <= update_axis or array.shape[0] != num_seeds or array.dtype.kind not in "fiub":
            continue
        array = np.moveaxis(array.astype(np.float64), update_axis, 1)
        if array.ndim > 2:
            with np.errstate(all="ignore"), _quiet():
                array = np.nanmean(array.reshape(*array.shape[:2], -1), axis=2)
        out[name] = array
    return out


@contextlib.contextmanager
def _quiet():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nanmean of an all-NaN slice
        yield
