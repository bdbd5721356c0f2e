"""Slow tier: the unidentifiability controls at the quick preset's training scale (about 3
minutes). `make test-slow` runs it.

With 20% of training levels decorrelating the proxies, the agent must learn the true objective
(objective generalisation >= 0.8); trained with the goal always in the maze's top-right corner,
it must go to the corner at test far more often than a random policy does (Langosco et al.'s
Maze I result), while still reaching the goal on training mazes.
"""

import numpy as np
import pandas as pd
import pytest

from innerlab.experiments import get
from innerlab.experiments.base import Condition, condition_id

pytestmark = pytest.mark.slow


def _run(fields):
    experiment = get("unidentifiability")
    config = experiment.presets["quick"]
    seeds = tuple(range(config.num_seeds))
    return pd.DataFrame(experiment.run_job(config, Condition(condition_id(fields), fields), seeds))


def _mean(rows, metric, suite):
    return rows[(rows.metric == metric) & (rows.suite == suite)].value.mean()


def test_diverse_training_generalises_the_objective():
    experiment = get("unidentifiability")
    config = experiment.presets["quick"]
    fields = {"task": "proxies", "arch": config.arch, "width": config.width, "depth": config.depth,
              "diversity": 0.2, "total_steps": config.total_steps}
    rows = _run(fields).assign(**fields)  # the runner adds the condition's fields as columns
    checks = [c for c in experiment.analyze(config, rows).checks if c.passed is not None]
    assert len(checks) == 1, checks
    assert checks[0].passed, checks


def test_corner_trained_maze_agent_goes_to_the_corner():
    config = get("unidentifiability").presets["quick"]
    base = {"task": "maze", "width": config.width, "depth": config.depth, "diversity": 0.0}
    trained = _run({**base, "arch": config.maze_arch, "total_steps": config.maze_total_steps})
    random = _run({**base, "arch": "random", "width": 0, "depth": 0, "total_steps": 0})
    assert _mean(trained, "goal_share", "train") >= 0.7, "it learned to solve training mazes"
    assert _mean(trained, "corner_share", "test") > 2 * _mean(random, "corner_share", "test")
    assert np.isfinite(_mean(trained, "efficiency", "test"))
