"""Reward channels: what each mode shows, what each perturbation changes, and what it must not."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from innerlab.channels import ChannelParams, RewardChannel, perturbation_index
from innerlab.envs import ObjectWorld, make_params

RIGHT, DOWN = 1, 2


def world(mode, perturbation="none", transform="identity", sigma=0.0):
    """4x4; agent (1,1); colour-0 object (+1) at (1,2); colour-1 object (-0.5) at (2,1)."""
    env = RewardChannel(ObjectWorld(size=4, num_objects=2, num_colours=2), mode=mode, transform=transform)
    inner = make_params(env.env, randomize_positions=False, agent_start=[1, 1], obj_pos=[[1, 2], [2, 1]],
                        obj_colour=[0, 1], reward_table=[[1.0], [-0.5]],
                        terminate_when_rewarded_collected=False)
    params = ChannelParams(env=inner, perturbation=jnp.int32(perturbation_index(perturbation)),
                           noise_sigma=jnp.float32(sigma))
    obs, state = env.reset(jax.random.key(0), params)
    return env, params, obs, state


@pytest.mark.parametrize("perturbation,seen_a,seen_b", [
    ("none", 1.0, -0.5), ("swap", -0.5, 1.0), ("negate", -1.0, 0.5), ("zero", 0.0, 0.0)])
def test_prev_channel_shows_perturbed_reward_true_reward_unchanged(perturbation, seen_a, seen_b):
    env, params, obs, state = world("prev", perturbation)
    assert obs[-1] == 0.0  # nothing before the first step
    obs, state_a, reward, _, _, info = env.step(jax.random.key(1), state, jnp.int32(RIGHT), params)
    assert reward == 1.0 and info["true_reward"] == 1.0  # the true reward is never perturbed
    assert np.isclose(obs[-1], seen_a) and np.isclose(info["observed_reward"], seen_a)
    obs, _, reward, _, _, info = env.step(jax.random.key(1), state, jnp.int32(DOWN), params)
    assert reward == -0.5
    assert np.isclose(obs[-1], seen_b) and np.isclose(info["observed_reward"], seen_b)
    # A step that collects nothing shows 0.
    obs, *_ = env.step(jax.random.key(2), state_a, jnp.int32(RIGHT), params)
    assert obs[-1] == 0.0


def test_next_channel_shows_each_actions_reward():
    env, params, obs, state = world("next")
    np.testing.assert_allclose(obs[-4:], [0.0, 1.0, -0.5, 0.0])  # up, right, down, left
    _, _, swapped_obs, _ = world("next", "swap")
    np.testing.assert_allclose(swapped_obs[-4:], [0.0, -0.5, 1.0, 0.0])


def test_noise_perturbs_observation_only():
    env, params, _, state = world("prev", "noise", sigma=0.3)
    seen = []
    for k in range(64):
        obs, _, reward, _, _, info = env.step(jax.random.key(k), state, jnp.int32(RIGHT), params)
        assert reward == 1.0
        seen.append(float(obs[-1]))
    seen = np.array(seen)
    assert 0.15 < seen.std() < 0.45 and abs(seen.mean() - 1.0) < 0.15


def test_none_channel_adds_nothing():
    env, params, obs, _ = world("none", "swap")
    assert obs.shape == env.env.observation_space(params.env).shape
    assert env.observation_space(params).shape == obs.shape


def test_mlp_transform_is_fixed_vector_function():
    env, params, obs, state = world("prev", transform="mlp")
    assert env.signal_dim == 8 and obs.shape == env.observation_space(params).shape
    a, *_ = env.step(jax.random.key(1), state, jnp.int32(RIGHT), params)
    b, *_ = env.step(jax.random.key(9), state, jnp.int32(DOWN), params)
    np.testing.assert_allclose(a[-8:], env.encode(jnp.float32(1.0)), rtol=1e-6)  # float32: same function, its own compile
    assert not np.allclose(a[-8:], b[-8:])  # distinguishes +1 from -0.5
    env2 = RewardChannel(env.env, mode="prev", transform="mlp")
    np.testing.assert_array_equal(env.encode(jnp.float32(0.3)), env2.encode(jnp.float32(0.3)))


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        RewardChannel(ObjectWorld(), mode="future")
    with pytest.raises(ValueError, match="transform"):
        RewardChannel(ObjectWorld(), transform="nn")
    with pytest.raises(ValueError, match="perturbation"):
        perturbation_index("flip")
