"""A tiny deterministic numpy-only experiment for runner and CLI tests (no jax, milliseconds).

Tests register it as "fake" with `register(monkeypatch)`. Conditions are mode x level; a job
returns, per seed, a `score` (level + seeded noise) under two perturbations and a `count`.
`CALLS` logs every job run in this process; `fail_on` makes the named job raise the first
time it runs in this process (a transient failure, so a resume with the same config
succeeds); the environment variable FAKE_KILL_ON makes the named job SIGKILL its own process, and
FAKE_STALL_ON makes it hang without using CPU, once (FAKE_STALL_MARK names a marker file).
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from innerlab.experiments.base import Condition, ConfigError, Experiment, condition_id  # noqa: E402
from innerlab.report.document import Figure, Report, Section  # noqa: E402

CALLS: list[str] = []
_FAILED: set[str] = set()
MODES = ("a", "b")


@dataclass(frozen=True)
class Config:
    num_seeds: int = 3
    """Seeds per condition."""
    seed_offset: int = 0
    """Seeds are seed_offset, seed_offset + 1, ..."""
    values: tuple[float, ...] = (0.0, 0.5, 1.0)
    """Levels to sweep, each in [0, 1]."""
    modes: tuple[str, ...] = MODES
    """Modes to sweep: a | b."""
    scale: float = 1.0
    """Multiplies every score."""
    noisy: bool = True
    """Add seeded noise to scores."""
    label: str = "x"
    """Free text (not used)."""
    fail_on: str = ""
    """Condition id whose job raises the first time it runs in a process."""


def register(monkeypatch) -> None:
    """Make "fake" a registered experiment for the duration of a test."""
    from innerlab.experiments import base

    monkeypatch.setitem(base._REGISTRY, "fake", "fake_experiment:EXPERIMENT")


def reset() -> None:
    CALLS.clear()
    _FAILED.clear()


class FakeExperiment(Experiment):
    name = "fake"
    question = "Does the fake experiment run?"
    Config = Config
    swept_fields = ("mode", "level")
    presets = {
        "smoke": Config(num_seeds=2, values=(0.0, 1.0)),
        "quick": Config(),
        "paper": Config(num_seeds=8, values=(0.0, 0.25, 0.5, 0.75, 1.0)),
    }

    def validate(self, config: Config) -> None:
        if config.num_seeds < 1:
            raise ConfigError("num_seeds", f"{config.num_seeds} is out of range; allowed: >= 1")
        if config.seed_offset < 0:
            raise ConfigError("seed_offset", f"{config.seed_offset} is out of range; allowed: >= 0")
        for v in config.values:
            if not 0.0 <= v <= 1.0:
                raise ConfigError("values", f"{v} is out of range; allowed: 0 <= values <= 1")
        if not config.values:
            raise ConfigError("values", "must list at least one value in [0, 1]")
        for m in config.modes:
            if m not in MODES:
                raise ConfigError("modes", f"unknown value {m!r}; allowed: {', '.join(MODES)}")

    def conditions(self, config: Config) -> list[Condition]:
        out = []
        for mode in config.modes:
            for level in config.values:
                fields = {"mode": mode, "level": float(level)}
                out.append(Condition(condition_id(fields), fields))
        return out

    def run_job(self, config, condition, seeds, progress=None):
        CALLS.append(condition.id)
        if condition.id == os.environ.get("FAKE_KILL_ON"):
            os.kill(os.getpid(), signal.SIGKILL)
        mark = os.environ.get("FAKE_STALL_MARK")
        if condition.id == os.environ.get("FAKE_STALL_ON") and mark and not os.path.exists(mark):
            open(mark, "w").close()  # stall (sleep, using no CPU) the first time only
            time.sleep(120)
        if condition.id == config.fail_on and condition.id not in _FAILED:
            _FAILED.add(condition.id)
            raise RuntimeError(f"simulated failure in {condition.id}")
        rows = []
        offset = {"a": 0.0, "b": 0.5}[condition.fields["mode"]]
        for i, seed in enumerate(seeds):
            rng = np.random.default_rng([seed, MODES.index(condition.fields["mode"]),
                                         int(round(condition.fields["level"] * 1000))])
            for perturbation in ("none", "swap"):
                noise = rng.normal(0, 0.1) if config.noisy else 0.0
                score = config.scale * (condition.fields["level"] + offset + noise)
                rows.append({"perturbation": perturbation, "seed": seed, "metric": "score",
                             "value": np.float32(score)})  # numpy scalars, as jax jobs return
            rows.append({"perturbation": "none", "seed": np.int64(seed), "metric": "count", "value": i + 1})
            if progress is not None:
                progress((i + 1) / len(seeds), f"seed {seed}")
        return rows

    def analyze(self, config, rows) -> Report:
        scores = rows[rows.metric == "score"]
        table = (scores.groupby(["mode", "level", "perturbation"], sort=False)["value"]
                 .agg(["mean", "count"]).reset_index())
        fig, ax = plt.subplots(figsize=(4, 3))
        for mode, group in scores[scores.perturbation == "none"].groupby("mode"):
            means = group.groupby("level")["value"].mean()
            ax.plot(means.index, means.values, marker="o", label=mode)
        ax.set_xlabel("level")
        ax.set_ylabel("score")
        ax.legend()
        return Report(
            title="Fake experiment",
            question=self.question,
            setup=f"{len(config.values)} levels x {len(config.modes)} modes; **{config.num_seeds}** seeds.",
            sections=[Section("Scores", text="Mean score by condition:\n\n- `mode` a adds 0\n- `mode` b adds 0.5",
                              tables=[table], figures=[Figure("scores", fig, "Mean score by level <and> mode.")])],
        )


EXPERIMENT = FakeExperiment()
