"""EPIC distance: invariances, hand-worked cases, metric properties, bad input."""

import numpy as np
import pytest

from innerlab.rewards import canonicalize, epic_distance


def random_mdp_reward(rng, states=6, actions=3):
    return rng.normal(size=(states, actions, states))


def shaped(reward, gamma, potential, scale=1.0, shift=0.0):
    """scale * R + gamma * Phi(s') - Phi(s) + shift."""
    return scale * reward + gamma * potential[None, None, :] - potential[:, None, None] + shift


@pytest.mark.parametrize("gamma", [0.0, 0.5, 0.9, 0.99, 1.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_zero_between_a_reward_and_its_shaped_rescaled_copy(gamma, seed):
    rng = np.random.default_rng(seed)
    reward = random_mdp_reward(rng)
    copy = shaped(reward, gamma, rng.normal(size=6) * 5, scale=rng.uniform(0.1, 10), shift=rng.normal() * 3)
    state_dist, action_dist = rng.dirichlet(np.ones(6)), rng.dirichlet(np.ones(3))
    assert epic_distance(reward, copy, gamma) < 1e-6
    assert epic_distance(reward, copy, gamma, state_dist, action_dist) < 1e-6


def test_negation_is_at_distance_one_and_different_rewards_are_clearly_apart():
    rng = np.random.default_rng(0)
    a, b = random_mdp_reward(rng), random_mdp_reward(rng)
    np.testing.assert_allclose(epic_distance(a, -3.0 * a, 0.9), 1.0, atol=1e-9)
    assert 0.5 < epic_distance(a, b, 0.9) < 0.9  # independent random rewards: rho near 0 -> about 0.71


def test_hand_worked_canonical_form():
    # One action, two states, R(s, s') = 2 s + s', gamma = 0.5, uniform distributions:
    # m(x) = E[R(x, S'')] = (0.5, 2.5), E[R(S, S'')] = 1.5, C = R + 0.5 m(s') - m(s) - 0.75.
    reward = np.array([[[0.0, 1.0]], [[2.0, 3.0]]])
    expected = np.array([[[-1.0, 1.0]], [[-1.0, 1.0]]])
    np.testing.assert_allclose(canonicalize(reward, 0.5), expected, atol=1e-12)
    # ... which is 2 * [s' = 1] - 1: R is the "arrive in state 1" reward shaped by Phi(s) = -2 s.
    arrive = np.array([[[0.0, 1.0]], [[0.0, 1.0]]])
    assert epic_distance(reward, arrive, 0.5) < 1e-9


def test_hand_worked_distance():
    # gamma = 0, one action, uniform: C(R)(s, s') = R(s, s') - mean over s'' of R(s, s'').
    # R_A = [s' = 1] -> C_A = [[-.5, .5], [-.5, .5]]; R_C = [s = 0 and s' = 1] -> C_C = [[-.5, .5], [0, 0]].
    # rho = 0.125 / sqrt(0.25 * 0.125) = 1 / sqrt(2), so EPIC = sqrt(1 - 1/sqrt(2)) / sqrt(2).
    arrive = np.array([[[0.0, 1.0]], [[0.0, 1.0]]])
    only_from_zero = np.array([[[0.0, 1.0]], [[0.0, 0.0]]])
    np.testing.assert_allclose(epic_distance(arrive, only_from_zero, 0.0),
                               np.sqrt(1 - 1 / np.sqrt(2)) / np.sqrt(2), atol=1e-12)
    # Coverage on the transitions from state 0 only: there the two canonical rewards agree.
    coverage = np.array([[[1.0, 1.0]], [[0.0, 0.0]]])
    assert epic_distance(arrive, only_from_zero, 0.0, coverage=coverage) < 1e-9


def test_symmetry_and_triangle_inequality():
    rng = np.random.default_rng(3)
    a, b, c = (random_mdp_reward(rng) for _ in range(3))
    ab, bc, ac = epic_distance(a, b, 0.9), epic_distance(b, c, 0.9), epic_distance(a, c, 0.9)
    np.testing.assert_allclose(ab, epic_distance(b, a, 0.9), atol=1e-12)
    assert ac <= ab + bc + 1e-12


def test_a_pure_potential_has_no_direction():
    potential = np.array([0.0, 1.0, 3.0])
    reward = shaped(np.zeros((3, 2, 3)), 0.9, potential)
    assert np.isnan(epic_distance(reward, np.ones((3, 2, 3)) * np.arange(3), 0.9))


@pytest.mark.parametrize("kwargs, message", [
    ({"reward_b": np.zeros((3, 2, 4))}, "shape"),
    ({"gamma": 1.5}, "gamma"),
    ({"state_dist": np.ones(4)}, "state_dist"),
    ({"coverage": -np.ones((3, 2, 3))}, "coverage"),
    ({"reward_b": np.full((3, 2, 3), np.nan)}, "non-finite"),
])
def test_bad_input_is_named(kwargs, message):
    args = {"reward_a": np.zeros((3, 2, 3)), "reward_b": np.ones((3, 2, 3)), "gamma": 0.9, **kwargs}
    with pytest.raises(ValueError, match=message):
        epic_distance(**args)
