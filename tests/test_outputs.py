"""What a job keeps beside its rows (experiments.outputs): checkpoints, TensorBoard curves,
W&B offline; and `innerlab run all` (runner.suite): one directory, resumable, an index page.
On the example experiment (tests/example_experiment), which runs in seconds."""

import json
import numpy as np
import pytest

from innerlab.cli import main
from innerlab.experiments import outputs


def _example(tmp_path, *extra):
    out = tmp_path / "run"
    assert main(["run", "example", "--preset", "smoke", "--out", str(out), *extra]) == 0
    return out


def test_log_chunk_continues_steps_across_chunks_and_seed_groups(tmp_path):
    """Two chunks of seed group (3, 4), then one of group (5,): each seed's steps run 1.. on,
    NaN updates (no episode ended) are left out, extra axes (population) are averaged."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with outputs.job_outputs(tmp_path, "cond", seeds=(3, 4, 5)) as job:
        first = {"episode_return": np.array([[1.0, np.nan], [2.0, 3.0]]),
                 "per_member": np.arange(2 * 2 * 3, dtype=float).reshape(2, 2, 3), "text": np.array(["a", "b"])}
        outputs.log_chunk(first, seeds=(3, 4))
        outputs.log_chunk({"episode_return": np.array([[4.0], [5.0]])}, seeds=(3, 4))
        outputs.log_chunk({"episode_return": np.array([[6.0, 7.0]])}, seeds=(5,))
        assert outputs.current() is job
    assert outputs.current() is None

    def scalars(seed, tag):
        acc = EventAccumulator(str(tmp_path / "tb" / "cond" / f"seed-{seed}"))
        acc.Reload()
        return [(e.step, e.value) for e in acc.Scalars(tag)]

    assert scalars(3, "train/episode_return") == [(1, 1.0), (3, 4.0)]  # update 2 had no episode
    assert scalars(4, "train/episode_return") == [(1, 2.0), (2, 3.0), (3, 5.0)]
    assert scalars(5, "train/episode_return") == [(1, 6.0), (2, 7.0)]
    assert scalars(4, "train/per_member") == [(1, 7.0), (2, 10.0)]  # mean over the last axis


def test_outside_a_job_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    outputs.log_chunk({"x": np.ones((1, 2))})
    assert outputs.save_agents("agent", {"w": np.ones((1, 3))}) is None
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="checkpoint name"):
        outputs.save_agents("../escape", {"w": np.ones((1, 3))})


def test_save_agents_needs_a_seed_axis(tmp_path):
    with outputs.job_outputs(tmp_path, "cond", seeds=(0, 1)):
        with pytest.raises(ValueError, match="leading seed axis of 2"):
            outputs.save_agents("agent", {"w": np.ones((3,))})


def test_example_run_saves_loadable_checkpoints_and_curves(tmp_path):
    import innerlab

    out = _example(tmp_path)
    agent = innerlab.load_agent(out, condition={"gap": 0.4}, seed=1)
    assert agent.kind == "logits" and agent.params["logits"].shape == (4,)
    saved = json.loads((out / "checkpoints" / agent.condition / "agent.json").read_text())
    assert saved["seeds"] == [0, 1] and saved["arms"] == 4
    assert len(list((out / "tb").glob("*/seed-*/events.out.tfevents.*"))) == 2 * len(list((out / "jobs").iterdir()))
    assert outputs.checkpoint_bytes(out) > 0


def test_save_agents_and_log_curves_off(tmp_path):
    import innerlab
    from innerlab.experiments import ConfigError

    out = _example(tmp_path, "--save_agents", "false", "--log_curves", "false")
    assert not (out / "checkpoints").exists() and not (out / "tb").exists()
    with pytest.raises(ConfigError, match="save_agents was off"):
        innerlab.load_agent(out)


def test_track_logs_to_wandb_offline(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    out = _example(tmp_path, "--track")
    runs = list((out / "wandb").glob("wandb/offline-run-*/run-*.wandb"))
    assert len(runs) == len(list((out / "jobs").iterdir())), list((out / "wandb").rglob("*"))[:20]


# --- innerlab run all ------------------------------------------------------------------------------

def test_run_all_writes_one_directory_an_index_and_resumes(tmp_path, capsys):
    out = tmp_path / "all"
    assert main(["run", "all", "--preset", "smoke", "--only", "example", "--out", str(out)]) == 0
    suite = json.loads((out / "suite.json").read_text())
    assert suite["preset"] == "smoke" and suite["experiments"] == ["example"]
    assert (out / "example" / "report.html").is_file() and (out / "example" / "checkpoints").is_dir()
    record = json.loads((out / "example" / "config.json").read_text())
    assert record["command"] == f"innerlab run example --preset smoke --out {out / 'example'}"
    index = (out / "index.md").read_text()
    assert "| example | finished |" in index and "[Full report](example/report.html)" in index
    jobs = [json.loads(p.read_text()) for p in (out / "example" / "jobs").iterdir()]
    assert all(job["seconds"] > 0 for job in jobs)  # each job's wall time, summed on the index
    summary = json.loads((out / "example" / "summary.json").read_text())
    assert summary["checks"] and {c["result"] for c in summary["checks"]} <= {"PASS", "FAIL", "-"}
    (out / "index.md").unlink()
    assert main(["report", str(out)]) == 0  # re-renders the suite's reports and its index
    assert "| example | finished |" in (out / "index.md").read_text()
    _check_index_in_a_browser(out, tables=3)  # the overview; example's controls and its headlines
    # Without --resume the suite is not overwritten.
    assert main(["run", "all", "--preset", "smoke", "--only", "example", "--out", str(out)]) == 2
    assert "already holds a suite; pass --resume" in capsys.readouterr().err
    # A kill mid-way: one job and the metrics gone. --resume redoes just that job.
    jobs = sorted((out / "example" / "jobs").iterdir())
    kept = {p.name: p.stat().st_mtime_ns for p in jobs[1:]}
    jobs[0].unlink()
    (out / "example" / "metrics.parquet").unlink()
    assert main(["run", "all", "--preset", "smoke", "--only", "example", "--out", str(out), "--resume"]) == 0
    assert jobs[0].is_file() and (out / "example" / "metrics.parquet").is_file()
    assert {p.name: p.stat().st_mtime_ns for p in jobs[1:]} == kept


def test_run_all_checks_everything_before_running(tmp_path, capsys):
    out = tmp_path / "all"
    cases = [
        (["--only", "example,nope"], "only: unknown experiment 'nope'"),
        (["--preset", "huge"], "preset: unknown preset 'huge'"),
        (["--only", "example", "--arms", "3", "--lr", "-1"], "lr"),
        (["--only", "example,side-channels", "--arms", "3"], "arms: not a field of side-channels"),
        (["--backend", "ray"], "backend: run all runs its experiments here"),
    ]
    for args, message in cases:
        assert main(["run", "all", "--out", str(out), *args]) == 2, args
        assert message in capsys.readouterr().err, args
    assert not out.exists()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    assert main(["run", "all", "--preset", "smoke", "--only", "example", "--out", str(tmp_path / "other")]) == 2
    assert "holds no `innerlab run all` suite" in capsys.readouterr().err


def _check_index_in_a_browser(out, tables: int) -> None:
    """The index page as a person sees it at 1280 px: its tables there, nothing wider than the
    window, a screenshot taken (skipped, saying so, where no Chromium can be found)."""
    from innerlab.report.browser import check_page, find_chromium

    if find_chromium() is None:
        pytest.skip("no Chromium on this machine (make test installs Debian's chromium where apt-get can)")
    result = check_page(out / "index.html", out / "index.png", width=1280)
    assert result["tables"] == tables and result["broken"] == []
    assert result["scroll_width"] <= 1280, result["wide"]
    assert (out / "index.png").stat().st_size > 1000
