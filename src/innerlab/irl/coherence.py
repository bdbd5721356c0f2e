"""Coherence measures: how well a recovered objective explains behaviour, and how far it is
from another reward.

    train, test = split(demos, 0.8)
    result = maxent_irl(mdp.transitions, mdp.features, mdp.initial, train, discount)
    fit(result.policy, test)                  # nats per action gained over the uniform policy
    heldout_accuracy(result.policy, test)     # how often the demonstrated action is the policy's argmax
    reward_distance(result.reward, mdp.reward, mdp.transitions, discount,
                    state_dist=state_visitation(demos, mdp.num_states))   # EPIC on the MDP's transitions

A behaviour is "coherent" to the extent that some reward in the feature class makes it
(soft-)optimal: a high held-out `fit` says a goal explains it; a fit near 0 says the best
such goal does no better than acting at random. Host-side numpy in float64 (analysis, not the
training path); `Trajectories` may hold numpy or JAX arrays.
"""

from __future__ import annotations

import jax
import numpy as np

from innerlab.irl.maxent import Trajectories
from innerlab.rewards.epic import epic_distance

# Smallest probability a policy is taken to give any action: log(0) would make one
# unexplained action cost infinitely many nats.
MIN_PROB = 1e-12


def _valid_steps(policy, trajectories: Trajectories) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """policy [S, A] float64 and the states and actions of the valid steps (ValueError if none)."""
    policy = np.asarray(policy, np.float64)
    if policy.ndim != 2:
        raise ValueError(f"policy must have shape [S, A], got {policy.shape}")
    mask = np.asarray(trajectories.mask, bool)
    states, actions = np.asarray(trajectories.states)[mask], np.asarray(trajectories.actions)[mask]
    if states.size == 0:
        raise ValueError("trajectories have no valid (unmasked) step")
    if (states < 0).any() or (states >= policy.shape[0]).any() or (actions < 0).any() or \
            (actions >= policy.shape[1]).any():
        raise ValueError(f"trajectory states/actions out of range for a policy of shape {policy.shape}")
    return policy, states, actions


def fit(policy, trajectories: Trajectories) -> float:
    """Mean log-likelihood per valid action gained over the uniform policy, in nats:

        fit = mean_t log max(pi(a_t | s_t), 1e-12) + log A

    0 for a policy that predicts the actions no better than uniform (negative if worse); at
    most log A, reached when the policy puts probability 1 on every demonstrated action.
    """
    policy, states, actions = _valid_steps(policy, trajectories)
    return float(np.log(np.maximum(policy[states, actions], MIN_PROB)).mean() + np.log(policy.shape[1]))


def heldout_accuracy(policy, trajectories: Trajectories) -> float:
    """Fraction of valid steps whose action is argmax_a pi(a | s_t). When k actions tie for the
    maximum (up to float rounding) and the demonstrated one is among them, the step counts
    1/k, so a uniform policy scores exactly 1/A whatever the demonstrations."""
    policy, states, actions = _valid_steps(policy, trajectories)
    best = np.isclose(policy, policy.max(-1, keepdims=True), rtol=1e-6, atol=0.0)  # [S, A]
    credit = best[states, actions] / best[states].sum(-1)
    return float(credit.mean())


def split(trajectories: Trajectories, fraction: float) -> tuple[Trajectories, Trajectories]:
    """(train, test): the first round(fraction N) whole trajectories and the rest. Deterministic;
    shuffle beforehand if the order of the batch means something. ValueError if a part is empty."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    count = trajectories.states.shape[0]
    cut = int(round(fraction * count))
    if not 0 < cut < count:
        raise ValueError(f"splitting {count} trajectories at fraction {fraction} leaves a part empty")
    return (jax.tree.map(lambda x: x[:cut], trajectories), jax.tree.map(lambda x: x[cut:], trajectories))


def state_visitation(trajectories: Trajectories, num_states: int) -> np.ndarray:
    """[S] float64, the fraction of valid steps spent in each state (a `state_dist`)."""
    states = np.asarray(trajectories.states)[np.asarray(trajectories.mask, bool)]
    if states.size == 0:
        raise ValueError("trajectories have no valid (unmasked) step")
    if (states < 0).any() or (states >= num_states).any():
        raise ValueError(f"trajectory states must lie in [0, {num_states})")
    return np.bincount(states, minlength=num_states) / states.size


def _as_sas(reward, shape, name: str) -> np.ndarray:
    reward = np.asarray(reward, np.float64)
    if reward.shape == shape[:2]:
        return np.broadcast_to(reward[:, :, None], shape)  # R(s, a, s') = r(s, a) for every s'
    if reward.shape != shape:
        raise ValueError(f"{name} must have shape {shape} or {shape[:2]}, got {reward.shape}")
    return reward


def reward_distance(reward_a, reward_b, transitions, discount: float, state_dist=None) -> float:
    """EPIC distance (`innerlab.rewards.epic_distance`) between two rewards [S, A, S] or [S, A]
    on the MDP `transitions` [S, A, S].

    Canonicalisation uses `state_dist` [S] (uniform by default) and uniform actions; the
    triples compared are the MDP's possible transitions from those states,

        coverage(s, a, s') = state_dist(s) / A * P(s' | s, a),

    so only transitions a policy can make are compared. (Values on impossible transitions
    still enter the canonicalisation's expectations E[R(s, A, S'')], S'' ~ state_dist, as
    EPIC defines it; rewards built from `TabularMDP.features` are 0 there, like the true ones.)
    0 means equivalent up to potential shaping and positive scale; nan if either reward is
    constant on the coverage after canonicalisation.
    """
    transitions = np.asarray(transitions, np.float64)
    if transitions.ndim != 3 or transitions.shape[0] != transitions.shape[2]:
        raise ValueError(f"transitions must have shape [S, A, S], got {transitions.shape}")
    if (transitions < 0).any() or not np.allclose(transitions.sum(-1), 1.0, atol=1e-5):
        raise ValueError("transitions must be probabilities: non-negative, each [s, a] row summing to 1")
    num_states, num_actions, _ = transitions.shape
    reward_a = _as_sas(reward_a, transitions.shape, "reward_a")
    reward_b = _as_sas(reward_b, transitions.shape, "reward_b")
    if state_dist is None:
        state_dist = np.full(num_states, 1.0 / num_states)
    state_dist = np.asarray(state_dist, np.float64)
    if state_dist.shape != (num_states,) or (state_dist < 0).any() or state_dist.sum() <= 0:
        raise ValueError(f"state_dist must be non-negative with shape ({num_states},) and a positive sum")
    state_dist = state_dist / state_dist.sum()
    coverage = state_dist[:, None, None] / num_actions * transitions
    return epic_distance(reward_a, reward_b, discount, state_dist=state_dist, coverage=coverage)
