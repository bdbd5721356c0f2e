"""Regret of planning with a learned reward (rewards.regret): hand-worked chain MDPs, the horizon,
which changes of reward leave it at 0, brute force on random MDPs, and bad input."""

import itertools

import numpy as np
import pytest

from innerlab.rewards.regret import plan, policy_value, regret

NEAR, ON = 0, 1  # actions of the hand-worked MDP


def chain():
    """States 0 (start), 1, 2 (terminal, absorbing, reward 0); actions NEAR = 0, ON = 1.

        0 --NEAR--> 2   reward 0.5   (a +0.5 object next to the start; collecting it ends the episode)
        0 --ON----> 1   reward 0
        1 --NEAR--> 1   reward 0     (wait)
        1 --ON----> 2   reward 1     (the +1 object, two steps from the start)
        2 --any---> 2   reward 0
    """
    transitions = np.zeros((3, 2, 3))
    transitions[0, NEAR, 2] = transitions[0, ON, 1] = 1.0
    transitions[1, NEAR, 1] = transitions[1, ON, 2] = 1.0
    transitions[2, :, 2] = 1.0
    reward = np.array([[0.5, 0.0], [0.0, 1.0], [0.0, 0.0]])
    return transitions, reward


START = np.array([1.0, 0.0, 0.0])


def test_hand_worked_optimal_plan():
    transitions, reward = chain()
    policy, value = plan(transitions, reward, 3)
    # t = 2 (one step left): V_2 = max_a R = (0.5, 1, 0), NEAR at 0, ON at 1.
    # t = 1: Q(0) = (0.5 + 0, 0 + V_2(1) = 1) -> ON, V_1(0) = 1; Q(1) = (0 + 1, 1 + 0) tie -> NEAR
    #        (lowest index), V_1(1) = 1.
    # t = 0: the same as t = 1: V_0 = (1, 1, 0).
    np.testing.assert_allclose(value, [1.0, 1.0, 0.0])
    np.testing.assert_array_equal(policy[:, 0], [ON, ON, NEAR])
    np.testing.assert_array_equal(policy[:, 1], [NEAR, NEAR, ON])
    np.testing.assert_allclose(policy_value(transitions, reward, policy), value)
    # Horizon 1 only sees the nearby +0.5.
    policy, value = plan(transitions, reward, 1)
    np.testing.assert_allclose(value, [0.5, 1.0, 0.0])
    np.testing.assert_array_equal(policy, [[NEAR, ON, NEAR]])


def test_hand_worked_regret_of_overvaluing_the_nearby_object():
    transitions, true = chain()
    learned = true.copy()
    learned[0, NEAR] = 2.0  # the learned reward prefers the +0.5 next door to the +1 two steps away
    # Horizon 3: the learned plan collects the near object (Q = 2 > 0 + 1), a true 0.5 of the optimal 1.
    assert regret(transitions, true, learned, START, 3) == pytest.approx(0.5)
    # From state 1 both rewards agree (collect the +1): no regret; a 50/50 start halves it.
    assert regret(transitions, true, learned, [0.0, 1.0, 0.0], 3) == pytest.approx(0.0)
    assert regret(transitions, true, learned, [0.5, 0.5, 0.0], 3) == pytest.approx(0.25)
    # Horizon 1: the +1 is out of reach, the optimal plan also collects the +0.5: no regret.
    assert regret(transitions, true, learned, START, 1) == pytest.approx(0.0)


def test_hand_worked_regret_depends_on_the_horizon_the_other_way():
    transitions, true = chain()
    learned = true.copy()
    learned[0, NEAR] = -0.2  # the learned reward thinks the nearby object is bad
    # Horizon 1: the learned plan moves ON (0 > -0.2) and gets 0 instead of the optimal 0.5.
    assert regret(transitions, true, learned, START, 1) == pytest.approx(0.5)
    # Horizon 3: it goes for the +1 (ON, then wait on the tie, then ON): true return 1 = optimal.
    assert regret(transitions, true, learned, START, 3) == pytest.approx(0.0)


def test_a_constant_shift_is_harmless_only_where_the_terminal_state_shifts_too():
    transitions, true = chain()
    # -1 on every (state, action), the terminal's included: every policy loses exactly H, no regret.
    assert regret(transitions, true, true - 1.0, START, 3) == pytest.approx(0.0)
    # -1 on the non-terminal states only (a living cost): ending at once looks best. Horizon 3:
    # NEAR: -0.5 then 0 in the terminal; ON: -1, then from 1 with 2 steps max(-1 + 0, 0 + 0) = 0,
    # total -1 -> the plan takes NEAR (true 0.5), optimal 1: regret 0.5.
    living_cost = true.copy()
    living_cost[:2] -= 1.0
    assert regret(transitions, true, living_cost, START, 3) == pytest.approx(0.5)


def random_mdp(rng, states, actions, deterministic=True):
    if deterministic:
        transitions = np.eye(states)[rng.integers(states, size=(states, actions))]
    else:
        transitions = rng.dirichlet(np.ones(states), size=(states, actions))
    return transitions, rng.normal(size=(states, actions))


def brute_force_best(transitions, reward, start, horizon):
    """max over all open-loop action sequences from `start` of the return under `reward`, and the
    sequence (deterministic transitions: open loop is as good as closed loop)."""
    best, best_seq = -np.inf, None
    for seq in itertools.product(range(transitions.shape[1]), repeat=horizon):
        s, ret = start, 0.0
        for a in seq:
            ret += reward[s, a]
            s = int(transitions[s, a].argmax())
        if ret > best:
            best, best_seq = ret, seq
    return best, best_seq


def sequence_return(transitions, reward, start, seq):
    s, ret = start, 0.0
    for a in seq:
        ret += reward[s, a]
        s = int(transitions[s, a].argmax())
    return ret


@pytest.mark.parametrize("seed", range(4))
def test_matches_brute_force_on_random_deterministic_mdps(seed):
    rng = np.random.default_rng(seed)
    transitions, true = random_mdp(rng, 4, 3)
    learned = rng.normal(size=true.shape)
    horizon = 4
    _, value = plan(transitions, true, horizon)
    for start in range(4):
        best, _ = brute_force_best(transitions, true, start, horizon)
        _, learned_seq = brute_force_best(transitions, learned, start, horizon)
        assert value[start] == pytest.approx(best)
        expected = best - sequence_return(transitions, true, start, learned_seq)
        assert regret(transitions, true, learned, np.eye(4)[start], horizon) == pytest.approx(expected)


@pytest.mark.parametrize("deterministic", [True, False])
def test_non_negative_and_zero_for_the_true_reward_or_a_rescaled_copy(deterministic):
    rng = np.random.default_rng(7)
    regrets = []
    for _ in range(30):
        transitions, true = random_mdp(rng, 6, 3, deterministic)
        initial = rng.dirichlet(np.ones(6))
        horizon = int(rng.integers(1, 8))
        value = regret(transitions, true, rng.normal(size=true.shape), initial, horizon)
        assert value >= -1e-12
        regrets.append(value)
        assert regret(transitions, true, true, initial, horizon) == pytest.approx(0.0, abs=1e-12)
        scaled = rng.uniform(0.1, 10.0) * true - rng.normal()  # rescaled, shifted everywhere
        assert regret(transitions, true, scaled, initial, horizon) == pytest.approx(0.0, abs=1e-9)
        # The planned policy's own value is the planner's value.
        policy, planned = plan(transitions, true, horizon)
        np.testing.assert_allclose(policy_value(transitions, true, policy), planned)
    assert max(regrets) > 0.1, "random learned rewards should cost something somewhere"


def test_negated_reward_has_positive_regret():
    transitions, true = chain()
    # -R: the plan moves ON (0 > -0.5) and then waits at 1 (0 > -1): it collects nothing, regret 1.
    assert regret(transitions, true, -true, START, 3) == pytest.approx(1.0)


def test_bad_input():
    transitions, true = chain()
    with pytest.raises(ValueError, match=r"learned_reward must have shape \(3, 2\)"):
        regret(transitions, true, np.zeros((3, 3)), START, 3)
    with pytest.raises(ValueError, match=r"true_reward must have shape \(3, 2\)"):
        regret(transitions, true[:2], true, START, 3)
    with pytest.raises(ValueError, match="true_reward has non-finite values"):
        regret(transitions, np.where(true > 0.9, np.nan, true), true, START, 3)
    with pytest.raises(ValueError, match="learned_reward has non-finite values"):
        regret(transitions, true, np.where(true > 0.9, np.inf, true), START, 3)
    for initial in ([1.0, 0.0], [0.5, 0.0, 0.0], [1.5, -0.5, 0.0], [[1.0, 0.0, 0.0]]):
        with pytest.raises(ValueError, match=r"initial must be a distribution of shape \(3,\)"):
            regret(transitions, true, true, initial, 3)
    for horizon in (0, -1):
        with pytest.raises(ValueError, match="horizon must be >= 1"):
            regret(transitions, true, true, START, horizon)
        with pytest.raises(ValueError, match="horizon must be >= 1"):
            plan(transitions, true, horizon)
    with pytest.raises(ValueError, match="reward must have shape"):
        plan(transitions, np.zeros(3), 2)


@pytest.mark.parametrize("transitions, message", [
    (np.full((3, 2, 4), 0.25), r"\[S, A, S\]"),
    (np.full((3, 2, 3), 0.5), "summing to 1"),
])
def test_bad_transitions_are_named(transitions, message):
    with pytest.raises(ValueError, match=message):
        regret(transitions, np.zeros((3, 2)), np.zeros((3, 2)), np.array([1.0, 0.0, 0.0]), 2)
