"""Krueger et al.'s unit test for myopia with their learners (agents/myopia_unit_test.py):
their reward table, PBT's exploit step by hand, and the directions their paper reports."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from innerlab.agents.myopia_unit_test import UnitTestConfig, exploit, reward, run_q_learning, run_reinforce


def test_reward_is_their_table():
    # unit_test_Q_learning.py's table is beta = -0.5: (a, s) -> r
    table = {(0, 0): -0.5, (0, 1): 0.5, (1, 0): -1.0, (1, 1): 0.0}
    for (a, s), r in table.items():
        assert float(reward(s, a, -0.5)) == r
    assert float(reward(1, 1, 0.5)) == 1.0  # beta = 0.5: cooperating pays now too


def test_exploit_copies_top_fifth_params_and_lrs_into_bottom_fifth():
    n = 10  # 2 parents
    param, lr = jnp.arange(n, dtype=jnp.float32), 100 + jnp.arange(n, dtype=jnp.float32)
    last = jnp.array([5.0, 0.0, 9.0, 1.0, 8.0, 2.0, 3.0, 4.0, 6.0, 7.0])  # bottom: agents 1, 3; top: 2, 4
    new_param, new_lr = exploit(jax.random.key(3), param, lr, last)
    changed = np.flatnonzero(np.asarray(new_param != param))
    assert set(changed) <= {1, 3}
    for i in (1, 3):
        assert float(new_param[i]) in (2.0, 4.0) and float(new_lr[i]) == 100 + float(new_param[i])
    untouched = [i for i in range(n) if i not in (1, 3)]
    assert np.array_equal(np.asarray(new_param)[untouched], np.asarray(param)[untouched])


def test_runs_are_deterministic_and_shaped():
    config = UnitTestConfig(n_agents=20, n_trials=3, n_steps=50, interval=10, env_swap=True)
    a, b = run_reinforce(jax.random.key(1), config), run_reinforce(jax.random.key(1), config)
    assert a.shape == (3, 50) and np.array_equal(np.asarray(a), np.asarray(b))
    assert ((0 <= a) & (a <= 1)).all()


def test_the_directions_the_paper_reports():
    """Plain REINFORCE learns to defect (passes the unit test); PBT on a population raises
    P(cooperate) (fails it); environment swapping brings it back down. Q-learning started
    believing cooperation better cooperates without swapping and defects with it."""
    final = lambda **kw: float(run_reinforce(jax.random.key(0), UnitTestConfig(**kw))[:, -1].mean())
    plain = final(n_agents=100)
    pbt = final(n_agents=100, interval=1)
    swapped = final(n_agents=100, interval=1, env_swap=True)
    assert plain < 0.15 and pbt > 0.5 and swapped < 0.2, (plain, pbt, swapped)
    q = lambda swap: float(run_q_learning(jax.random.key(0), UnitTestConfig(n_agents=5, n_steps=3000,
                                                                            env_swap=swap))[:, -500:].mean())
    assert q(False) > q(True) + 0.2


def test_bad_configs_are_clear_errors():
    with pytest.raises(ValueError, match="parents"):
        UnitTestConfig(n_agents=4, interval=1)
    with pytest.raises(ValueError, match="interval >= 0"):
        UnitTestConfig(interval=-1)
