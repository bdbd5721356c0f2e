"""Run an experiment: every job (condition x seed batch) in turn, in this process.

A job is a pure function of (config, condition, seeds), so a backend may run it anywhere;
`execute_job` is what a remote (Ray) task would call. Finished jobs are written at once, so a
killed run loses at most the job in flight, and `resume=True` skips the finished ones.
"""

from __future__ import annotations

import sys
from pathlib import Path

from innerlab.experiments.base import ConfigError
from innerlab.runner import store

BACKENDS = ("local",)


def execute_job(experiment, config, condition, seeds, progress=None) -> list[dict]:
    return experiment.run_job(config, condition, tuple(seeds), progress)


def prepare(experiment, config, seeds, out_dir, resume: bool, backend: str = "local"):
    """Validate everything before anything is written. Returns the conditions."""
    if backend not in BACKENDS:
        raise ConfigError("backend", f"{backend!r} is not available yet; allowed: {', '.join(BACKENDS)}")
    experiment.validate(config)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError("out", f"{out_dir} exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not resume:
        raise ConfigError("out", f"{out_dir} already holds a run; pass --resume to continue it or choose another --out")
    return experiment.conditions(config)


def run_experiment(experiment, config, seeds, out_dir, *, resume: bool = False, command: str = "",
                   preset: str = "", backend: str = "local", show_progress: bool = True) -> Path:
    import json

    conditions = prepare(experiment, config, seeds, out_dir, resume, backend)
    out_dir = Path(out_dir)
    record = store.run_record(experiment, preset, config, seeds, command)
    config_path = out_dir / "config.json"
    if config_path.is_file():
        old = json.loads(config_path.read_text())
        if not store.same_run(old, record):
            raise ConfigError("resume", f"{out_dir} holds a run with a different experiment, config or seeds; "
                              "resume it with the same arguments or choose another --out")
    else:
        out_dir.mkdir(parents=True, exist_ok=True)
        store.atomic_write_json(config_path, record)

    todo = [c for c in conditions if not store.job_path(out_dir, c.id).is_file()]
    with _Progress(show_progress, len(conditions), len(conditions) - len(todo)) as bars:
        for condition in todo:
            bars.start_job(condition.id)
            rows = execute_job(experiment, config, condition, seeds, bars.job_progress)
            store.write_job(out_dir, condition, seeds, rows)
            bars.finish_job(condition.id)

    jobs = {c.id: store.read_job(out_dir, c.id) for c in conditions}
    frame = store.rows_frame(experiment, conditions, jobs)
    store.write_metrics(out_dir, frame)
    from innerlab.report.render import write_report

    report = experiment.analyze(config, frame)
    report.command = record["command"]
    md, html = write_report(report, out_dir)
    print(f"report: {md}\n        {html}")
    return out_dir


class _Progress:
    """A bar over jobs and one over the current job's training (rich)."""

    def __init__(self, enabled: bool, total: int, done: int):
        self.enabled, self.total, self.done = enabled, total, done
        self.progress = None

    def __enter__(self):
        if self.enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                                     TimeElapsedColumn(), TextColumn("{task.fields[status]}"), transient=False,
                                     redirect_stdout=False, redirect_stderr=False)
            self.progress.__enter__()
            self.jobs = self.progress.add_task("jobs", total=self.total, completed=self.done, status=
                                               f"{self.done} already done" if self.done else "")
            self.job = None
        return self

    def start_job(self, name: str):
        if self.progress is not None:
            if self.job is not None:
                self.progress.remove_task(self.job)
            self.job = self.progress.add_task(f"  {name}", total=1.0, status="compiling")

    def job_progress(self, fraction: float, status: str = ""):
        if self.progress is not None and self.job is not None:
            self.progress.update(self.job, completed=fraction, status=status)

    def finish_job(self, name: str):
        if self.progress is not None:
            self.progress.update(self.job, completed=1.0)
            self.progress.advance(self.jobs)
        if not sys.stderr.isatty():
            print(f"finished job {name}", file=sys.stderr, flush=True)

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.__exit__(*exc)
        return False
