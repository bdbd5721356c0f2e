"""Run store and backends: `local` runs jobs in this process; a Ray backend would call
`execute_job` in remote tasks."""

from innerlab.runner.local import BACKENDS, execute_job, prepare, render_report, run_experiment
from innerlab.runner.store import load_run, read_record

__all__ = ["BACKENDS", "execute_job", "load_run", "prepare", "read_record", "render_report", "run_experiment"]
