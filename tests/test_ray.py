"""The Ray backend (`innerlab run ... --backend ray`) on a real local Ray cluster of 2 CPUs,
started once for this module: the same metrics as the local backend, jobs saved as they
finish, retries then a report naming the failed job, resume, and clear errors.

Workers resolve an experiment by its registry entry ("module:attribute", which the driver
ships with the name), so the test experiments here must be importable in a worker: the
cluster is started with this directory on PYTHONPATH (workers inherit the environment of the
cluster that `ray.init` starts, but not the driver's sys.path).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

TESTS = Path(__file__).parent

import fake_experiment  # noqa: E402

from innerlab.cli import main  # noqa: E402
from innerlab.experiments import base  # noqa: E402
from innerlab.experiments.base import ConfigError  # noqa: E402
from innerlab.runner import run_experiment, store  # noqa: E402
from innerlab.runner.ray_backend import MAX_RETRIES, JobsFailed, RayOptions  # noqa: E402

FAKE_SMOKE = fake_experiment.EXPERIMENT.presets["smoke"]
FAKE_IDS = [c.id for c in fake_experiment.EXPERIMENT.conditions(FAKE_SMOKE)]


class Flaky(fake_experiment.FakeExperiment):
    """The fake experiment steered by a plan file whose path is the config's `label`: a line
    'raise ID' makes job ID raise, 'kill ID' makes it SIGKILL its worker, on every attempt.
    Each attempt appends the job's id to '<label>.attempts' and writes the worker's memory
    settings to '<label>.env'. Deleting the plan is the fix."""

    name = "flaky"

    def run_job(self, config, condition, seeds, progress=None):
        plan = Path(config.label)
        with open(f"{plan}.attempts", "a") as log:
            log.write(condition.id + "\n")
        keys = ("XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_CLIENT_MEM_FRACTION", "XLA_PYTHON_CLIENT_MEM_FRACTION",
                "CUDA_VISIBLE_DEVICES")
        Path(f"{plan}.env").write_text(json.dumps({k: os.environ.get(k) for k in keys}))
        steps = plan.read_text().split() if plan.is_file() else []
        for action, target in zip(steps[::2], steps[1::2]):
            if target == condition.id and action == "raise":
                raise RuntimeError(f"planned failure in {condition.id}")
            if target == condition.id and action == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
        return super().run_job(config, condition, seeds, progress)


FLAKY = Flaky()


@pytest.fixture(scope="module")
def cluster():
    # Workers inherit this process's environment, with innerlab's persistent compilation cache
    # (JAX_COMPILATION_CACHE_DIR, set when innerlab was imported): the Ray workers and the local
    # reference run share compiled programs.
    ray = pytest.importorskip("ray")
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH",)}
    os.environ["PYTHONPATH"] = os.pathsep.join([str(TESTS), *([saved["PYTHONPATH"]] if saved["PYTHONPATH"] else [])])
    try:
        # One nominal GPU (Ray counts it; nothing uses it), so tasks take the GPU path: each asks
        # for half of it and gets the memory settings.
        ray.init(num_cpus=2, num_gpus=1, include_dashboard=False)
    finally:  # the cluster's processes have their copy
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    yield ray
    ray.shutdown()


@pytest.fixture(autouse=True)
def registered(monkeypatch):
    fake_experiment.register(monkeypatch)
    monkeypatch.setitem(base._REGISTRY, "flaky", f"{__name__}:FLAKY")


def _attempts(plan: Path) -> list[str]:
    log = Path(f"{plan}.attempts")
    return log.read_text().split() if log.is_file() else []


def _flaky_run(out, plan, backend="ray", resume=False, **kwargs):
    config = replace(FAKE_SMOKE, label=str(plan))
    return run_experiment(FLAKY, config, (0, 1), out, resume=resume, command="c", preset="smoke",
                          backend=backend, progress=False, **kwargs)


def test_a_jax_experiment_gives_the_local_backends_metrics(cluster, tmp_path):
    # The tests' example experiment (tests/example_experiment, on the kit like the five): jitted,
    # vmapped training in chunks with a tail, two jobs that run at once on the 2 CPUs, and it
    # compiles in seconds. Workers resolve it by its registry entry.
    args = ["run", "example", "--preset", "smoke"]
    assert main([*args, "--backend", "ray", "--out", str(tmp_path / "ray")]) == 0
    assert main([*args, "--out", str(tmp_path / "local")]) == 0
    local, remote = (store.read_metrics(tmp_path / b) for b in ("local", "ray"))
    assert len(local) > 0 and set(local.metric) >= {"env_steps"}
    pd.testing.assert_frame_equal(remote, local, check_exact=False, rtol=1e-6)  # (byte-identical when written)
    # The workers wrote each job's checkpoints and curves into the run directory themselves.
    import innerlab

    for backend in ("local", "ray"):
        assert len(list((tmp_path / backend / "tb").glob("*/seed-*/events.out.tfevents.*"))) == 4
    ray_agent = innerlab.load_agent(tmp_path / "ray", condition={"gap": 0.4}, seed=1)
    local_agent = innerlab.load_agent(tmp_path / "local", condition={"gap": 0.4}, seed=1)
    assert abs(ray_agent.params["logits"] - local_agent.params["logits"]).max() < 1e-5


def test_cli_runs_on_ray_prints_each_finish_and_resume_skips_finished_jobs(cluster, tmp_path, capsys):
    out, reference = tmp_path / "ray", tmp_path / "local"
    args = ["run", "fake", "--preset", "smoke"]
    assert main([*args, "--out", str(reference)]) == 0
    capsys.readouterr()
    assert main([*args, "--out", str(out), "--backend", "ray"]) == 0
    err = capsys.readouterr().err
    assert sorted(line.split()[1] for line in err.splitlines() if " done in " in line) == sorted(FAKE_IDS)
    pd.testing.assert_frame_equal(store.read_metrics(out), store.read_metrics(reference))

    # A run killed after two jobs: its other job files and metrics are gone.
    for cid in FAKE_IDS[1:3]:
        store.job_path(out, cid).unlink()
    (out / store.METRICS).unlink()
    kept = {cid: store.job_path(out, cid).stat().st_mtime_ns for cid in (FAKE_IDS[0], FAKE_IDS[3])}
    assert main([*args, "--out", str(out), "--backend", "ray", "--resume"]) == 0
    err = capsys.readouterr().err
    assert "resuming: 2 of 4 jobs already done" in err
    assert sorted(line.split()[1] for line in err.splitlines() if " done in " in line) == sorted(FAKE_IDS[1:3])
    assert {cid: store.job_path(out, cid).stat().st_mtime_ns for cid in kept} == kept
    pd.testing.assert_frame_equal(store.read_metrics(out), store.read_metrics(reference))


def test_progress_bars_on_a_terminal(cluster, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich treats stderr as a terminal: the bars path
    run_experiment(fake_experiment.EXPERIMENT, FAKE_SMOKE, (0,), tmp_path / "run", command="c", preset="smoke",
                   backend="ray")
    err = capsys.readouterr().err
    assert "jobs" in err and err.count(" done in ") == len(FAKE_IDS)


def test_workers_share_a_gpu_without_preallocating(cluster, tmp_path):
    plan = tmp_path / "plan"
    _flaky_run(tmp_path / "run", plan)
    env = json.loads(Path(f"{plan}.env").read_text())
    assert env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert env["XLA_CLIENT_MEM_FRACTION"] == "0.45" and not env["XLA_PYTHON_CLIENT_MEM_FRACTION"]
    assert env["CUDA_VISIBLE_DEVICES"] == "0"  # Ray gave the task its share of GPU 0


def test_a_failing_job_is_retried_then_reported_and_resume_finishes(cluster, tmp_path):
    plan, out = tmp_path / "plan", tmp_path / "run"
    bad = FAKE_IDS[2]
    plan.write_text(f"raise {bad}")
    with pytest.raises(JobsFailed) as err:
        _flaky_run(out, plan)
    message = str(err.value)
    assert err.value.failed == {bad: f"RuntimeError: planned failure in {bad}"}
    assert f"{bad}: RuntimeError: planned failure in {bad}" in message
    assert f"after up to {MAX_RETRIES + 1} attempts" in message and "3 of 4 jobs are saved" in message
    assert "--resume" in message
    assert _attempts(plan).count(bad) == MAX_RETRIES + 1
    assert sorted(c for c in FAKE_IDS if store.is_finished(out, c)) == sorted(set(FAKE_IDS) - {bad})
    assert not (out / store.METRICS).exists()

    plan.unlink()  # the fix
    before = len(_attempts(plan))
    _flaky_run(out, plan, resume=True)
    assert _attempts(plan)[before:] == [bad]  # finished jobs were skipped
    reference = _flaky_run(tmp_path / "local", plan, backend="local")
    pd.testing.assert_frame_equal(store.read_metrics(out), store.read_metrics(reference))


def test_a_crashing_worker_is_retried_then_reported(cluster, tmp_path):
    plan, out = tmp_path / "plan", tmp_path / "run"
    bad = FAKE_IDS[0]
    plan.write_text(f"kill {bad}")
    with pytest.raises(JobsFailed) as err:
        _flaky_run(out, plan, ray_options=RayOptions(max_retries=1))
    assert list(err.value.failed) == [bad] and "worker" in err.value.failed[bad]
    assert "after up to 2 attempts" in str(err.value)
    assert _attempts(plan).count(bad) == 2
    assert all(store.is_finished(out, c) for c in FAKE_IDS if c != bad)


def test_address_with_the_local_backend_is_a_usage_error(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "fake", "--preset", "smoke", "--out", str(out), "--address", "127.0.0.1:6379"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("innerlab: error: address: only with --backend ray"), err
    assert not out.exists()
    with pytest.raises(ConfigError) as config_error:
        run_experiment(fake_experiment.EXPERIMENT, FAKE_SMOKE, (0,), out, progress=False,
                       ray_options=RayOptions(address="127.0.0.1:6379"))
    assert config_error.value.field == "address" and not out.exists()


def test_unreachable_address_is_a_quick_clear_error(tmp_path):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = tmp_path / "run"
    start = time.monotonic()
    # A fresh process: this one may already have joined the test cluster.
    done = subprocess.run([sys.executable, "-m", "innerlab", "run", "side-channels", "--preset", "smoke",
                           "--out", str(out), "--backend", "ray", "--address", f"127.0.0.1:{port}"],
                          capture_output=True, text=True, timeout=60)
    assert time.monotonic() - start < 30
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"innerlab: error: address: cannot reach a Ray cluster at 127.0.0.1:{port}")
    assert len(done.stderr.splitlines()) == 1 and not out.exists()


def test_missing_ray_is_a_clear_error_and_writes_nothing(tmp_path, monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    out = tmp_path / "run"
    assert main(["run", "fake", "--preset", "smoke", "--out", str(out), "--backend", "ray"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("innerlab: error: backend: the ray backend needs Ray")
    assert "pip install 'innerlab[ray]'" in err and len(err.splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("options, field", [
    (RayOptions(cpus_per_job=0), "cpus_per_job"),
    (RayOptions(max_retries=-1), "max_retries"),
    (RayOptions(address="http://head:8265"), "address"),
    (RayOptions(address="head"), "address"),
])
def test_bad_ray_options_are_config_errors(options, field, tmp_path):
    with pytest.raises(ConfigError) as err:
        run_experiment(fake_experiment.EXPERIMENT, FAKE_SMOKE, (0,), tmp_path / "run", backend="ray",
                       progress=False, ray_options=options)
    assert err.value.field == field
    assert not (tmp_path / "run").exists()
