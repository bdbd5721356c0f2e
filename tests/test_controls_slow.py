"""Slow tier (`make test-slow`): every registered experiment's quick preset, end to end, must
pass every one of its controls. A failing control means the measurement is broken at the scale
researchers run first: fix the training, never the threshold.

On the 2-core CPU this takes about an hour for the five experiments (see README). Set
INNERLAB_SLOW_RUNS=DIR to keep the run directories (DIR/<experiment>) for reading, and to
resume them if the tier is killed part-way.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import seeds_of
from innerlab.experiments import base
from innerlab.runner.local import run_experiment
from innerlab.runner.store import read_metrics

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", base.names())
def test_quick_preset_passes_every_control(name, tmp_path):
    experiment = base.get(name)
    config = experiment.preset("quick")
    out = Path(os.environ.get("INNERLAB_SLOW_RUNS") or tmp_path) / name
    run_experiment(experiment, config, seeds_of(config), out, resume=True, preset="quick", progress=False,
                   command=f"innerlab run {name} --preset quick --out {out} --resume")
    report = experiment.analyze(config, read_metrics(out))
    assert report.checks, f"{name}: its report has no controls"
    failed = [(c.name, c.criterion, c.measured) for c in report.checks if c.passed is False]
    assert not failed, f"{name}: controls FAIL at the quick preset: {failed}"
