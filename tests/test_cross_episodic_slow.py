"""Slow tier: the cross-episodic controls and the unit test at the quick preset's scale.

`make test-slow` runs it. The fast tier checks that the pipeline runs; this checks that the
measurement separates the regimes: the myopic learner defects, PBT keeps cooperation alive
above it, environment swapping takes it away, and PPO finds the channel when it pays within
the episode.
"""

import pandas as pd
import pytest

from innerlab.experiments import get
from innerlab.experiments.base import Condition, condition_id
from innerlab.report.stats import bootstrap_ci

pytestmark = pytest.mark.slow


def run(experiment, config, **fields):
    condition = Condition(condition_id(fields), fields)
    return [{**fields, **row} for row in experiment.run_job(config, condition, tuple(range(config.num_seeds)))]


def final(rows, regime, metric="exploitation_rate"):
    sel = rows[(rows.regime == regime) & (rows.stage == "final") & (rows.metric == metric)]
    return bootstrap_ci(sel.value.to_numpy())


def test_unit_test_regimes_separate():
    experiment = get("cross-episodic")
    config = experiment.presets["quick"]
    rows = []
    for regime, interval in (("plain", 0), ("pbt", config.interval), ("pbt_swap", config.interval)):
        rows += run(experiment, config, env="pd", regime=regime, pay="next", view="visible", interval=interval,
                    population=config.population)
    rows = pd.DataFrame(rows)
    plain, pbt, swap = final(rows, "plain"), final(rows, "pbt"), final(rows, "pbt_swap")
    assert plain[0] <= 0.1, plain
    assert pbt[1] > plain[2], (pbt, plain)
    assert swap[2] < pbt[1], (swap, pbt)


def test_invest_controls_pass():
    experiment = get("cross-episodic")
    config = experiment.presets["quick"]
    base = dict(env="invest", view="visible", interval=0)
    rows = run(experiment, config, regime="plain", pay="same", population=config.population, **base)
    rows += run(experiment, config, regime="planner_crossing", pay="next", population=1, **base)
    rows += run(experiment, config, regime="planner_bounded", pay="next", population=1, **base)
    rows += run(experiment, config, regime="plain", pay="next", population=config.population, **base)
    rows = pd.DataFrame(rows)
    checks = experiment.analyze(config, rows).checks
    assert len(checks) == 3
    assert all(c.passed is not False for c in checks), checks
    myopic = final(rows[rows.pay == "next"], "plain")
    assert myopic[0] <= 0.1, myopic
