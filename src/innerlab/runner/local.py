"""Run an experiment: every job (one condition x all seeds as one batch), in this process or on Ray.

A job is a pure function of (config, condition, seeds), so a backend may run it anywhere:
`execute_job` is what both backends call (`local` in this process, one job after another;
`ray` in Ray tasks, see runner.ray_backend). Each finished job is written to the store at
once, so a killed run loses at most the jobs in flight, and `resume=True` skips the jobs
already written.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

from innerlab.experiments import outputs
from innerlab.experiments.base import Condition, ConfigError, ProgressFn, config_to_dict
from innerlab.runner import ray_backend, store
from innerlab.runner.ray_backend import RayOptions
from innerlab.runner.watchdog import StallWatchdog

BACKENDS = ("local", "ray")


def check_backend(backend: str, ray_options: RayOptions | None = None) -> None:
    """ConfigError unless `backend` is known and usable (ray: installed) and `ray_options`
    suit it (only the ray backend takes them)."""
    if backend not in BACKENDS:
        raise ConfigError("backend", f"unknown backend {backend!r}; allowed: {', '.join(BACKENDS)}")
    if backend == "ray":
        ray_backend.check_available()
        (ray_options or RayOptions()).check()
    elif ray_options is not None and ray_options.address is not None:
        raise ConfigError("address", f"a cluster address is for the ray backend, not {backend}; allowed: "
                          "--backend ray --address HOST:PORT, or no --address")


def check_seeds(seeds) -> tuple[int, ...]:
    seeds = tuple(seeds)
    if not seeds:
        raise ConfigError("seeds", "no seeds; allowed: one or more")
    if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ConfigError("seeds", f"{list(seeds)}; allowed: non-negative integers")
    if len(set(seeds)) != len(seeds):
        raise ConfigError("seeds", f"{list(seeds)} repeats a seed; allowed: distinct seeds")
    return seeds


def check_conditions(conditions: list[Condition]) -> None:
    """Condition ids name job files: they must be unique and safe as file names (a bug in the
    experiment if not, so not a ConfigError)."""
    seen = set()
    for condition in conditions:
        cid = condition.id
        if not cid or cid.startswith(".") or "/" in cid or os.sep in cid or "\0" in cid:
            raise ValueError(f"condition id {cid!r} is not a safe file name")
        if cid in seen:
            raise ValueError(f"condition id {cid!r} is used twice")
        seen.add(cid)


def prepare(experiment, config, seeds, out_dir, resume: bool, backend: str = "local",
            preset: str = "", command: str = "", ray_options: RayOptions | None = None
            ) -> tuple[list[Condition], dict[str, Any]]:
    """Check everything a run needs before anything is written: the backend, the config, the
    seeds, the conditions and the output directory. Returns (conditions, run record)."""
    check_backend(backend, ray_options)
    experiment.validate(config)
    seeds = check_seeds(seeds)
    conditions = list(experiment.conditions(config))
    check_conditions(conditions)
    record = store.run_record(experiment, preset, config, seeds, command)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError("out", f"{out_dir} exists and is not a directory; allowed: a new or run directory")
    if out_dir.is_dir():
        holds_run = (out_dir / store.CONFIG).is_file()
        if holds_run and not resume:
            raise ConfigError("out", f"{out_dir} already holds a run; pass --resume to continue it or "
                              "choose another --out")
        if not holds_run and any(out_dir.iterdir()):
            raise ConfigError("out", f"{out_dir} is not empty and holds no run; allowed: a new, empty or "
                              "run directory")
        if holds_run:
            try:
                old = store.read_record(out_dir)
            except ConfigError as err:
                raise ConfigError("resume", f"cannot resume: {str(err).partition(': ')[2]}") from None
            difference = store.record_difference(old, record)
            if difference is not None:
                raise ConfigError("resume", f"the run in {out_dir} differs in {difference}; resume with the "
                                  "same arguments or choose another --out")
    return conditions, record


def execute_job(experiment, config, condition: Condition, seeds, progress: ProgressFn | None = None,
                out_dir=None, track: bool = False) -> list[dict[str, Any]]:
    """Run one job and return its rows, each with `experiment`, `condition` and the condition's
    fields added and plain-JSON values. Pure in (config, condition, seeds).

    With `out_dir`, the job also writes its checkpoints and live curves there (see
    experiments.outputs; the config's `save_agents` and `log_curves` say which), and to W&B
    with `track`."""
    if out_dir is None:
        rows = experiment.run_job(config, condition, tuple(seeds), progress)
    else:
        with outputs.job_outputs(out_dir, condition.id, seeds, save_agents=getattr(config, "save_agents", True),
                                 tensorboard=getattr(config, "log_curves", True), track=track,
                                 experiment=experiment.name, config=store.plain(config_to_dict(config))):
            rows = experiment.run_job(config, condition, tuple(seeds), progress)
    out = []
    for i, row in enumerate(rows):
        missing = [k for k in store.ROW_KEYS_REQUIRED if k not in row]
        if missing:
            raise ValueError(f"job {condition.id}: row {i} lacks {', '.join(missing)}: {row}")
        row = {k: v for k, v in row.items() if k not in store.ROW_KEYS_ADDED}
        row["seed"] = int(row["seed"])
        row["value"] = store.check_value(row["value"])
        out.append(store.plain({"experiment": experiment.name, "condition": condition.id,
                                **condition.fields, **row}))
    return out


def run_experiment(experiment, config, seeds, out_dir, resume: bool = False, command: str = "",
                   preset: str = "", backend: str = "local", progress: bool = True,
                   on_stall: Callable[[], None] | None = None, ray_options: RayOptions | None = None,
                   track: bool = False) -> Path:
    """Run every unfinished job of `experiment` under `config` into `out_dir`, then write
    metrics.parquet and the report. Returns the run directory.

    backend: "local" runs the jobs here, one after another; "ray" runs them as Ray tasks
    (runner.ray_backend; `ray_options` says where and how) and raises
    ray_backend.JobsFailed, once the other jobs are saved, if a job fails on every retry.
    on_stall: called (from a watchdog thread) if a local job in flight uses no CPU for minutes,
    the XLA CPU deadlock (see `runner.watchdog`); None: no watchdog. Local backend only.
    track: also log each job's training curves to Weights & Biases (experiments.outputs)."""
    seeds = tuple(seeds)
    conditions, record = prepare(experiment, config, seeds, out_dir, resume, backend, preset, command,
                                 ray_options)
    out_dir = Path(out_dir)
    todo = [c for c in conditions if not store.is_finished(out_dir, c.id)]
    # Connect before anything is written, so a bad address leaves no half-made run directory.
    cluster = ray_backend.connect(ray_options or RayOptions()) if backend == "ray" and todo else None
    unfinished: list[str] = []
    try:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError("out", f"cannot create {out_dir} ({err.strerror}); allowed: a writable path") from None
        if (out_dir / store.CONFIG).is_file():
            record = store.read_record(out_dir)  # resuming: the original record (and command) stands
        else:
            store.write_record(out_dir, record)

        display = _Display(progress, len(conditions), len(conditions) - len(todo))
        watch = on_stall is not None and cluster is None
        watchdog = StallWatchdog(on_stall) if watch else contextlib.nullcontext()
        try:
            with display, watchdog:
                if cluster is not None:
                    ray_backend.run_jobs(cluster, experiment, config, todo, seeds, out_dir, display, unfinished,
                                         len(conditions), track)
                else:
                    for condition in todo:
                        unfinished[:] = [condition.id]
                        display.start_job(condition.id)
                        if watch:
                            watchdog.set_busy(True)
                        started = time.monotonic()
                        rows = execute_job(experiment, config, condition, seeds, display.job_progress, out_dir,
                                           track)
                        if watch:
                            watchdog.set_busy(False)
                        store.write_job(out_dir, condition, seeds, rows, time.monotonic() - started)
                        display.finish_job(condition.id)
        except ray_backend.JobsFailed:
            raise  # its message names the failed jobs and what is saved
        except BaseException:
            finished = sum(store.is_finished(out_dir, c.id) for c in conditions)
            print(f"innerlab: {_jobs_phrase(unfinished)} did not finish; {finished} of {len(conditions)} jobs are "
                  f"saved in {out_dir}; continue with --resume", file=sys.stderr)
            raise
    finally:
        if cluster is not None:
            cluster.close()

    jobs = {c.id: store.read_job(out_dir, c.id)["rows"] for c in conditions}
    frame = store.metrics_frame(experiment.name, experiment.swept_fields, conditions, jobs)
    store.write_metrics(out_dir, frame)
    # Analyse what was stored, exactly as `innerlab report` will.
    md, html = render_report(experiment, config, store.read_metrics(out_dir), out_dir, record.get("command", ""))
    print(f"report: {md}\n        {html}")
    return out_dir


def _jobs_phrase(ids: list[str], shown: int = 3) -> str:
    """'job a', 'jobs a, b', 'jobs a, b, c and 4 more', or 'job ?' if none is known."""
    if not ids:
        return "job ?"
    names = ", ".join(ids[:shown]) + (f" and {len(ids) - shown} more" if len(ids) > shown else "")
    return f"job {names}" if len(ids) == 1 else f"jobs {names}"


def render_report(experiment, config, rows, run_dir, command: str) -> tuple[Path, Path]:
    """analyze -> Report -> report.md, report.html, figures/ and summary.json (the controls) in
    `run_dir`."""
    from innerlab.report.render import write_report

    from innerlab.experiments.reporting import checks_table

    report = experiment.analyze(config, rows)
    if command:
        report.command = command
    paths = write_report(report, run_dir)
    # The controls as data, for `innerlab run all`'s index page (runner.suite).
    summary = {"title": report.title, "checks": checks_table(report.checks).to_dict("records")}
    store.atomic_write_json(Path(run_dir) / "summary.json", summary)
    return paths


class _Display:
    """Progress: on a terminal, a rich bar over jobs and one over the current job; otherwise
    one line per finished job (on stderr, so stdout holds only results). The ray backend has no
    current job: it reports how many are in flight, and each finish (and failure) as a line."""

    def __init__(self, enabled: bool, total: int, done: int):
        self.enabled, self.total, self.done = enabled, total, done
        self.progress = None
        self.job_task = None
        self.started = 0.0
        self.console = None

    def __enter__(self):
        if not self.enabled:
            return self
        from rich.console import Console

        self.console = Console(stderr=True)
        if self.console.is_terminal:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                     TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
                                     TimeRemainingColumn(), TextColumn("{task.fields[status]}"),
                                     console=self.console)
            self.progress.start()
            status = f"{self.done} already done" if self.done else ""
            self.jobs_task = self.progress.add_task("jobs", total=self.total, completed=self.done, status=status)
        elif self.done:
            print(f"resuming: {self.done} of {self.total} jobs already done", file=sys.stderr, flush=True)
        return self

    def start_job(self, name: str) -> None:
        self.started = time.monotonic()
        if self.progress is not None:
            if self.job_task is not None:
                self.progress.remove_task(self.job_task)
            self.progress.update(self.jobs_task, description=f"jobs ({name})")
            self.job_task = self.progress.add_task(f"  {name}", total=1.0, status="starting")

    def job_progress(self, fraction: float, status: str = "") -> None:
        if self.progress is not None and self.job_task is not None:
            self.progress.update(self.job_task, completed=min(max(float(fraction), 0.0), 1.0), status=status)

    def in_flight(self, count: int) -> None:
        """The ray backend's jobs bar: `count` jobs submitted and not yet back."""
        if self.progress is not None:
            self.progress.update(self.jobs_task, description=f"jobs ({count} queued or running)" if count else "jobs")

    def finish_job(self, name: str, seconds: float | None = None) -> None:
        """`name` is done; it took `seconds` (default: since `start_job`)."""
        self.done += 1
        if seconds is None:
            seconds = time.monotonic() - self.started
        if self.progress is not None:
            if self.job_task is not None:
                self.progress.update(self.job_task, completed=1.0, status=f"{seconds:.1f} s")
            else:
                self.progress.console.print(f"[{self.done}/{self.total}] {name} done in {seconds:.1f} s")
            self.progress.advance(self.jobs_task)
        elif self.enabled:
            print(f"[{self.done}/{self.total}] {name} done in {seconds:.1f} s", file=sys.stderr, flush=True)

    def fail_job(self, name: str, cause: str) -> None:
        if self.progress is not None:
            self.progress.console.print(f"{name} failed: {cause}")
        elif self.enabled:
            print(f"{name} failed: {cause}", file=sys.stderr, flush=True)

    def __exit__(self, *exc) -> bool:
        if self.progress is not None:
            self.progress.stop()
        return False
