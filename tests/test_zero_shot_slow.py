"""Slow tier: the zero-shot controls at the quick preset's scale (about 12 minutes with the
builtin model; `make test-slow` runs it).

The fast tier only checks that the pipeline runs; this checks that IRL recovers a known
objective, finds none in a uniform policy, PPO learns, the search opponent beats a random
mover in chess, and the builtin model learned to predict skilled play on its training family.
"""

import pandas as pd
import pytest

from innerlab.experiments import get
from innerlab.experiments._zero_shot_report import FAIL, control_checks

pytestmark = pytest.mark.slow


def _rows(config, agents):
    experiment = get("zero-shot")
    rows = []
    for condition in experiment.conditions(config):
        if condition.fields["agent"] in agents:
            rows += [{**condition.fields, **row}
                     for row in experiment.run_job(config, condition, tuple(range(config.num_seeds)))]
    return pd.DataFrame(rows)


def test_quick_scale_measurement_controls():
    config = get("zero-shot").presets["quick"]
    rows = _rows(config, ("oracle", "random", "ppo"))
    checks = control_checks(config, rows)
    assert len(checks) == 7  # per game: oracle, random, PPO; and chess
    assert all(c["result"] != FAIL for c in checks), checks


def test_quick_scale_builtin_learns_skilled_play():
    config = get("zero-shot").presets["quick"]
    rows = _rows(config, ("builtin",))
    (check,) = control_checks(config, rows)
    assert check["result"] != FAIL, check
