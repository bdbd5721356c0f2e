"""The scan-based GAE against a plain Python loop, with terminations and truncations."""

import numpy as np

from innerlab.agents import gae


def gae_loop(reward, value, next_value, terminated, done, gamma, lam):
    advantage = np.zeros_like(reward)
    running = 0.0
    for t in reversed(range(len(reward))):
        delta = reward[t] + gamma * (1 - terminated[t]) * next_value[t] - value[t]
        running = delta + gamma * lam * (1 - done[t]) * running
        advantage[t] = running
    return advantage, advantage + value


def test_gae_matches_loop():
    rng = np.random.default_rng(0)
    T = 50
    reward, value, next_value = (rng.normal(size=T).astype(np.float32) for _ in range(3))
    terminated = (rng.random(T) < 0.1).astype(np.float32)
    truncated = (rng.random(T) < 0.1).astype(np.float32) * (1 - terminated)
    done = np.maximum(terminated, truncated)
    assert terminated.sum() > 0 and truncated.sum() > 0
    adv, target = gae(reward, value, next_value, terminated, done, 0.9, 0.8)
    adv_ref, target_ref = gae_loop(reward, value, next_value, terminated, done, 0.9, 0.8)
    np.testing.assert_allclose(adv, adv_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(target, target_ref, rtol=1e-5, atol=1e-5)


def test_truncation_bootstraps_and_termination_does_not():
    # One step each: reward 1, V(s)=0, V(next)=10.
    ones, zeros = np.ones(1, np.float32), np.zeros(1, np.float32)
    adv_trunc, _ = gae(ones, zeros, 10 * ones, zeros, ones, 0.5, 1.0)
    adv_term, _ = gae(ones, zeros, 10 * ones, ones, ones, 0.5, 1.0)
    assert np.isclose(adv_trunc[0], 1 + 0.5 * 10)
    assert np.isclose(adv_term[0], 1.0)


def test_trace_cut_at_episode_end():
    # The advantage of step 0 must not include step 1's delta when step 0 ended an episode.
    reward = np.array([0.0, 5.0], np.float32)
    zeros = np.zeros(2, np.float32)
    done = np.array([1.0, 0.0], np.float32)
    adv, _ = gae(reward, zeros, zeros, done, done, 0.9, 0.9)
    assert adv[0] == 0.0 and adv[1] == 5.0
