"""Run store and backends: `local` runs jobs in this process; `ray` (runner.ray_backend) runs
`execute_job` in Ray tasks."""

from innerlab.runner.local import BACKENDS, execute_job, prepare, render_report, run_experiment
from innerlab.runner.ray_backend import JobsFailed, RayOptions
from innerlab.runner.store import load_run, read_record

__all__ = ["BACKENDS", "JobsFailed", "RayOptions", "execute_job", "load_run", "prepare", "read_record", "render_report", "run_experiment"]
