"""The run store: one directory per run, JSON and parquet only (never pickles).

    run_dir/config.json          experiment, preset, exact config, seeds, versions, command
    run_dir/jobs/<condition>.json  one file per finished job, written atomically
    run_dir/metrics.parquet      tidy rows of every job
    run_dir/report.md, report.html, figures/
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from innerlab._io import atomic_write_bytes
from innerlab.experiments.base import ConfigError, config_from_dict, config_to_dict

VERSIONED = ("innerlab", "jax", "jaxlib", "flax", "optax", "gymnax", "numpy", "pandas", "pyarrow")


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def run_record(experiment, preset: str, config, seeds, command: str) -> dict:
    return {"experiment": experiment.name, "preset": preset, "config": config_to_dict(config),
            "seeds": list(seeds), "versions": versions(), "command": command,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


def same_run(a: dict, b: dict) -> bool:
    """Two config records describe the same run (config and seeds; not time or versions)."""
    a, b = json.loads(json.dumps(a)), json.loads(json.dumps(b))  # tuples and lists compare equal
    return (a["experiment"], a["config"], list(a["seeds"])) == (b["experiment"], b["config"], list(b["seeds"]))


def job_path(run_dir: Path, condition_id: str) -> Path:
    return Path(run_dir) / "jobs" / f"{condition_id}.json"


def write_job(run_dir: Path, condition, seeds, rows: list[dict]) -> None:
    atomic_write_json(job_path(run_dir, condition.id),
                      {"condition": condition.id, "fields": condition.fields, "seeds": list(seeds), "rows": rows})


def read_job(run_dir: Path, condition_id: str) -> dict:
    return json.loads(job_path(run_dir, condition_id).read_text())


def rows_frame(experiment, conditions, jobs: dict[str, dict]) -> pd.DataFrame:
    """Tidy rows: experiment, condition, <swept fields>, <extra columns>, seed, metric, value."""
    records = []
    extra: list[str] = []
    for cond in conditions:
        for row in jobs[cond.id]["rows"]:
            for key in row:
                if key not in ("seed", "metric", "value") and key not in extra:
                    extra.append(key)
            records.append({"experiment": experiment.name, "condition": cond.id, **cond.fields, **row})
    columns = ["experiment", "condition", *experiment.swept_fields, *extra, "seed", "metric", "value"]
    frame = pd.DataFrame.from_records(records, columns=columns)
    frame["seed"] = frame["seed"].astype("int64")
    frame["value"] = frame["value"].astype("float64")
    return frame


def write_metrics(run_dir: Path, frame: pd.DataFrame) -> Path:
    import io

    buffer = io.BytesIO()
    # No pandas index and no timestamps: identical rows give an identical file.
    frame.to_parquet(buffer, index=False, engine="pyarrow")
    path = Path(run_dir) / "metrics.parquet"
    atomic_write_bytes(path, buffer.getvalue())
    return path


def load_run(run_dir) -> tuple[Any, Any, dict, pd.DataFrame]:
    """(experiment, config, record, rows) of a finished run directory."""
    from innerlab.experiments import base

    run_dir = Path(run_dir)
    config_path = run_dir / "config.json"
    if not run_dir.is_dir():
        raise ConfigError("run_dir", f"{run_dir} does not exist; give a run directory made by `innerlab run`")
    if not config_path.is_file():
        raise ConfigError("run_dir", f"{run_dir} has no config.json; give a run directory made by `innerlab run`")
    record = json.loads(config_path.read_text())
    experiment = base.get(record["experiment"])
    config = config_from_dict(experiment.Config, record["config"])
    metrics_path = run_dir / "metrics.parquet"
    if not metrics_path.is_file():
        raise ConfigError("run_dir", f"{run_dir} has no metrics.parquet (unfinished run? re-run with --resume)")
    return experiment, config, record, pd.read_parquet(metrics_path)
