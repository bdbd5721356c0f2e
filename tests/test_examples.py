"""The example scripts in examples/ run to the end in their --smoke mode and print what they
promise. Each runs in a subprocess, as a user would run it (it inherits the test session's
XLA flags)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_example(name: str, *args: str, timeout: float = 600) -> str:
    """Run examples/<name> with `args`; its stdout (the test fails with its stderr if it fails)."""
    result = subprocess.run([sys.executable, str(ROOT / "examples" / name), *args], cwd=ROOT, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, f"{name} {' '.join(args)} exited {result.returncode}:\n{result.stderr[-4000:]}"
    return result.stdout


def test_probe_own_agent_runs_all_four_probes():
    out = run_example("probe_own_agent.py", "--smoke")
    for heading in ("1. Side-channel battery", "2. Proxy attribution", "3. IRL coherence", "4. EPIC distances"):
        assert out.count(heading) >= 1, heading
    for column in ("follow_index", "true_return_retention", "chance_share", "heldout_fit"):
        assert column in out
    # The hand-written agents' known answers: the one that ignores the channel never follows
    # it, the one that reads it always does; a shaped, rescaled reward is EPIC-equivalent.
    assert "Follow index under swap: apple seeker 0.00, channel reader 1.00" in out
    assert "itself, shaped and rescaled  0.000" in out


@pytest.mark.xdist_group("side-channels")  # reads the side-channels smoke run its group makes once
def test_probe_loaded_agent_probes_a_checkpoint_of_a_run(smoke_run, capsys):
    # In this process (the example's main), not a subprocess: the suite's side-channels group
    # runs on one worker, and a fresh jax process there costs more than the probes themselves.
    import runpy

    run = smoke_run("side-channels")
    example = runpy.run_path(str(ROOT / "examples" / "probe_loaded_agent.py"))
    assert example["main"]([str(run), "--envs", "8", "--steps", "40"]) == 0
    out = capsys.readouterr().out
    assert "loaded side-channels / channel-prev_p-1.0_arch-lstm_transform-identity, seed 0: a lstm network" in out
    assert "follow_index" in out and "proxy attribution, channel swap" in out
    # The battery's follow index on the experiment's own env is the run's stored one when rolled
    # out the same way; here it must at least be a share.
    battery = out.split("side-channel battery")[1].split("proxy attribution")[0]
    swap = [line.split() for line in battery.splitlines() if line.startswith("swap")][0]
    assert 0.0 <= float(swap[4]) <= 1.0
