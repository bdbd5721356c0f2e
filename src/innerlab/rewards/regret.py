"""Regret of planning with a learned reward in the true model (tabular, finite horizon).

    regret(transitions, true_reward, learned_reward, initial, horizon)     # true return lost

Rewards are per (state, action) [S, A] (deterministic ObjectWorld levels: see
`TabularMDP.state_action_reward`); `transitions` is [S, A, S]. The planner is exact backward
induction over `horizon` steps, undiscounted, like an ObjectWorld episode of
`max_steps_in_episode` steps (the terminal state absorbs with reward 0):

    Q_t(s, a) = R(s, a) + sum_s' P(s' | s, a) V_{t+1}(s'),   V_H = 0,   pi_t(s) = argmax_a Q_t(s, a)

`regret = E_{s0 ~ initial}[V*_0(s0) - V^pi_0(s0)]` where pi plans with the learned reward and
both values are the true reward's: the return a perfect planner loses by optimising the
learned objective instead of the true one. It is >= 0, 0 for any reward with the same
optimal policies (e.g. a positively rescaled copy). Ties between actions under the learned
reward go to the lowest action index, deterministically. Float64 numpy.
"""

from __future__ import annotations

import numpy as np


def _check_transitions(transitions) -> np.ndarray:
    transitions = np.asarray(transitions, np.float64)
    if transitions.ndim != 3 or transitions.shape[0] != transitions.shape[2]:
        raise ValueError(f"transitions must have shape [S, A, S], got {transitions.shape}")
    if (transitions < 0).any() or not np.allclose(transitions.sum(-1), 1.0):
        raise ValueError("transitions must be probabilities: non-negative, each [s, a] row summing to 1")
    return transitions


def _check(transitions, reward, name):
    reward = np.asarray(reward, np.float64)
    if reward.shape != transitions.shape[:2]:
        raise ValueError(f"{name} must have shape {transitions.shape[:2]} ([S, A]), got {reward.shape}")
    if not np.isfinite(reward).all():
        raise ValueError(f"{name} has non-finite values")
    return reward


def plan(transitions, reward, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Optimal time-dependent policy [H, S] and its values V_0 [S] for `reward` [S, A]."""
    transitions = _check_transitions(transitions)
    reward = _check(transitions, reward, "reward")
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    value = np.zeros(transitions.shape[0])
    policy = np.zeros((horizon, transitions.shape[0]), np.int64)
    for t in reversed(range(horizon)):
        q = reward + transitions @ value
        policy[t] = q.argmax(-1)
        value = q.max(-1)
    return policy, value


def policy_value(transitions, reward, policy) -> np.ndarray:
    """V_0 [S] of the time-dependent `policy` [H, S] under `reward` [S, A]."""
    transitions = _check_transitions(transitions)
    reward = _check(transitions, reward, "reward")
    policy = np.asarray(policy)
    if policy.ndim != 2 or policy.shape[1] != transitions.shape[0]:
        raise ValueError(f"policy must have shape [H, {transitions.shape[0]}], got {policy.shape}")
    states = np.arange(transitions.shape[0])
    value = np.zeros(transitions.shape[0])
    for t in reversed(range(policy.shape[0])):
        value = reward[states, policy[t]] + transitions[states, policy[t]] @ value
    return value


def regret(transitions, true_reward, learned_reward, initial, horizon: int) -> float:
    """True return lost from `initial` [S] by planning with `learned_reward` (see module docstring)."""
    transitions = _check_transitions(transitions)
    true_reward = _check(transitions, true_reward, "true_reward")
    learned_reward = _check(transitions, learned_reward, "learned_reward")
    initial = np.asarray(initial, np.float64)
    if initial.shape != (transitions.shape[0],) or (initial < 0).any() or not np.isclose(initial.sum(), 1.0):
        raise ValueError(f"initial must be a distribution of shape ({transitions.shape[0]},)")
    _, best = plan(transitions, true_reward, horizon)
    policy, _ = plan(transitions, learned_reward, horizon)
    return float(initial @ (best - policy_value(transitions, true_reward, policy)))
