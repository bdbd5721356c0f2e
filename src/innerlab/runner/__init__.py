"""Run store and backends (local now; a Ray backend plugs into `execute_job`)."""

from innerlab.runner.local import BACKENDS, execute_job, run_experiment
from innerlab.runner.store import load_run

__all__ = ["BACKENDS", "execute_job", "load_run", "run_experiment"]
