"""The run store, the local runner (resume after a failure or a SIGKILL) and the report renderer,
on a tiny numpy-only fake experiment (tests/fake_experiment.py)."""

import base64
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest


import fake_experiment  # noqa: E402
from fake_experiment import EXPERIMENT as FAKE  # noqa: E402

from innerlab.experiments.base import ConfigError, config_to_dict  # noqa: E402
from innerlab.report.document import Figure, Report, Section  # noqa: E402
from innerlab.report.render import markdown_table, markdown_to_html, write_report  # noqa: E402
from innerlab.runner import execute_job, load_run, run_experiment  # noqa: E402
from innerlab.runner import store  # noqa: E402

SRC = Path(__file__).parents[1] / "src"
COLUMNS = ["experiment", "condition", "mode", "level", "perturbation", "seed", "metric", "value"]


@pytest.fixture(autouse=True)
def fake(monkeypatch):
    fake_experiment.register(monkeypatch)
    fake_experiment.reset()
    yield FAKE
    fake_experiment.reset()


def _run(out, config=None, seeds=(0, 1), resume=False, **kwargs):
    config = config or FAKE.presets["smoke"]
    return run_experiment(FAKE, config, seeds, out, resume=resume, command=f"innerlab run fake --out {out}",
                          preset="smoke", progress=False, **kwargs)


def _files(directory: Path) -> dict[str, int]:
    return {str(p.relative_to(directory)): p.stat().st_mtime_ns for p in directory.rglob("*") if p.is_file()}


def test_store_round_trip(tmp_path):
    config = FAKE.presets["smoke"]
    out = _run(tmp_path / "run", config, seeds=(0, 1))
    record = json.loads((out / "config.json").read_text())
    assert set(record) == {"experiment", "preset", "config", "seeds", "versions", "command", "created"}
    assert record["experiment"] == "fake" and record["preset"] == "smoke" and record["seeds"] == [0, 1]
    assert record["config"] == json.loads(json.dumps(config_to_dict(config)))
    assert record["command"] == f"innerlab run fake --out {out}"
    assert set(record["versions"]) == {"python", *store.VERSIONED}
    assert record["versions"]["pandas"] == pd.__version__
    assert all(v is None or isinstance(v, str) for v in record["versions"].values())
    assert "HOME" not in (out / "config.json").read_text()  # no environment in the record

    experiment, loaded, seeds, rows = load_run(out)
    assert experiment is FAKE and loaded == config and seeds == (0, 1)
    pd.testing.assert_frame_equal(rows, pd.read_parquet(out / "metrics.parquet"))


def test_job_files_are_written_whole_with_tidy_rows(tmp_path):
    out = _run(tmp_path / "run")
    conditions = FAKE.conditions(FAKE.presets["smoke"])
    assert sorted(p.name for p in (out / "jobs").iterdir()) == sorted(f"{c.id}.json" for c in conditions)
    assert not [p for p in out.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")]
    job = json.loads((out / "jobs" / f"{conditions[1].id}.json").read_text())
    assert job["condition"] == conditions[1].id and job["fields"] == conditions[1].fields
    assert job["seeds"] == [0, 1] and len(job["rows"]) == 2 * 3
    assert job["rows"][0] == {"experiment": "fake", "condition": conditions[1].id, "mode": "a", "level": 1.0,
                              "perturbation": "none", "seed": 0, "metric": "score",
                              "value": job["rows"][0]["value"]}
    assert isinstance(job["rows"][0]["value"], float)


def test_metrics_columns_and_row_order(tmp_path):
    out = _run(tmp_path / "run")
    rows = pd.read_parquet(out / "metrics.parquet")
    assert list(rows.columns) == COLUMNS
    assert rows.seed.dtype == "int64" and rows.value.dtype == "float64"
    conditions = [c.id for c in FAKE.conditions(FAKE.presets["smoke"])]
    assert list(dict.fromkeys(rows.condition)) == conditions  # condition order ...
    first = rows[rows.condition == conditions[0]]
    assert list(first.metric) == ["score", "score", "count"] * 2  # ... then the job's own order
    assert list(first.seed) == [0, 0, 0, 1, 1, 1]


def test_execute_job_returns_plain_rows_with_fields():
    condition = FAKE.conditions(FAKE.presets["smoke"])[0]
    rows = execute_job(FAKE, FAKE.presets["smoke"], condition, (3,))
    assert [r["seed"] for r in rows] == [3, 3, 3]
    assert all(r["condition"] == condition.id and r["mode"] == "a" and type(r["value"]) is float for r in rows)
    json.dumps(rows)


def test_same_run_twice_gives_identical_metrics(tmp_path):
    first, second = _run(tmp_path / "one"), _run(tmp_path / "two")
    pd.testing.assert_frame_equal(pd.read_parquet(first / "metrics.parquet"), pd.read_parquet(second / "metrics.parquet"))
    # pyarrow writes no timestamps: identical rows give identical bytes.
    assert (first / "metrics.parquet").read_bytes() == (second / "metrics.parquet").read_bytes()
    assert (first / "report.md").read_text() == (second / "report.md").read_text().replace("two", "one")


def test_resume_after_a_failed_job_reruns_only_unfinished_jobs(tmp_path, capsys):
    config = FAKE.presets["quick"]
    conditions = [c.id for c in FAKE.conditions(config)]
    failing = dataclass_replace(config, fail_on=conditions[2])
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="simulated failure"):
        _run(out, failing, seeds=(0, 1, 2))
    assert "continue with --resume" in capsys.readouterr().err
    finished = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in (out / "jobs").iterdir()}
    assert sorted(finished) == sorted(f"{c}.json" for c in conditions[:2])
    assert not (out / "metrics.parquet").exists()

    fake_experiment.CALLS.clear()
    _run(out, failing, seeds=(0, 1, 2), resume=True)
    assert fake_experiment.CALLS == conditions[2:]  # the finished jobs were not re-run
    for name, (mtime, content) in finished.items():
        assert (out / "jobs" / name).stat().st_mtime_ns == mtime and (out / "jobs" / name).read_bytes() == content

    clean = _run(tmp_path / "clean", config, seeds=(0, 1, 2))
    assert (out / "metrics.parquet").read_bytes() == (clean / "metrics.parquet").read_bytes()
    assert load_run(out)[3].equals(load_run(clean)[3])


def test_resume_of_a_finished_run_trains_nothing(tmp_path):
    out = _run(tmp_path / "run")
    before = (out / "metrics.parquet").read_bytes()
    fake_experiment.CALLS.clear()
    _run(out, resume=True)
    assert fake_experiment.CALLS == [] and (out / "metrics.parquet").read_bytes() == before


def test_resume_into_a_new_directory_starts_the_run(tmp_path):
    out = _run(tmp_path / "fresh", resume=True)
    assert (out / "metrics.parquet").is_file()


@pytest.mark.parametrize("change", [{"config": {"scale": 2.0}}, {"seeds": (0, 1, 2)}])
def test_resume_with_a_different_config_or_seeds_is_refused(tmp_path, change):
    out = _run(tmp_path / "run")
    before = _files(out)
    config = dataclass_replace(FAKE.presets["smoke"], **change.get("config", {}))
    with pytest.raises(ConfigError) as err:
        _run(out, config, seeds=change.get("seeds", (0, 1)), resume=True)
    assert err.value.field == "resume" and "differs" in str(err.value)
    assert _files(out) == before


def test_existing_run_without_resume_is_refused(tmp_path):
    out = _run(tmp_path / "run")
    before = _files(out)
    with pytest.raises(ConfigError) as err:
        _run(out)
    assert err.value.field == "out" and "--resume" in str(err.value)
    assert _files(out) == before


def test_unknown_backend_is_a_clear_error_and_writes_nothing(tmp_path):
    with pytest.raises(ConfigError) as err:
        _run(tmp_path / "run", backend="slurm")
    assert str(err.value) == "backend: unknown backend 'slurm'; allowed: local, ray"
    assert list(tmp_path.iterdir()) == []


def test_invalid_config_writes_nothing(tmp_path):
    with pytest.raises(ConfigError) as err:
        _run(tmp_path / "run", dataclass_replace(FAKE.presets["smoke"], values=(0.5, 2.0)))
    assert err.value.field == "values"
    assert list(tmp_path.iterdir()) == []


def test_progress_display_on_and_off_a_terminal(tmp_path, capsys, monkeypatch):
    run_experiment(FAKE, FAKE.presets["smoke"], (0,), tmp_path / "plain", command="c", preset="smoke")
    captured = capsys.readouterr()
    assert captured.err.count("done in") == 4 and "report.html" in captured.out
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich treats stderr as a terminal: the bars path
    run_experiment(FAKE, FAKE.presets["smoke"], (0,), tmp_path / "bars", command="c", preset="smoke")
    assert "jobs" in capsys.readouterr().err


def test_sigkill_loses_at_most_the_job_in_flight(tmp_path):
    config = FAKE.presets["quick"]
    conditions = [c.id for c in FAKE.conditions(config)]
    out = tmp_path / "killed"
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from innerlab.experiments import base
        base._REGISTRY["fake"] = "fake_experiment:EXPERIMENT"
        from innerlab.cli import main
        sys.exit(main(["run", "fake", "--preset", "quick", "--out", {str(out)!r}]))
    """)
    env = {**os.environ, "FAKE_KILL_ON": conditions[3], "PYTHONPATH": str(SRC)}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    jobs = out / "jobs"
    finished = {p.name: p.stat().st_mtime_ns for p in jobs.iterdir()}
    assert sorted(finished) == sorted(f"{c}.json" for c in conditions[:3])
    assert not (out / "metrics.parquet").exists()

    from innerlab.cli import main

    assert main(["run", "fake", "--preset", "quick", "--out", str(out), "--resume"]) == 0
    assert fake_experiment.CALLS == conditions[3:]
    assert {name: (jobs / name).stat().st_mtime_ns for name in finished} == finished
    clean = _run(tmp_path / "clean", config, seeds=(0, 1, 2))
    assert (out / "metrics.parquet").read_bytes() == (clean / "metrics.parquet").read_bytes()


# --- the renderer ---------------------------------------------------------------------------------

def test_report_files_with_embedded_figures(tmp_path):
    import matplotlib.pyplot as plt

    out = _run(tmp_path / "run")
    md = (out / "report.md").read_text()
    assert md.startswith("# Fake experiment\n")
    assert "**Question.** Does the fake experiment run?" in md
    assert "| mode | level | perturbation | mean | count |" in md
    assert "![Mean score by level <and> mode.](figures/scores.png)" in md
    assert md.rstrip().endswith(f"## Reproduce\n\n```\ninnerlab run fake --out {out}\n```")
    png = (out / "figures" / "scores.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    page = (out / "report.html").read_text()
    assert f'src="data:image/png;base64,{base64.b64encode(png).decode()}"' in page
    assert "<table" in page and "<strong>2</strong> seeds" in page and "<li><code>mode</code> a adds 0</li>" in page
    assert "Mean score by level &lt;and&gt; mode." in page and "<and>" not in page
    assert f"innerlab run fake --out {out}" in page
    assert plt.get_fignums() == []  # every figure was closed


def test_report_rerender_drops_figures_it_no_longer_has(tmp_path):
    import matplotlib.pyplot as plt

    def report(*names):
        return Report("T", "Q?", "S", [Section("A", figures=[Figure(n, plt.figure(), n) for n in names])], "cmd")

    write_report(report("one", "two"), tmp_path)
    write_report(report("two"), tmp_path)
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["two.png"]
    with pytest.raises(ValueError, match="safe file name"):
        write_report(report("../evil"), tmp_path)
    plt.close("all")


def test_markdown_to_html_through_markdown_it():
    text = ("# Head\nA **bold** and `a**b**<c>` line\ncontinued.\n\nIntro:\n- one *em*\n- two\n  wrapped\n\n"
            "1. first\n2. second\n\n```\nx < y\n```\n[link](https://example.org/a?b=1&c=2)")
    assert markdown_to_html(text) == (
        "<h1>Head</h1>\n"
        "<p>A <strong>bold</strong> and <code>a**b**&lt;c&gt;</code> line\ncontinued.</p>\n"
        "<p>Intro:</p>\n<ul>\n<li>one <em>em</em></li>\n<li>two\nwrapped</li>\n</ul>\n"
        "<ol>\n<li>first</li>\n<li>second</li>\n</ol>\n"
        "<pre><code>x &lt; y\n</code></pre>\n"
        '<p><a href="https://example.org/a?b=1&amp;c=2">link</a></p>')
    assert markdown_to_html("2 * 3 * 4 <script>") == "<p>2 * 3 * 4 &lt;script&gt;</p>"


def test_markdown_table():
    frame = pd.DataFrame({"name": ["a|b", "c"], "x": [0.123456, 12345.6], "n": [1, 2]})
    assert markdown_table(frame) == ("| name | x | n |\n| --- | --- | --- |\n"
                                     "| a\\|b | 0.1235 | 1 |\n| c | 12346 | 2 |")


def dataclass_replace(config, **changes):
    import dataclasses

    return dataclasses.replace(config, **changes)
