"""The Ray backend: each job (one condition x all seeds) runs as a Ray task; the driver writes
each finished job to the store as it arrives.

    cluster = connect(RayOptions(address=...))      # RAY_ADDRESS / address, else a local cluster
    run_jobs(cluster, experiment, config, todo, seeds, out_dir, display, unfinished, total_jobs)
    cluster.close()                                 # shuts Ray down only if we started it

What a task receives: the experiment's registered name and its registry entry
("module:attribute"), the frozen Config, the Condition and the seeds, all pickled by Ray on
the way there; what it returns: the job's plain-JSON rows and its time. The worker looks the
experiment up by name (`base.get`) and calls `local.execute_job`, exactly what the local loop
calls. The registry entry travels too so that an experiment registered only in the driver
(tests and notebooks do this) resolves in a worker as long as its module is importable there;
so every node needs innerlab, and any such module, on its Python path. The store stays JSON
and parquet: nothing read from a run directory is ever unpickled.

Failures: Ray retries a task `max_retries` times, after an exception as after a worker crash
(`retry_exceptions=True`). A job that still fails is reported, not dropped: the driver finishes
and saves the other jobs, then raises `JobsFailed` naming each failed job and its cause, and
saying that `--resume` continues. A killed driver loses only the jobs in flight.

JAX: a task imports innerlab before jax (the function lives in this package, so unpickling it
imports `innerlab`, whose `_xla` sets the XLA CPU flags), and the workers are processes Ray
spawns (no fork of a process that has imported jax). Workers get
XLA_PYTHON_CLIENT_PREALLOCATE=false, so jobs sharing a GPU allocate what they use instead of
75% of the GPU each. When the cluster has GPUs each task asks for `gpus_per_job` of one and
XLA_CLIENT_MEM_FRACTION is 0.9 x that share: with preallocation off, XLA's allocator grows up
to that fraction of the GPU. (jaxlib refuses both names at once, so the deprecated
XLA_PYTHON_CLIENT_MEM_FRACTION is blanked.) The stall watchdog (runner.watchdog) is local-only:
it watches this process's CPU time, which stays idle while Ray works. Not yet run on a GPU.

CPUs: a JAX job uses every core it sees whatever Ray reserves for it, so `cpus_per_job` sets
how many jobs run at once on a node rather than how many cores each gets. We ask for 1, so an
N-core node runs N jobs at once: our jobs use about one core each (XLA compiles on one thread
and `_xla` turns multi-threaded Eigen off; a side-channels smoke run used 20 s of CPU in 32 s
on the 2-core machine), and two at once on 2 cores ran fine. Ask for more where jobs contend
or run out of memory.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from innerlab.experiments.base import Condition, ConfigError

# Retries of a failed job (exception or worker crash) before it is reported.
MAX_RETRIES = 2
# Ray's CPU reservation per job (how many jobs run at once on a node; see the module docstring).
CPUS_PER_JOB = 1.0
# Share of one GPU per job, requested only when the cluster has GPUs: two jobs per GPU.
GPUS_PER_JOB = 0.5
# Environment of every worker; the memory fraction is added when GPUs are requested.
WORKER_ENV = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
# Seconds to wait for a TCP connection to a given cluster address (ray.init itself retries for
# minutes against an address where nothing listens).
CONNECT_TIMEOUT_S = 5.0
INSTALL_HINT = "install the ray extra: pip install 'innerlab[ray]'"


@dataclass(frozen=True)
class RayOptions:
    """How jobs run on Ray. The CLI sets `address` (--address); the rest are for library use."""

    address: str | None = None
    """Cluster address (HOST:PORT of the head's GCS, ray://HOST:PORT, or auto); None: the
    RAY_ADDRESS environment variable, else a new local cluster."""
    cpus_per_job: float = CPUS_PER_JOB
    """CPUs Ray reserves per job: how many jobs share a node, not how many cores a job uses."""
    gpus_per_job: float = GPUS_PER_JOB
    """Share of a GPU per job, requested only if the cluster has GPUs."""
    max_retries: int = MAX_RETRIES
    """Retries of a failed job (exception or worker crash) before it is reported."""

    def check(self) -> None:
        if self.address is not None:
            _host_port(self.address)
        if not self.cpus_per_job > 0:
            raise ConfigError("cpus_per_job", f"{self.cpus_per_job} is out of range; allowed: > 0")
        if not self.gpus_per_job >= 0:
            raise ConfigError("gpus_per_job", f"{self.gpus_per_job} is out of range; allowed: >= 0")
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ConfigError("max_retries", f"{self.max_retries!r} is out of range; allowed: an integer >= 0")


class JobsFailed(RuntimeError):
    """Jobs that failed on every attempt. The other jobs are saved; `--resume` reruns these.
    `failed` maps each condition id to a one-line cause; `__cause__` is the first failure."""

    def __init__(self, failed: dict[str, str], attempts: int, saved: int, total: int, out_dir):
        self.failed = failed
        lines = [f"  {cid}: {cause}" for cid, cause in failed.items()]
        noun = "job" if len(failed) == 1 else "jobs"
        super().__init__(f"{len(failed)} {noun} failed, after up to {attempts} attempts each:\n" + "\n".join(lines)
                         + f"\n{saved} of {total} jobs are saved in {out_dir}; fix the cause and continue with "
                         "--resume")


def check_available() -> None:
    """ConfigError('backend', ...) unless Ray can be imported (checked without importing it)."""
    if importlib.util.find_spec("ray") is None:
        raise ConfigError("backend", f"the ray backend needs Ray, which is not installed; {INSTALL_HINT}")


def _import_ray():
    check_available()
    import ray

    return ray


ADDRESS_FORMS = "HOST:PORT, ray://HOST:PORT or auto"


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of a cluster address; None for 'auto' and 'local', which Ray resolves.
    ConfigError('address', ...) if it is neither."""
    if address in ("auto", "local"):
        return None
    target = address.strip().removeprefix("ray://")
    if "://" in target:
        raise ConfigError("address", f"{address!r} is not a Ray cluster address; allowed: {ADDRESS_FORMS}")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError("address", f"{address!r} has no HOST:PORT; allowed: {ADDRESS_FORMS}")
    return host.strip("[]"), int(port)


def _check_reachable(address: str) -> None:
    """ConfigError('address', ...) within CONNECT_TIMEOUT_S if nothing listens at the address
    (ray.init would retry for minutes)."""
    host_port = _host_port(address)
    if host_port is None:
        return
    try:
        socket.create_connection(host_port, timeout=CONNECT_TIMEOUT_S).close()
    except OSError as err:
        reason = err.strerror or str(err) or type(err).__name__
        raise ConfigError("address", f"cannot reach a Ray cluster at {address} ({reason}); allowed: the address of "
                          "a running cluster's head (`ray start --head` prints it), or no --address and no "
                          "RAY_ADDRESS for a local cluster") from None


class Cluster:
    """A connection to Ray; `close()` shuts Ray down if `connect` started it."""

    def __init__(self, ray, started: bool, options: RayOptions):
        self.ray, self.started, self.options = ray, started, options

    def close(self) -> None:
        if self.started and self.ray.is_initialized():
            self.ray.shutdown()


def connect(options: RayOptions) -> Cluster:
    """Connect to `options.address`, else RAY_ADDRESS, else start a local cluster, and check
    that a node can hold a job. A Ray this process already joined (ray.is_initialized(), e.g. a
    test's or a notebook's) is used as is, and left running."""
    options.check()
    ray = _import_ray()
    if ray.is_initialized():
        cluster = Cluster(ray, started=False, options=options)
    else:
        address = options.address or os.environ.get("RAY_ADDRESS") or None
        if address:
            _check_reachable(address)
            ray.init(address=address)
        else:
            ray.init(include_dashboard=False)
        cluster = Cluster(ray, started=True, options=options)
    try:
        most = max((node["Resources"].get("CPU", 0.0) for node in ray.nodes() if node.get("Alive")), default=0.0)
        if options.cpus_per_job > most:
            raise ConfigError("cpus_per_job", f"{options.cpus_per_job:g} is more than any node of the cluster has "
                              f"({most:g}); allowed: <= the CPUs of one node")
    except BaseException:
        cluster.close()
        raise
    return cluster


def _experiment(name: str, spec: str | None):
    """The experiment `name`: from this process's registry, else from `spec` ("module:attr")."""
    from innerlab.experiments import base

    if spec is None or base._REGISTRY.get(name) == spec:
        return base.get(name)
    return base.resolve(spec)


def _run_job(name: str, spec: str | None, config, condition: Condition, seeds: tuple[int, ...],
             out_dir: str, track: bool) -> tuple[list[dict[str, Any]], float]:
    """The Ray task: (the job's rows, seconds it took). Runs in a worker, which writes the job's
    checkpoints and curves into `out_dir` itself (a path the worker's node must reach: on a
    cluster of several nodes, shared storage)."""
    from innerlab.runner.local import execute_job

    start = time.monotonic()
    rows = execute_job(_experiment(name, spec), config, condition, seeds, out_dir=out_dir, track=track)
    return rows, time.monotonic() - start


def _cause(ray, err: BaseException) -> str:
    """One line saying why a task failed."""
    if isinstance(err, ray.exceptions.WorkerCrashedError):
        return "the worker running it died (killed, out of memory or crashed)"
    if isinstance(err, ray.exceptions.RayTaskError) and getattr(err, "cause", None) is not None:
        err = err.cause  # the job's own exception
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


def run_jobs(cluster: Cluster, experiment, config, todo: list[Condition], seeds, out_dir, display,
             unfinished: list[str], total_jobs: int, track: bool = False) -> None:
    """Run `todo` (the unfinished jobs of a run of `total_jobs`) as Ray tasks; write each job to
    `out_dir` as it finishes. `unfinished` is kept as the ids of the jobs not yet saved (for the
    caller's message if this is interrupted).
    Raises JobsFailed after the other jobs are saved if any job failed on every attempt."""
    from innerlab.experiments import base
    from innerlab.runner import store

    ray, options = cluster.ray, cluster.options
    resources: dict[str, Any] = {"num_cpus": options.cpus_per_job}
    env = dict(WORKER_ENV)
    if options.gpus_per_job > 0 and ray.cluster_resources().get("GPU", 0) > 0:
        resources["num_gpus"] = options.gpus_per_job
        env["XLA_CLIENT_MEM_FRACTION"] = f"{0.9 * min(options.gpus_per_job, 1.0):.2f}"
        env["XLA_PYTHON_CLIENT_MEM_FRACTION"] = ""  # a node's own value would clash with ours
    task = ray.remote(_run_job).options(**resources, max_retries=options.max_retries, retry_exceptions=True,
                                        runtime_env={"env_vars": env})
    spec = base._REGISTRY.get(experiment.name)
    seeds = tuple(int(s) for s in seeds)
    where = str(Path(out_dir).resolve())
    pending = {task.remote(experiment.name, spec, config, condition, seeds, where, track): condition
               for condition in todo}
    unfinished[:] = [c.id for c in todo]
    failed: dict[str, str] = {}
    first_error: BaseException | None = None
    display.in_flight(len(pending))
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            condition = pending.pop(ready[0])
            try:
                rows, seconds = ray.get(ready[0])
            except ray.exceptions.RayError as err:
                failed[condition.id] = _cause(ray, err)
                first_error = first_error or err
                display.fail_job(condition.id, failed[condition.id])
            else:
                store.write_job(out_dir, condition, seeds, rows, seconds)
                unfinished.remove(condition.id)
                display.finish_job(condition.id, seconds)
            display.in_flight(len(pending))
    except BaseException:
        for ref in pending:  # interrupted: stop what is still running; finished jobs are saved
            ray.cancel(ref, force=True)
        raise
    if failed:
        raise JobsFailed(failed, options.max_retries + 1, total_jobs - len(failed), total_jobs,
                         Path(out_dir)) from first_error


__all__ = ["CPUS_PER_JOB", "GPUS_PER_JOB", "MAX_RETRIES", "WORKER_ENV", "Cluster", "JobsFailed", "RayOptions",
           "check_available", "connect", "run_jobs"]
