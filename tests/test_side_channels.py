"""The side-channels experiment end to end on the smoke preset: determinism, resume after a
SIGKILL, the store's format, and re-rendering a report."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from innerlab.cli import main
from innerlab.experiments import get

SMOKE = ["run", "side-channels", "--preset", "smoke"]


def _cli(args, cwd=None, **kwargs):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "innerlab", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs)


@pytest.fixture(scope="module")
def smoke_run(smoke_run):  # the session's shared smoke run (conftest.py)
    return smoke_run("side-channels")


def test_store_layout_and_tidy_metrics(smoke_run):
    record = json.loads((smoke_run / "config.json").read_text())
    assert record["experiment"] == "side-channels" and record["seeds"] == [0, 1]
    assert record["versions"]["jax"] and record["command"].startswith("innerlab run side-channels")
    rows = pd.read_parquet(smoke_run / "metrics.parquet")
    assert list(rows.columns) == ["experiment", "condition", "channel", "p", "arch", "transform",
                                  "perturbation", "seed", "metric", "value"]
    conditions = get("side-channels").conditions(get("side-channels").presets["smoke"])
    assert sorted(rows.condition.unique()) == sorted(c.id for c in conditions)
    assert len(list((smoke_run / "jobs").glob("*.json"))) == len(conditions)
    follow = rows[rows.metric == "follow_index"]
    assert set(follow.perturbation) == {"swap"} and follow.value.between(0, 1).all()
    # one row per condition x seed x perturbation x metric
    assert not rows.duplicated(["condition", "perturbation", "seed", "metric"]).any()
    for name in ("report.md", "report.html", "figures/follow_index.png"):
        assert (smoke_run / name).is_file()
    html = (smoke_run / "report.html").read_text()
    assert "data:image/png;base64," in html and "Controls" in html


def test_same_command_twice_gives_identical_metrics(smoke_run, tmp_path):
    again = tmp_path / "again"
    assert main([*SMOKE, "--out", str(again)]) == 0
    assert (again / "metrics.parquet").read_bytes() == (smoke_run / "metrics.parquet").read_bytes()


def test_report_rerenders_without_training(smoke_run):
    (smoke_run / "report.md").unlink()
    start = time.time()
    assert main(["report", str(smoke_run)]) == 0
    assert (smoke_run / "report.md").is_file() and time.time() - start < 30


def test_sigkill_then_resume_matches_uninterrupted(smoke_run, tmp_path):
    out = tmp_path / "killed"
    proc = _cli([*SMOKE, "--out", str(out)], start_new_session=True)
    jobs = out / "jobs"
    deadline = time.time() + 240
    while time.time() < deadline and not (jobs.is_dir() and any(jobs.glob("*.json"))):
        time.sleep(0.05)
        assert proc.poll() is None, proc.stdout.read().decode()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {p.name: p.stat().st_mtime_ns for p in jobs.glob("*.json")}
    total = len(get("side-channels").conditions(get("side-channels").presets["smoke"]))
    assert 1 <= len(finished) < total, "the kill should land part-way"
    assert not (out / "metrics.parquet").exists()

    resumed = _cli([*SMOKE, "--out", str(out), "--resume"])
    output = resumed.communicate(timeout=300)[0].decode()
    assert resumed.returncode == 0, output
    for name, mtime in finished.items():  # finished jobs were not retrained
        assert (jobs / name).stat().st_mtime_ns == mtime
    assert (out / "metrics.parquet").read_bytes() == (smoke_run / "metrics.parquet").read_bytes()
