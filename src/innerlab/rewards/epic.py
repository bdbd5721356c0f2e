"""EPIC distance between tabular reward functions (Gleave, Dennis, Legg, Russell and Leike 2021,
"Quantifying Differences in Reward Functions", ICLR 2021).

Rewards are arrays R[s, a, s'] over an enumerated MDP (S states, A actions). EPIC compares
what two rewards say about *preferences over policies*, so it is zero between rewards that
differ only by potential shaping and positive rescaling, and it needs no policy training.

Canonicalisation, with a state distribution D_S [S] and an action distribution D_A [A]
(S, S'' ~ D_S and A ~ D_A independent):

    C(R)(s, a, s') = R(s, a, s') + gamma E[R(s', A, S'')] - E[R(s, A, S'')] - gamma E[R(S, A, S'')]

which removes any potential shaping gamma Phi(s') - Phi(s) exactly (and any constant).
Pearson distance of the canonical rewards under a coverage distribution D over (s, a, s'):

    EPIC(R_A, R_B) = sqrt(1 - rho(C(R_A), C(R_B))) / sqrt(2)       in [0, 1]

0: equivalent up to shaping and positive scale; 1: opposite (C(R_B) = -k C(R_A)); a reward
whose canonical form is constant on the coverage (e.g. a pure potential) has no direction
and gives nan. Host-side numpy in float64: this is exact analysis, not the training path,
and float32 would put an error of ~3e-4 on a distance of 0 (the square root magnifies
1 - rho).
"""

from __future__ import annotations

import numpy as np


def _distribution(p, size: int, name: str) -> np.ndarray:
    if p is None:
        return np.full(size, 1.0 / size)
    p = np.asarray(p, np.float64)
    if p.shape != (size,):
        raise ValueError(f"{name} must have shape ({size},), got {p.shape}")
    if (p < 0).any() or p.sum() <= 0:
        raise ValueError(f"{name} must be non-negative with a positive sum")
    return p / p.sum()


def _check_reward(reward, name: str) -> np.ndarray:
    reward = np.asarray(reward, np.float64)
    if reward.ndim != 3 or reward.shape[0] != reward.shape[2]:
        raise ValueError(f"{name} must have shape [S, A, S], got {reward.shape}")
    if not np.isfinite(reward).all():
        raise ValueError(f"{name} has non-finite values")
    return reward


def canonicalize(reward, gamma: float, state_dist=None, action_dist=None) -> np.ndarray:
    """C(R) [S, A, S] of reward [S, A, S] (see the module docstring); uniform distributions by default."""
    reward = _check_reward(reward, "reward")
    num_states, num_actions, _ = reward.shape
    d_s = _distribution(state_dist, num_states, "state_dist")
    d_a = _distribution(action_dist, num_actions, "action_dist")
    mean_from = np.einsum("xas,a,s->x", reward, d_a, d_s)  # [S]: E[R(x, A, S'')]
    mean_all = d_s @ mean_from                             # E[R(S, A, S'')]
    return reward + gamma * mean_from[None, None, :] - mean_from[:, None, None] - gamma * mean_all


def pearson_distance(x, y, weights) -> float:
    """sqrt(1 - rho) / sqrt(2) of x and y under `weights` (same shape; nan if either is constant)."""
    w = np.asarray(weights, np.float64).ravel()
    w = w / w.sum()
    x, y = np.asarray(x, np.float64).ravel(), np.asarray(y, np.float64).ravel()
    dx, dy = x - w @ x, y - w @ y
    var_x, var_y = w @ (dx * dx), w @ (dy * dy)
    scale = max(np.abs(x).max(), np.abs(y).max(), 1.0)
    if var_x <= (1e-12 * scale) ** 2 or var_y <= (1e-12 * scale) ** 2:
        return float("nan")
    rho = np.clip((w @ (dx * dy)) / np.sqrt(var_x * var_y), -1.0, 1.0)
    return float(np.sqrt(max(1.0 - rho, 0.0)) / np.sqrt(2.0))


def epic_distance(reward_a, reward_b, gamma: float, state_dist=None, action_dist=None, coverage=None) -> float:
    """EPIC distance between two rewards [S, A, S] of one MDP.

    state_dist [S] and action_dist [A] define the canonicalisation (uniform by default);
    coverage [S, A, S] weights the (s, a, s') triples compared, default the product
    state_dist x action_dist x state_dist. To compare on the states an agent visits, pass
    its visitation frequencies as state_dist (and, if known, its transition counts as
    coverage); on test levels, their states.
    """
    reward_a, reward_b = _check_reward(reward_a, "reward_a"), _check_reward(reward_b, "reward_b")
    if reward_a.shape != reward_b.shape:
        raise ValueError(f"rewards must have the same shape, got {reward_a.shape} and {reward_b.shape}")
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    num_states, num_actions, _ = reward_a.shape
    d_s = _distribution(state_dist, num_states, "state_dist")
    d_a = _distribution(action_dist, num_actions, "action_dist")
    if coverage is None:
        coverage = d_s[:, None, None] * d_a[None, :, None] * d_s[None, None, :]
    else:
        coverage = np.asarray(coverage, np.float64)
        if coverage.shape != reward_a.shape or (coverage < 0).any() or coverage.sum() <= 0:
            raise ValueError(f"coverage must be non-negative with shape {reward_a.shape} and a positive sum")
    # C(R) is needed only where the coverage is positive (for a deterministic MDP's transitions,
    # S x A of the S x A x S triples): the same numbers as canonicalize(), without the full array.
    support = np.nonzero(coverage)
    s, s_next = support[0], support[2]

    def canonical_on_support(reward):
        mean_from = np.einsum("xas,a,s->x", reward, d_a, d_s)
        return reward[support] + gamma * mean_from[s_next] - mean_from[s] - gamma * (d_s @ mean_from)

    return pearson_distance(canonical_on_support(reward_a), canonical_on_support(reward_b), coverage[support])
