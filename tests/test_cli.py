"""The command line: list, help, run and report on a fake experiment, and one clear line
(exit 2, nothing written) for each kind of bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest


import fake_experiment  # noqa: E402

from innerlab.cli import main, parse_value  # noqa: E402

SRC = Path(__file__).parents[1] / "src"


@pytest.fixture(autouse=True)
def fake(monkeypatch):
    fake_experiment.register(monkeypatch)
    fake_experiment.reset()
    yield fake_experiment.EXPERIMENT
    fake_experiment.reset()


def _snapshot(directory: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(directory)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in directory.rglob("*") if p.is_file()}


def test_list_is_fast_and_imports_no_jax():
    code = ("import sys; from innerlab.cli import main; assert main(['list']) == 0; "
            "assert main(['--help']) == 0; assert main(['run', 'side-channels', '--help']) == 0; "
            "assert 'jax' not in sys.modules, 'innerlab list/--help imported jax'")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    assert "side-channels" in out.stdout and "presets: smoke, quick, paper" in out.stdout


def test_python_dash_m_innerlab_list():
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run([sys.executable, "-m", "innerlab", "list"], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("side-channels\n") and "Does an agent that sees its reward" in out.stdout


def test_list_shows_registered_experiments(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "side-channels" in out and "fake\n    Does the fake experiment run?\n    presets: smoke, quick, paper" in out


def test_help(capsys):
    assert main(["--help"]) == 0
    assert "innerlab" in capsys.readouterr().out
    assert main([]) == 0
    assert main(["run", "--help"]) == 0
    assert "--resume" in capsys.readouterr().out
    assert main(["report", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: innerlab report")
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("innerlab 0.")


def test_run_help_lists_fields_with_their_docstrings(capsys):
    assert main(["run", "side-channels", "--preset", "smoke", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--total_steps INT  = 4096" in out and "Fractions of training episodes" in out
    assert main(["run", "fake", "--preset", "paper", "-h"]) == 0
    out = capsys.readouterr().out
    assert "--values FLOAT,...  = 0.0,0.25,0.5,0.75,1.0" in out and "--noisy true|false  = true" in out
    assert "Levels to sweep" in out


def test_run_then_report(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["run", "fake", "--preset", "smoke", "--out", str(out), "--values", "0,0.5", "--modes", "b",
            "--scale=2", "--noisy", "no", "--label", "hello world", "--seeds", "3", "--seed-offset", "4"]
    assert main(args) == 0
    assert f"report: {out / 'report.md'}" in capsys.readouterr().out
    record = json.loads((out / "config.json").read_text())
    assert record["seeds"] == [4, 5, 6]
    assert record["config"] == {"num_seeds": 3, "seed_offset": 4, "values": [0.0, 0.5], "modes": ["b"],
                                "scale": 2.0, "noisy": False, "label": "hello world", "fail_on": ""}
    assert record["command"] == ("innerlab run fake --preset smoke --out " + str(out) + " --values 0,0.5 --modes b "
                                 "--scale=2 --noisy no --label 'hello world' --seeds 3 --seed-offset 4")
    rows = pd.read_parquet(out / "metrics.parquet")
    assert set(rows.condition) == {"mode-b_level-0.0", "mode-b_level-0.5"} and set(rows.seed) == {4, 5, 6}

    md = (out / "report.md").read_text()
    (out / "report.md").unlink()
    (out / "report.html").unlink()
    (out / "figures" / "scores.png").unlink()
    fake_experiment.CALLS.clear()
    assert main(["report", str(out)]) == 0
    assert fake_experiment.CALLS == []  # no training
    assert (out / "report.md").read_text() == md
    assert "data:image/png;base64," in (out / "report.html").read_text()
    assert (out / "figures" / "scores.png").is_file()


def test_default_out_dir_and_recorded_command(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "fake", "--preset", "smoke"]) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert run_dir.name.startswith("fake-smoke-") and len(run_dir.name) == len("fake-smoke-20250101-120000")
    record = json.loads((run_dir / "config.json").read_text())
    assert record["command"] == f"innerlab run fake --preset smoke --out runs/{run_dir.name}"
    assert record["seeds"] == [0, 1]


def test_resume_through_the_cli(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "fake", "--preset", "smoke", "--out", str(out)]) == 0
    fake_experiment.CALLS.clear()
    assert main(["run", "fake", "--preset", "smoke", "--out", str(out), "--resume"]) == 0
    assert fake_experiment.CALLS == []


@pytest.mark.parametrize("args,field", [
    (["run", "no-such-experiment"], "experiment"),
    (["run"], "experiment"),
    (["run", "fake", "--preset", "huge"], "preset"),
    (["run", "fake", "--preset"], "preset"),
    (["run", "fake", "--bogus", "1"], "bogus"),
    (["run", "fake", "--num_seeds", "many"], "num_seeds"),
    (["run", "fake", "--num_seeds", "0"], "num_seeds"),
    (["run", "fake", "--scale", "abc"], "scale"),
    (["run", "fake", "--scale", "nan"], "scale"),
    (["run", "fake", "--noisy", "maybe"], "noisy"),
    (["run", "fake", "--values", "0,x"], "values"),
    (["run", "fake", "--values", "0,1.5"], "values"),
    (["run", "fake", "--modes", "a,c"], "modes"),
    (["run", "fake", "--seeds", "0"], "seeds"),
    (["run", "fake", "--seeds", "two"], "seeds"),
    (["run", "fake", "--seed_offset", "-1"], "seed_offset"),
    (["run", "fake", "--address", "h:1"], "address"),
    (["run", "fake", "--backend", "spark"], "backend"),
    (["run", "fake", "--resume=yes"], "resume"),
    (["run", "fake", "surplus"], "argument"),
    (["frobnicate"], "command"),
    (["list", "extra"], "argument"),
    (["report"], "run_dir"),
    (["report", "does/not/exist"], "run_dir"),
    (["report", "a", "b"], "argument"),
    (["run", "side-channels", "--preset", "smoke", "--total_steps", "many"], "total_steps"),
    (["run", "side-channels", "--preset", "smoke", "--p", "0,1.5"], "p"),
    (["run", "side-channels", "--preset", "smoke", "--channel", "prev,future"], "channel"),
    (["run", "side-channels", "--preset", "smoke", "--num_envs", "0"], "num_envs"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(args, field, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a default run directory would appear here
    assert main(args) == 2
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"innerlab: error: {field}: "), err
    assert len(err[0]) > len(f"innerlab: error: {field}: ") + 5  # says what is allowed
    assert captured.out == ""
    assert list(tmp_path.iterdir()) == []
    assert fake_experiment.CALLS == []


def test_existing_run_dir_needs_resume(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "fake", "--preset", "smoke", "--out", str(out)]) == 0
    capsys.readouterr()
    before = _snapshot(out)
    assert main(["run", "fake", "--preset", "smoke", "--out", str(out)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("innerlab: error: out: ") and "--resume" in err[0]
    assert _snapshot(out) == before


def test_resume_with_different_config_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "fake", "--preset", "smoke", "--out", str(out)]) == 0
    capsys.readouterr()
    before = _snapshot(out)
    assert main(["run", "fake", "--preset", "smoke", "--out", str(out), "--resume", "--scale", "3"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("innerlab: error: resume: ") and "differs" in err[0]
    assert "scale" in err[0]
    assert _snapshot(out) == before


def test_non_empty_non_run_out_dir_is_refused(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["run", "fake", "--preset", "smoke", "--out", str(tmp_path), "--resume"]) == 2
    assert capsys.readouterr().err.startswith("innerlab: error: out: ")
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("content", [None, "{not json", '{"experiment": "fake"}',
                                     '{"experiment": "fake", "config": {}, "seeds": [0]}'])
def test_report_on_a_non_run_directory(tmp_path, capsys, content):
    if content is not None:
        (tmp_path / "config.json").write_text(content)
    before = _snapshot(tmp_path)
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("innerlab: error: run_dir: "), err
    assert _snapshot(tmp_path) == before


def test_parse_value_by_annotation():
    assert parse_value("n", "1e3", int) == 1000
    assert parse_value("x", "-0.5", float) == -0.5
    assert parse_value("b", "YES", bool) is True and parse_value("b", "0", bool) is False
    assert parse_value("t", "a, b", tuple[str, ...]) == ("a", "b")
    assert parse_value("t", "", tuple[float, ...]) == ()
    assert parse_value("t", "1,2", tuple[int, int]) == (1, 2)
    assert parse_value("o", "none", int | None) is None and parse_value("o", "3", int | None) == 3
    with pytest.raises(Exception, match="^t: expected 2 comma-separated values"):
        parse_value("t", "1", tuple[int, int])
    with pytest.raises(Exception, match="^n: expected an integer"):
        parse_value("n", "1.5", int)
