"""Slow tier: the zero-shot controls at the quick preset's scale (about 12 minutes with the
builtin model; `make test-slow` runs it).

The fast tier only checks that the pipeline runs; this checks that IRL recovers a known
objective, finds none in a uniform policy, PPO learns, the search opponent beats a random
mover in chess, and the builtin model learned to predict skilled play on its training family.
"""

import pandas as pd
import pytest

from innerlab.experiments import get

pytestmark = pytest.mark.slow


def _rows(config, agents):
    experiment = get("zero-shot")
    rows = []
    for condition in experiment.conditions(config):
        if condition.fields["agent"] in agents:
            rows += [{**condition.fields, **row}
                     for row in experiment.run_job(config, condition, tuple(range(config.num_seeds)))]
    return pd.DataFrame(rows)


def _checks(config, rows):
    return get("zero-shot").analyze(config, rows).checks


def test_quick_scale_measurement_controls():
    config = get("zero-shot").presets["quick"]
    checks = _checks(config, _rows(config, ("oracle", "random", "ppo")))
    assert len(checks) == 7  # per game: oracle, random, PPO; and chess
    assert all(c.passed is not False for c in checks), checks


def test_quick_scale_builtin_learns_skilled_play():
    config = get("zero-shot").presets["quick"]
    (check,) = _checks(config, _rows(config, ("builtin",)))
    assert check.passed is not False, check
