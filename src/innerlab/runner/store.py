"""The run store: one directory per run, JSON and parquet only (nothing is ever unpickled).

    run_dir/config.json            experiment, preset, exact config, seeds, versions, command
    run_dir/jobs/<condition>.json  one file per finished job, written atomically when it ends
    run_dir/metrics.parquet        tidy rows of every job (written once all jobs are done)
    run_dir/report.md, report.html, figures/<name>.png

Every file is written to a temp file in its own directory, fsynced and renamed into place, so
a reader, or a run killed mid-write, sees the old file or the whole new one, never a torn one.

metrics.parquet holds no timestamps: the same rows written with the same pandas and pyarrow
versions give the same bytes (the file records those two versions, nothing else that varies).
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import math
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from innerlab._io import atomic_write_bytes
from innerlab.experiments.base import Condition, ConfigError, config_from_dict, config_to_dict

CONFIG = "config.json"
METRICS = "metrics.parquet"
JOBS = "jobs"
VERSIONED = ("innerlab", "jax", "jaxlib", "flax", "optax", "gymnax", "numpy", "pandas", "pyarrow")
# Columns every job row carries; the runner adds ROW_KEYS_ADDED, the job returns ROW_KEYS_REQUIRED.
ROW_KEYS_ADDED = ("experiment", "condition")
ROW_KEYS_REQUIRED = ("seed", "metric", "value")


def versions() -> dict[str, str | None]:
    """Python and the installed versions of the libraries a result depends on (None: absent)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _json_default(value):
    # numpy scalars and arrays (jobs often return them) become plain numbers and lists.
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json(obj: Any) -> str:
    # A value that was not measured is NaN, written as the bare token NaN (Python's json reads it).
    return json.dumps(obj, indent=2, default=_json_default) + "\n"


def atomic_write_json(path, obj: Any) -> None:
    atomic_write_bytes(path, to_json(obj).encode())


def plain(obj: Any) -> Any:
    """`obj` as it reads back from JSON (tuples become lists, numpy scalars numbers)."""
    return json.loads(json.dumps(obj, default=_json_default))


# --- config.json -------------------------------------------------------------------------------

def run_record(experiment, preset: str, config, seeds, command: str) -> dict[str, Any]:
    """The content of config.json. Holds the command line, never environment variables."""
    return {
        "experiment": experiment.name,
        "preset": preset,
        "config": plain(config_to_dict(config)),
        "seeds": [int(s) for s in seeds],
        "versions": versions(),
        "command": command,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def write_record(run_dir, record: dict[str, Any]) -> Path:
    path = Path(run_dir) / CONFIG
    atomic_write_json(path, record)
    return path


def read_record(run_dir) -> dict[str, Any]:
    """config.json of `run_dir`; ConfigError('run_dir', ...) if it is not a run directory."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError("run_dir", f"{run_dir} does not exist; allowed: a directory made by `innerlab run`")
    path = run_dir / CONFIG
    if not path.is_file():
        raise ConfigError("run_dir", f"{run_dir} has no {CONFIG}; allowed: a directory made by `innerlab run`")
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError("run_dir", f"{path} is unreadable ({err}); allowed: a directory made by `innerlab run`") from None
    if not isinstance(record, dict) or not {"experiment", "config", "seeds"} <= set(record):
        raise ConfigError("run_dir", f"{path} is not a run record; allowed: a directory made by `innerlab run`")
    return record


def record_difference(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """The first way two records differ as runs (experiment, config, seeds), or None. Time,
    versions, preset name and command line are not compared."""
    old, new = plain(old), plain(new)
    if old.get("experiment") != new["experiment"]:
        return f"experiment ({old.get('experiment')!r} there, {new['experiment']!r} here)"
    old_config, new_config = old.get("config") or {}, new["config"]
    for key in list(new_config) + [k for k in old_config if k not in new_config]:
        if old_config.get(key, "<absent>") != new_config.get(key, "<absent>"):
            return f"config field {key} ({old_config.get(key, '<absent>')!r} there, {new_config.get(key, '<absent>')!r} here)"
    if old.get("seeds") != new["seeds"]:
        return f"seeds ({old.get('seeds')} there, {new['seeds']} here)"
    return None


# --- jobs/<condition>.json -----------------------------------------------------------------------

def job_path(run_dir, condition_id: str) -> Path:
    return Path(run_dir) / JOBS / f"{condition_id}.json"


def is_finished(run_dir, condition_id: str) -> bool:
    return job_path(run_dir, condition_id).is_file()


def write_job(run_dir, condition: Condition, seeds, rows: list[dict[str, Any]], seconds: float | None = None) -> Path:
    """Record a finished job: {"condition", "fields", "seeds", "rows"[, "seconds"]}, atomically.
    `seconds`: the job's wall time (for the run-all index; not part of the results)."""
    path = job_path(run_dir, condition.id)
    record = {"condition": condition.id, "fields": condition.fields, "seeds": [int(s) for s in seeds], "rows": rows}
    if seconds is not None:
        record["seconds"] = round(float(seconds), 2)
    atomic_write_json(path, record)
    return path


def read_job(run_dir, condition_id: str) -> dict[str, Any]:
    return json.loads(job_path(run_dir, condition_id).read_text())


# --- metrics.parquet ------------------------------------------------------------------------------

def metrics_frame(experiment_name: str, swept_fields, conditions: list[Condition],
                  jobs: dict[str, list[dict[str, Any]]]) -> pd.DataFrame:
    """Tidy rows in condition order, then in the order each job returned them. Columns:
    experiment, condition, <swept fields>, <any other row keys, first seen first>, seed,
    metric, value."""
    fixed = (*ROW_KEYS_ADDED, *swept_fields, *ROW_KEYS_REQUIRED)
    extra: list[str] = []
    records = []
    for condition in conditions:
        for row in jobs[condition.id]:
            extra += [k for k in row if k not in fixed and k not in extra and k not in condition.fields]
            records.append({**condition.fields, **row, "experiment": experiment_name, "condition": condition.id})
    columns = [*ROW_KEYS_ADDED, *swept_fields, *extra, *ROW_KEYS_REQUIRED]
    frame = pd.DataFrame.from_records(records, columns=columns)
    frame["seed"] = frame["seed"].astype("int64")
    frame["value"] = frame["value"].astype("float64")
    return frame


def write_metrics(run_dir, frame: pd.DataFrame) -> Path:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False, engine="pyarrow")
    path = Path(run_dir) / METRICS
    atomic_write_bytes(path, buffer.getvalue())
    return path


def read_metrics(run_dir) -> pd.DataFrame:
    return pd.read_parquet(Path(run_dir) / METRICS, engine="pyarrow")


def load_run(run_dir) -> tuple[Any, Any, tuple[int, ...], pd.DataFrame]:
    """(experiment, config, seeds, rows) of a finished run directory, from JSON and parquet.
    ConfigError('run_dir', ...) if it is not one."""
    from innerlab.experiments import base

    run_dir = Path(run_dir)
    record = read_record(run_dir)
    experiment = base.get(record["experiment"])
    try:
        config = config_from_dict(experiment.Config, record["config"])
    except (TypeError, ValueError) as err:
        raise ConfigError("run_dir", f"{run_dir / CONFIG} does not hold a {experiment.name} config ({err})") from None
    if not (run_dir / METRICS).is_file():
        raise ConfigError("run_dir", f"{run_dir} has no {METRICS} (an unfinished run); allowed: a finished run, "
                          "or finish this one with `innerlab run ... --resume`")
    return experiment, config, tuple(int(s) for s in record["seeds"]), read_metrics(run_dir)


def check_value(value) -> float:
    """A row's value as a float (NaN stands for 'not measured')."""
    if value is None:
        return math.nan
    return float(value)
