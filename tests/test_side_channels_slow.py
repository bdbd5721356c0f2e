"""Slow tier: the side-channels controls at the quick preset's training scale (about 3 minutes),
on the two conditions they need. (test_controls_slow.py runs every experiment's whole quick
preset; this is the quicker check of the one experiment.)

The fast tier only checks that the pipeline runs; this checks that the measurement can tell an
agent that must follow its channel from one that cannot.
"""

import dataclasses

import pandas as pd
import pytest

from innerlab.experiments import get
from innerlab.experiments.base import Condition, condition_id
from innerlab.experiments.side_channels.report import control_checks

pytestmark = pytest.mark.slow


def test_quick_scale_controls_separate():
    experiment = get("side-channels")
    config = dataclasses.replace(experiment.presets["quick"], perturbation=("none", "swap"))
    rows = []
    for fields in ({"channel": "prev", "p": 1.0, "arch": "lstm", "transform": "identity"},
                   {"channel": "none", "p": 0.0, "arch": "lstm", "transform": "identity"}):
        condition = Condition(condition_id(fields), fields)
        for row in experiment.run_job(config, condition, tuple(range(config.num_seeds))):
            rows.append({**fields, **row})
    checks = control_checks(pd.DataFrame(rows))
    assert len(checks) == 2
    assert all(c.passed for c in checks), checks
