"""The command line: listing, help, and one clear line (exit 2, nothing written) for bad input."""

import subprocess
import sys

import pytest

from innerlab.cli import main


def test_list_is_fast_and_imports_no_jax():
    code = ("import sys; from innerlab.cli import main; main(['list']); "
            "assert 'jax' not in sys.modules, 'innerlab list imported jax'")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "side-channels" in out.stdout and "presets: smoke, quick, paper" in out.stdout


def test_run_help_lists_fields(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "side-channels", "--preset", "smoke", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "total-steps" in out or "total_steps" in out
    assert "Fractions of training episodes" in out


@pytest.mark.parametrize("args,field", [
    (["run", "no-such-experiment"], "experiment"),
    (["run", "side-channels", "--preset", "huge"], "preset"),
    (["run", "side-channels", "--preset", "smoke", "--bogus", "1"], "bogus"),
    (["run", "side-channels", "--preset", "smoke", "--total_steps", "many"], "total_steps"),
    (["run", "side-channels", "--preset", "smoke", "--p", "0,1.5"], "p"),
    (["run", "side-channels", "--preset", "smoke", "--channel", "prev,future"], "channel"),
    (["run", "side-channels", "--preset", "smoke", "--num_envs", "0"], "num_envs"),
    (["run", "side-channels", "--preset", "smoke", "--seeds", "0"], "seeds"),
    (["run", "side-channels", "--preset", "smoke", "--backend", "ray"], "backend"),
    (["report", "does/not/exist"], "run_dir"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(args, field, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main([*args, "--out", str(tmp_path / "out")] if args[0] == "run" else args)
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"innerlab: error: {field}:"), err
    assert "Traceback" not in err[0]
    assert list(tmp_path.iterdir()) == []


def test_existing_run_dir_needs_resume(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "config.json").write_text("{}")
    assert main(["run", "side-channels", "--preset", "smoke", "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith("innerlab: error: out:")
    assert [p.name for p in out.iterdir()] == ["config.json"]


def test_report_on_a_non_run_directory(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "run_dir" in capsys.readouterr().err
