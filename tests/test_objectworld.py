"""ObjectWorld: hand-worked transitions, auto-reset, jit/vmap parity, determinism, spaces."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from innerlab.envs import ObjectWorld, make_params

UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3


def fixed_world(walls=None, **overrides):
    """4x4, agent at (1,1); object 0 (colour 0, +1) at (1,2); object 1 (colour 1, -1) at (3,3)."""
    env = ObjectWorld(size=4, num_objects=2, num_colours=2)
    w = np.zeros((4, 4), bool) if walls is None else walls
    fields = dict(randomize_positions=False, agent_start=[1, 1], obj_pos=[[1, 2], [3, 3]], obj_colour=[0, 1],
                  walls=w, reward_table=[[1.0], [-1.0]], max_steps_in_episode=10)
    params = make_params(env, **{**fields, **overrides})
    obs, state = env.reset(jax.random.key(0), params)
    return env, params, obs, state


def step(env, state, action, params, key=0):
    return env.step(jax.random.key(key), state, jnp.int32(action), params)


@pytest.mark.parametrize("action,expected", [(UP, (0, 1)), (DOWN, (2, 1)), (LEFT, (1, 0))])
def test_moves(action, expected):
    env, params, _, state = fixed_world()
    _, state, reward, terminated, truncated, info = step(env, state, action, params)
    assert tuple(np.asarray(state.agent_pos)) == expected
    assert reward == 0.0 and not terminated and not truncated and info["collected"] == -1


def test_grid_edge_and_walls_block():
    walls = np.zeros((4, 4), bool)
    walls[2, 1] = True
    env, params, _, state = fixed_world(walls=walls)
    _, state, *_ = step(env, state, DOWN, params)  # into the wall
    assert tuple(np.asarray(state.agent_pos)) == (1, 1)
    _, state, *_ = step(env, state, UP, params)
    _, state, *_ = step(env, state, UP, params)  # off the top edge
    assert tuple(np.asarray(state.agent_pos)) == (0, 1)
    assert int(state.time) == 3


def test_collecting_gives_table_reward_and_removes_object():
    env, params, _, state = fixed_world()
    obs, state2, reward, terminated, truncated, info = step(env, state, RIGHT, params)
    # Object 0 (colour 0, +1) was collected; object 1 (colour 1, -1) remains, and no positive
    # object is left, so the episode terminates and auto-resets.
    assert reward == 1.0
    assert info["collected"] == 0 and info["collected_colour"] == 0 and info["collected_shape"] == 0
    assert info["true_reward"] == 1.0
    assert bool(terminated) and not bool(truncated)
    final = np.asarray(info["final_observation"])
    image = final[:-2].reshape(env.image_channels, 4, 4)
    assert image[0, 1, 2] == 1.0          # agent where the object was
    assert image[2].sum() == 0.0          # no colour-0 object left
    assert image[3, 3, 3] == 1.0          # the colour-1 object remains
    np.testing.assert_array_equal(final[-2:], [1.0, 0.0])  # holds colour 0
    # Auto-reset: the returned obs and state are a fresh episode.
    assert int(state2.time) == 0 and bool(state2.obj_present.all())
    np.testing.assert_array_equal(np.asarray(obs), np.asarray(env.get_obs(state, params)))


def test_collecting_penalised_object_and_empty_cell():
    env, params, _, state = fixed_world(terminate_when_rewarded_collected=False)
    _, state, reward, *_ = step(env, state, RIGHT, params)
    assert reward == 1.0
    for action in (DOWN, DOWN):
        _, state, reward, *_ = step(env, state, action, params)
        assert reward == 0.0
    obs, state, reward, terminated, truncated, info = step(env, state, RIGHT, params)
    assert reward == -1.0 and info["collected_colour"] == 1 and not terminated
    np.testing.assert_array_equal(np.asarray(obs)[-2:], [0.0, 1.0])


def test_truncation_at_time_limit():
    env, params, _, state = fixed_world(max_steps_in_episode=3)
    flags = []
    for _ in range(3):
        _, state, _, terminated, truncated, _ = step(env, state, LEFT, params)
        flags.append((bool(terminated), bool(truncated)))
    assert flags == [(False, False), (False, False), (False, True)]
    assert int(state.time) == 0  # auto-reset


def test_reward_shift():
    env = ObjectWorld(size=4, num_objects=4, num_colours=2)
    keys = jax.random.split(jax.random.key(0), 200)
    reset = jax.vmap(env.reset, in_axes=(0, None))
    _, never = reset(keys, make_params(env, reward_shift_prob=0.0))
    assert (np.asarray(never.colour_shift) == 0).all()
    _, always = reset(keys, make_params(env, reward_shift_prob=1.0))
    shifts = np.asarray(always.colour_shift)
    assert set(shifts) == {0, 1}
    tables = np.asarray(always.reward_table)[:, :, 0]
    np.testing.assert_array_equal(tables[shifts == 1], np.tile([-1.0, 1.0], ((shifts == 1).sum(), 1)))
    np.testing.assert_array_equal(tables[shifts == 0], np.tile([1.0, -1.0], ((shifts == 0).sum(), 1)))


def test_random_positions_are_distinct_free_and_inside():
    env = ObjectWorld(size=5, num_objects=8, num_colours=2)
    walls = np.zeros((5, 5), bool)
    walls[2, :4] = True
    params = make_params(env, walls=walls)
    _, states = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.key(1), 300), params)
    pos = np.concatenate([np.asarray(states.agent_pos)[:, None], np.asarray(states.obj_pos)], axis=1)
    assert pos.min() >= 0 and pos.max() < 5
    flat = pos[..., 0] * 5 + pos[..., 1]
    assert all(len(set(row)) == 9 for row in flat)
    assert not walls[pos[..., 0], pos[..., 1]].any()


def test_action_rewards_agree_with_stepping():
    env, params, _, state = fixed_world(terminate_when_rewarded_collected=False)
    _, state, *_ = step(env, state, DOWN, params)
    _, state, *_ = step(env, state, DOWN, params)
    _, state, *_ = step(env, state, RIGHT, params)  # agent at (3,2): object 1 to the right
    predicted = np.asarray(env.action_rewards(state, params, state.reward_table))
    actual = [float(step(env, state, a, params)[2]) for a in range(4)]
    np.testing.assert_array_equal(predicted, actual)
    assert predicted[RIGHT] == -1.0


def _rollout(env, params, key, jit=True, steps=25):
    reset, stepf = (env.reset_env, env.step_env)
    if jit:
        reset, stepf = jax.jit(reset), jax.jit(stepf)
    k0, key = jax.random.split(key)
    obs, state = reset(k0, params)
    out = [np.asarray(obs)]
    for t in range(steps):
        key, k_act, k_step = jax.random.split(key, 3)
        action = jax.random.randint(k_act, (), 0, 4)
        obs, state, reward, terminated, info = stepf(k_step, state, action, params)
        out += [np.asarray(obs), np.asarray(reward)]
    return out


def test_jit_matches_unjitted_and_same_key_same_rollout():
    env = ObjectWorld(size=5, num_objects=6)
    params = make_params(env, reward_shift_prob=0.5)
    with jax.disable_jit():
        reference = _rollout(env, params, jax.random.key(3), jit=False, steps=8)
    jitted = _rollout(env, params, jax.random.key(3), steps=8)
    for a, b in zip(reference, jitted):
        np.testing.assert_array_equal(a, b)
    again = _rollout(env, params, jax.random.key(3), steps=8)
    other = _rollout(env, params, jax.random.key(4), steps=8)
    assert all(np.array_equal(a, b) for a, b in zip(jitted, again))
    assert not all(np.array_equal(a, b) for a, b in zip(jitted, other))


def test_vmap_matches_single():
    env = ObjectWorld(size=5, num_objects=6)
    params = env.default_params
    keys = jax.random.split(jax.random.key(0), 4)
    obs_b, state_b = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    actions = jnp.array([0, 1, 2, 3])
    out_b = jax.vmap(env.step, in_axes=(0, 0, 0, None))(keys, state_b, actions, params)
    for i in range(4):
        obs, state = env.reset(keys[i], params)
        np.testing.assert_array_equal(obs, obs_b[i])
        out = env.step(keys[i], state, actions[i], params)
        np.testing.assert_array_equal(out[0], out_b[0][i])
        np.testing.assert_array_equal(out[2], out_b[2][i])


@pytest.mark.parametrize("view", ["flat", "image", "egocentric"])
def test_observation_matches_space(view):
    env = ObjectWorld(size=4, num_objects=3, num_colours=2, num_shapes=2, obs_view=view)
    obs, _ = env.reset(jax.random.key(0), env.default_params)
    space = env.observation_space(env.default_params)
    assert obs.shape == space.shape and obs.dtype == jnp.float32
    assert space.contains(obs)


def test_egocentric_view_centres_agent():
    env = ObjectWorld(size=4, num_objects=2, num_colours=2, obs_view="egocentric")
    params = make_params(env, randomize_positions=False, agent_start=[0, 0], obj_pos=[[0, 1], [3, 3]],
                         obj_colour=[0, 1])
    _, state = env.reset(jax.random.key(0), params)
    ego = np.asarray(env.egocentric(state, params))  # [walls, colour0, colour1] x 7 x 7
    assert ego.shape == (3, 7, 7)
    assert ego[1, 3, 4] == 1.0 and ego[2, 6, 6] == 1.0  # right of the agent; 3 down, 3 right
    assert ego[0, 2, 3] == 1.0 and ego[0, 3, 3] == 0.0  # above the grid reads as wall


def test_constructor_validation():
    with pytest.raises(ValueError, match="size"):
        ObjectWorld(size=1)
    with pytest.raises(ValueError, match="fit"):
        ObjectWorld(size=2, num_objects=4)
    with pytest.raises(ValueError, match="obs_view"):
        ObjectWorld(obs_view="pixels")
    with pytest.raises(ValueError, match="shape"):
        make_params(ObjectWorld(num_objects=3), obj_colour=[0, 1])
