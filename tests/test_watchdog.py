"""The stall watchdog (the XLA CPU deadlock's cure), on a fake clock and CPU meter."""

from innerlab.runner.watchdog import StallWatchdog


class Fake:
    def __init__(self):
        self.now, self.cpu, self.stalls = 0.0, 0.0, 0

    def advance(self, seconds, cpu):
        self.now += seconds
        self.cpu += cpu


def _watchdog(fake, window=60.0):
    def on_stall():
        fake.stalls += 1
    return StallWatchdog(on_stall, window_s=window, min_cpu_s=1.0, cpu_time=lambda: fake.cpu,
                         clock=lambda: fake.now)


def test_fires_once_when_a_busy_process_uses_no_cpu():
    fake = Fake()
    dog = _watchdog(fake)
    dog.set_busy(True)
    for _ in range(12):  # checks at 0, 5, ..., 55 s: not yet a full window
        assert not dog.check()
        fake.advance(5.0, 0.0)
    assert dog.check() and fake.stalls == 1  # 60 s with no CPU
    fake.advance(5.0, 0.0)
    assert not dog.check() and fake.stalls == 1  # only once


def test_quiet_while_working_or_idle():
    fake = Fake()
    dog = _watchdog(fake)
    dog.set_busy(True)
    for _ in range(100):  # a busy job: 2 cores' worth of CPU
        fake.advance(5.0, 10.0)
        assert not dog.check()
    dog.set_busy(False)  # between jobs (writing results, reports) no CPU is no stall
    for _ in range(100):
        fake.advance(5.0, 0.0)
        assert not dog.check()
    assert fake.stalls == 0


def test_a_slow_start_then_a_stall_is_caught_and_a_new_job_starts_a_new_window():
    fake = Fake()
    dog = _watchdog(fake)
    dog.set_busy(True)
    for _ in range(20):
        fake.advance(5.0, 8.0)
        dog.check()
    dog.set_busy(True)  # next job
    fake.advance(5.0, 0.0)
    assert not dog.check()
    for _ in range(12):
        fake.advance(5.0, 0.0)
        dog.check()
    assert fake.stalls == 1


def test_the_command_restarts_itself_with_resume_after_a_stall(tmp_path):
    """End to end: a job that hangs without CPU use is abandoned, the command re-executes
    itself with --resume and finishes every job (the hung one redone, the others kept)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import pandas as pd

    here = Path(__file__).parent
    # Register the fake experiment in every interpreter (the restarted one too).
    (tmp_path / "sitecustomize.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(here)!r})\n"
        "from innerlab.experiments import base\n"
        "base._REGISTRY['fake'] = 'fake_experiment:EXPERIMENT'\n")
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(here.parent / "src")]),
           "FAKE_STALL_ON": "mode-a_level-0.5", "FAKE_STALL_MARK": str(tmp_path / "stalled"),
           "INNERLAB_STALL_WINDOW_S": "2"}
    env.pop("INNERLAB_STALL_RESTARTS", None)
    proc = subprocess.run([sys.executable, "-m", "innerlab", "run", "fake", "--preset", "quick", "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=100)
    assert proc.returncode == 0, proc.stderr
    assert "restarting with --resume (1 of 3)" in proc.stderr
    assert (tmp_path / "stalled").exists()
    rows = pd.read_parquet(out / "metrics.parquet")
    assert "mode-a_level-0.5" in set(rows.condition) and rows.condition.nunique() == 6
