"""ObjectWorld: hand-worked transitions, auto-reset, reward shift, placement, parity with an
unjitted reference under jit and vmap, determinism, observations and spaces, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from innerlab.envs import EnvParams, EnvState, ObjectWorld, make_params

UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3

# One env object for the hand-worked tests: gymnax jits `step` with `self` static, so sharing
# it lets every test reuse one compilation (params are traced, so they may differ freely).
ENV = ObjectWorld(size=4, num_objects=2, num_colours=2)


def fixed_params(**overrides) -> EnvParams:
    """4x4, agent at (1,1); object 0 (colour 0, +1) at (1,2); object 1 (colour 1, -1) at (3,3).

        . . . .
        . A 0 .
        . . . .
        . . . 1
    """
    fields = dict(randomize_positions=False, agent_start=[1, 1], obj_pos=[[1, 2], [3, 3]], obj_colour=[0, 1],
                  reward_table=[[1.0], [-1.0]], max_steps_in_episode=10)
    return make_params(ENV, **{**fields, **overrides})


def start(params, env=ENV, key=0):
    return env.reset(jax.random.key(key), params)


def step(state, action, params, env=ENV, key=0):
    return env.step(jax.random.key(key), state, jnp.int32(action), params)


def pos(state):
    return tuple(int(x) for x in np.asarray(state.agent_pos))


# -- movement ---------------------------------------------------------------------------------

@pytest.mark.parametrize("action,expected", [(UP, (0, 1)), (RIGHT, (1, 2)), (DOWN, (2, 1)), (LEFT, (1, 0))])
def test_each_action_moves_one_cell_onto_empty_cells(action, expected):
    params = fixed_params(obj_pos=[[3, 0], [3, 3]])  # nothing next to the agent
    _, state = start(params)
    obs, state, reward, terminated, truncated, info = step(state, action, params)
    assert pos(state) == expected and int(state.time) == 1
    assert float(reward) == 0.0 and not terminated and not truncated
    assert int(info["collected"]) == -1 and int(info["collected_colour"]) == -1
    assert int(info["collected_shape"]) == -1 and float(info["true_reward"]) == 0.0
    image = np.asarray(obs)[:-2].reshape(ENV.image_channels, 4, 4)
    assert image[0].sum() == 1.0 and image[0][expected] == 1.0
    np.testing.assert_array_equal(np.asarray(obs)[-2:], [0.0, 0.0])  # nothing collected
    assert bool(state.obj_present.all())


@pytest.mark.parametrize("agent,action", [((0, 0), UP), ((0, 0), LEFT), ((0, 3), UP), ((0, 3), RIGHT),
                                          ((3, 0), DOWN), ((3, 0), LEFT)])
def test_grid_edge_leaves_agent_in_place(agent, action):
    params = fixed_params(agent_start=list(agent), obj_pos=[[2, 2], [3, 3]])
    _, state = start(params)
    _, state, reward, *_ = step(state, action, params)
    assert pos(state) == agent and float(reward) == 0.0 and int(state.time) == 1


def test_walls_block_every_direction():
    walls = np.zeros((4, 4), bool)
    walls[0, 1] = walls[1, 0] = walls[2, 1] = True  # every side of the agent but the right
    params = fixed_params(walls=walls, obj_pos=[[3, 0], [3, 3]])
    _, state = start(params)
    for action in (UP, DOWN, LEFT):
        _, state, reward, *_ = step(state, action, params)
        assert pos(state) == (1, 1) and float(reward) == 0.0
    _, state, *_ = step(state, RIGHT, params)
    assert pos(state) == (1, 2)
    _, state, *_ = step(state, LEFT, params)
    assert pos(state) == (1, 1) and int(state.time) == 5


# -- rewards, termination, truncation ---------------------------------------------------------

def test_collecting_gives_table_entry_removes_object_and_shows_colour():
    env = ObjectWorld(size=4, num_objects=2, num_colours=2, num_shapes=2)
    table = [[0.25, 0.75], [-0.5, -2.0]]
    params = make_params(env, randomize_positions=False, agent_start=[1, 1], obj_pos=[[1, 2], [2, 1]],
                         obj_colour=[0, 1], obj_shape=[1, 0], reward_table=table,
                         terminate_when_rewarded_collected=False)
    _, state = start(params, env)
    obs, state, reward, terminated, _, info = step(state, RIGHT, params, env)
    assert float(reward) == 0.75 and float(info["true_reward"]) == 0.75
    assert (int(info["collected"]), int(info["collected_colour"]), int(info["collected_shape"])) == (0, 0, 1)
    assert int(state.last_collected) == 0 and not bool(terminated)
    np.testing.assert_array_equal(np.asarray(state.obj_present), [False, True])
    np.testing.assert_array_equal(np.asarray(obs)[-2:], [1.0, 0.0])

    obs, state, reward, *_ = step(state, LEFT, params, env)  # back to (1,1): empty
    assert float(reward) == 0.0 and int(state.last_collected) == -1
    np.testing.assert_array_equal(np.asarray(obs)[-2:], [0.0, 0.0])  # the one-hot is for the last step only
    obs, state, reward, _, _, info = step(state, DOWN, params, env)
    assert float(reward) == -0.5 and int(info["collected_colour"]) == 1 and int(info["collected_shape"]) == 0
    np.testing.assert_array_equal(np.asarray(obs)[-2:], [0.0, 1.0])
    assert not bool(state.obj_present.any())

    _, state, reward, _, _, info = step(state, UP, params, env)  # the collected object is gone
    _, state, reward, _, _, info = step(state, DOWN, params, env)
    assert float(reward) == 0.0 and int(info["collected"]) == -1


def test_last_positive_object_terminates_and_auto_resets():
    params = fixed_params()
    _, state = start(params)
    obs, new_state, reward, terminated, truncated, info = step(state, RIGHT, params)
    # Object 0 was the only positive one left (object 1 is worth -1), so the episode ends.
    assert float(reward) == 1.0 and bool(terminated) and not bool(truncated)
    assert bool(info["terminated"]) and not bool(info["truncated"])
    final = np.asarray(info["final_observation"])
    image = final[:-2].reshape(ENV.image_channels, 4, 4)
    assert image[0, 1, 2] == 1.0      # agent where object 0 was
    assert image[2].sum() == 0.0      # no colour-0 object left
    assert image[3, 3, 3] == 1.0      # the colour-1 object remains
    np.testing.assert_array_equal(final[-2:], [1.0, 0.0])
    # The returned obs and state begin a fresh episode.
    assert int(new_state.time) == 0 and bool(new_state.obj_present.all()) and pos(new_state) == (1, 1)
    assert int(new_state.last_collected) == -1
    _, fresh = start(params)
    np.testing.assert_array_equal(np.asarray(obs), np.asarray(ENV.get_obs(fresh, params)))


def test_termination_waits_for_every_positive_object_and_can_be_switched_off():
    params = fixed_params(obj_colour=[0, 0], obj_pos=[[1, 2], [1, 3]])  # both +1, in a row
    _, state = start(params)
    _, state, reward, terminated, *_ = step(state, RIGHT, params)
    assert float(reward) == 1.0 and not bool(terminated)
    _, state, reward, terminated, *_ = step(state, RIGHT, params)
    assert float(reward) == 1.0 and bool(terminated)

    params = fixed_params(reward_table=[[1.0], [0.0]])  # "positive" is strict: a 0 object left is no reason to go on
    _, state = start(params)
    _, state, reward, terminated, *_ = step(state, RIGHT, params)
    assert float(reward) == 1.0 and bool(terminated)

    params = fixed_params(obj_colour=[0, 0], obj_pos=[[1, 2], [1, 3]], terminate_when_rewarded_collected=False)
    _, state = start(params)
    for _ in range(3):  # the last step finds nothing left at all
        _, state, _, terminated, truncated, _ = step(state, RIGHT, params)
        assert not bool(terminated) and not bool(truncated)
    assert not bool(state.obj_present.any()) and not bool(ENV.is_terminated(state, params))


def test_truncation_at_time_limit():
    params = fixed_params(max_steps_in_episode=3)
    _, state = start(params)
    flags = []
    for _ in range(3):
        _, state, _, terminated, truncated, info = step(state, LEFT, params)
        flags.append((bool(terminated), bool(truncated)))
    assert flags == [(False, False), (False, False), (False, True)]
    assert bool(info["truncated"]) and not bool(info["terminated"])
    assert int(state.time) == 0  # auto-reset


def test_info_has_fixed_keys_and_dtypes():
    params = fixed_params(terminate_when_rewarded_collected=False)
    _, state = start(params)
    _, _, _, _, _, empty = step(state, LEFT, params)
    _, _, _, _, _, collect = step(state, RIGHT, params)
    assert set(empty) == set(collect) == {"collected", "collected_colour", "collected_shape", "true_reward",
                                          "colour_shift", "agent_pos", "terminated", "truncated",
                                          "final_observation"}
    dtypes = {"collected": jnp.int32, "collected_colour": jnp.int32, "collected_shape": jnp.int32,
              "true_reward": jnp.float32, "colour_shift": jnp.int32}
    for info in (empty, collect):
        for name, dtype in dtypes.items():
            assert info[name].dtype == dtype and info[name].shape == (), name
        assert info["agent_pos"].dtype == jnp.int32 and info["agent_pos"].shape == (2,)
    assert tuple(np.asarray(empty["agent_pos"])) == (1, 0) and tuple(np.asarray(collect["agent_pos"])) == (1, 2)


def test_object_rewards_and_terminate_on_collect():
    # Object 1 (colour 1, table -1) carries an object reward of +3: collecting it gives 2.
    params = fixed_params(obj_reward=[0.0, 3.0], terminate_when_rewarded_collected=False,
                          obj_pos=[[1, 3], [1, 2]])
    _, state = start(params)
    _, state, reward, terminated, *_ = step(state, RIGHT, params)
    assert float(reward) == 2.0 and not bool(terminated)
    _, state, reward, terminated, *_ = step(state, RIGHT, params)
    assert float(reward) == 1.0 and not bool(terminated)
    # terminate_on_collect ends the episode on the first object, whatever it is worth.
    params = fixed_params(obj_pos=[[3, 3], [1, 2]], terminate_on_collect=True,
                          terminate_when_rewarded_collected=False)
    _, state = start(params)
    _, state, reward, terminated, *_ = step(state, LEFT, params)
    assert float(reward) == 0.0 and not bool(terminated)
    _, _, reward, terminated, _, info = step(state, RIGHT, params)
    assert not bool(terminated) and int(info["collected"]) == -1
    _, state2, reward, terminated, _, info = step(state, RIGHT, params)
    _, _, reward, terminated, _, info = step(state2, RIGHT, params)
    assert float(reward) == -1.0 and bool(terminated) and int(info["collected"]) == 1
    # An object reward counts as "positive" for terminate_when_rewarded_collected.
    params = fixed_params(reward_table=[[0.0], [0.0]], obj_reward=[0.0, 1.0], obj_pos=[[1, 2], [1, 3]])
    _, state = start(params)
    _, state, reward, terminated, *_ = step(state, RIGHT, params)
    assert float(reward) == 0.0 and not bool(terminated)
    _, state, reward, terminated, *_ = step(state, RIGHT, params)
    assert float(reward) == 1.0 and bool(terminated)


def test_reward_of():
    table = jnp.array([[1.0, 2.0], [-1.0, -3.0]])
    assert float(ObjectWorld.reward_of(1, 1, table)) == -3.0
    assert float(ObjectWorld.reward_of(-1, -1, table)) == 0.0
    np.testing.assert_array_equal(ObjectWorld.reward_of(jnp.array([0, -1, 1]), jnp.array([1, -1, 0]), table),
                                  [2.0, 0.0, -1.0])


# -- reward shift and placement ---------------------------------------------------------------

def test_reward_shift_rolls_table_along_colours():
    env = ObjectWorld(size=4, num_objects=3, num_colours=3, num_shapes=2)
    table = np.array([[1.0, 0.5], [-1.0, -0.5], [0.0, 2.0]], np.float32)
    keys = jax.random.split(jax.random.key(0), 300)
    reset = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))
    _, never = reset(keys, make_params(env, reward_table=table, reward_shift_prob=0.0))
    assert (np.asarray(never.colour_shift) == 0).all()
    np.testing.assert_array_equal(np.asarray(never.reward_table), np.broadcast_to(table, (300, 3, 2)))

    _, always = reset(keys, make_params(env, reward_table=table, reward_shift_prob=1.0))
    shifts = np.asarray(always.colour_shift)
    assert set(shifts.tolist()) == {0, 1, 2}  # a uniform shift, 0 included
    for shift, episode_table in zip(shifts, np.asarray(always.reward_table)):
        np.testing.assert_array_equal(episode_table, np.roll(table, shift, axis=0))


def test_reward_shift_frequency_with_two_colours():
    env = ObjectWorld(size=4, num_objects=2, num_colours=2)
    keys = jax.random.split(jax.random.key(5), 4000)
    _, states = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(keys, make_params(env, reward_shift_prob=0.5))
    # Half the episodes draw a shift, half of those draw shift 1: about a quarter are flipped.
    flipped = np.asarray(states.colour_shift == 1).mean()
    assert abs(flipped - 0.25) < 0.03  # 4 standard errors
    np.testing.assert_array_equal(np.asarray(states.reward_table)[states.colour_shift == 1][:, :, 0],
                                  np.tile([-1.0, 1.0], (int((states.colour_shift == 1).sum()), 1)))


def test_random_positions_are_distinct_free_and_inside():
    env = ObjectWorld(size=5, num_objects=8, num_colours=2)
    walls = np.zeros((5, 5), bool)
    walls[2, :4] = True
    walls[0, 4] = True
    params = make_params(env, walls=walls)
    _, states = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(jax.random.split(jax.random.key(1), 500), params)
    cells = np.concatenate([np.asarray(states.agent_pos)[:, None], np.asarray(states.obj_pos)], axis=1)
    assert cells.min() >= 0 and cells.max() < 5
    flat = cells[..., 0] * 5 + cells[..., 1]
    assert all(len(set(row)) == 9 for row in flat)
    assert not walls[cells[..., 0], cells[..., 1]].any()
    assert len(set(flat[:, 0].tolist())) == int((~walls).sum())  # the agent visits every free cell


def test_fixed_positions_ignore_the_key():
    params = fixed_params()
    for key in range(3):
        _, state = start(params, key=key)
        assert pos(state) == (1, 1)
        np.testing.assert_array_equal(np.asarray(state.obj_pos), [[1, 2], [3, 3]])


def test_params_vmap_as_a_sweep_axis():
    params = jax.tree.map(lambda *leaves: jnp.stack(leaves),
                          fixed_params(reward_table=[[1.0], [-1.0]]), fixed_params(reward_table=[[-1.0], [2.0]]))
    _, states = jax.vmap(ENV.reset, in_axes=(None, 0))(jax.random.key(0), params)
    _, _, rewards, terminated, _, _ = jax.vmap(ENV.step, in_axes=(None, 0, None, 0))(
        jax.random.key(1), states, jnp.int32(RIGHT), params)
    np.testing.assert_array_equal(np.asarray(rewards), [1.0, -1.0])
    np.testing.assert_array_equal(np.asarray(terminated), [True, False])


# -- action_rewards -------------------------------------------------------------------------

def test_action_rewards_hand_worked():
    params = fixed_params(obj_pos=[[1, 2], [0, 1]])  # +1 to the right, -1 above
    _, state = start(params)
    np.testing.assert_array_equal(np.asarray(ENV.action_rewards(state, params, state.reward_table)),
                                  [-1.0, 1.0, 0.0, 0.0])
    other = jnp.array([[0.5], [3.0]])
    np.testing.assert_array_equal(np.asarray(ENV.action_rewards(state, params, other)), [3.0, 0.5, 0.0, 0.0])


def test_action_rewards_agree_with_stepping_from_random_states():
    env = ObjectWorld(size=3, num_objects=4, num_colours=2, num_shapes=2)
    walls = np.zeros((3, 3), bool)
    walls[0, 2] = True
    params = make_params(env, walls=walls, reward_table=[[1.0, 0.5], [-1.0, -0.25]],
                         obj_shape=[0, 1, 0, 1], terminate_when_rewarded_collected=False)
    other_table = jnp.array([[0.0, 2.0], [3.0, -4.0]])

    def check(key):
        _, state = env.reset_env(key, params)
        predicted = env.action_rewards(state, params, state.reward_table)
        predicted_other = env.action_rewards(state, params, other_table)
        stepped = jax.vmap(lambda a: env.step_env(key, state, a, params)[2])(jnp.arange(4))
        stepped_other = jax.vmap(lambda a: env.step_env(key, state.replace(reward_table=other_table), a,
                                                        params)[2])(jnp.arange(4))
        return predicted, stepped, predicted_other, stepped_other

    predicted, stepped, predicted_other, stepped_other = jax.jit(jax.vmap(check))(
        jax.random.split(jax.random.key(2), 200))
    np.testing.assert_array_equal(np.asarray(predicted), np.asarray(stepped))
    np.testing.assert_array_equal(np.asarray(predicted_other), np.asarray(stepped_other))
    assert (np.asarray(stepped) != 0).any(axis=1).mean() > 0.5  # most states offer a collection


# -- jit, vmap, determinism ----------------------------------------------------------------

ROLLOUT_ENV = ObjectWorld(size=3, num_objects=2)  # small, so episodes both terminate and truncate
ROLLOUT_PARAMS = make_params(ROLLOUT_ENV, reward_shift_prob=0.5, max_steps_in_episode=6)
ROLLOUT_STEPS = 16


def rollout(key):
    """Random-action rollout through `reset`/`step` (auto-reset included); a pytree of
    per-step arrays with a leading [T] axis. Under `jax.disable_jit` the scan runs as a
    plain Python loop of eager `reset_env`/`step_env` calls: the unjitted reference."""
    env, params = ROLLOUT_ENV, ROLLOUT_PARAMS
    key, k_reset = jax.random.split(key)
    _, state = env.reset(k_reset, params)

    def one_step(state, key):
        k_act, k_step = jax.random.split(key)
        action = env.action_space(params).sample(k_act)
        obs, state, reward, terminated, truncated, info = env.step(k_step, state, action, params)
        return state, (obs, state, action, reward, terminated, truncated, info)

    return jax.lax.scan(one_step, state, jax.random.split(key, ROLLOUT_STEPS))[1]


def test_jit_and_vmap_match_unjitted_reference():
    keys = jax.random.split(jax.random.key(3), 3)
    with jax.disable_jit():
        reference = [rollout(k) for k in keys]
    jitted = jax.jit(rollout)(keys[0])
    batched = jax.jit(jax.vmap(rollout))(keys)
    jax.tree.map(np.testing.assert_array_equal, reference[0], jitted)
    for i, ref in enumerate(reference):
        jax.tree.map(lambda r, b, i=i: np.testing.assert_array_equal(r, b[i]), ref, batched)
    # Episodes ended both ways, so auto-reset after each was compared too.
    assert any(np.asarray(ref[4]).any() for ref in reference) and any(np.asarray(ref[5]).any() for ref in reference)
    assert any((np.asarray(ref[3]) != 0).any() for ref in reference)  # some reward was given


def test_same_key_same_rollout_different_key_different():
    run = jax.jit(rollout)
    first, again, other = run(jax.random.key(7)), run(jax.random.key(7)), run(jax.random.key(8))
    jax.tree.map(np.testing.assert_array_equal, first, again)
    assert not np.array_equal(np.asarray(first[0]), np.asarray(other[0]))


# -- observations ------------------------------------------------------------------------------

@pytest.mark.parametrize("view", ["flat", "image", "egocentric"])
@pytest.mark.parametrize("num_shapes", [1, 2])
def test_observation_matches_space(view, num_shapes):
    env = ObjectWorld(size=4, num_objects=3, num_colours=2, num_shapes=num_shapes, obs_view=view)
    params = env.default_params
    obs, state = env.reset(jax.random.key(0), params)
    space = env.observation_space(params)
    assert obs.shape == space.shape and obs.dtype == jnp.float32
    assert bool(space.contains(obs))
    expected = {"image": (2 + 2 + (2 if num_shapes > 1 else 0), 4, 4),
                "flat": ((2 + 2 + (2 if num_shapes > 1 else 0)) * 16 + 2,),
                "egocentric": ((1 + 2 + (2 if num_shapes > 1 else 0)) * 49 + 2,)}[view]
    assert space.shape == expected
    observed = env.observe(jax.random.key(1), state, jnp.int32(0), params)
    np.testing.assert_array_equal(np.asarray(observed), np.asarray(obs))
    assert env.action_space(params).n == env.num_actions == 4 and env.name == "ObjectWorld"


def test_image_planes_of_a_hand_made_state():
    env = ObjectWorld(size=3, num_objects=3, num_colours=2, num_shapes=2, obs_view="image")
    walls = np.zeros((3, 3), bool)
    walls[1, 1] = True
    params = make_params(env, walls=walls)
    state = EnvState(agent_pos=jnp.array([2, 0]), obj_pos=jnp.array([[0, 0], [0, 2], [2, 2]]),
                     obj_colour=jnp.array([0, 1, 1]), obj_shape=jnp.array([1, 0, 1]),
                     obj_present=jnp.array([True, True, False]), reward_table=jnp.ones((2, 2)),
                     colour_shift=jnp.int32(0), last_collected=jnp.int32(2), time=jnp.int32(4))
    image = np.asarray(env.get_obs(state, params))
    expected = np.zeros((6, 3, 3), np.float32)
    expected[0, 2, 0] = 1.0          # agent
    expected[1, 1, 1] = 1.0          # wall
    expected[2, 0, 0] = 1.0          # colour 0: object 0
    expected[3, 0, 2] = 1.0          # colour 1: object 1 (object 2 is not present)
    expected[5, 0, 0] = 1.0          # shape 1: object 0
    expected[4, 0, 2] = 1.0          # shape 0: object 1
    np.testing.assert_array_equal(image, expected)
    flat = ObjectWorld(size=3, num_objects=3, num_colours=2, num_shapes=2)
    obs = np.asarray(flat.get_obs(state, params))
    np.testing.assert_array_equal(obs[:-2], expected.ravel())
    np.testing.assert_array_equal(obs[-2:], [0.0, 1.0])  # object 2 (colour 1) was collected last


def test_egocentric_view_centres_agent():
    env = ObjectWorld(size=4, num_objects=2, num_colours=2, obs_view="egocentric")
    params = make_params(env, randomize_positions=False, agent_start=[0, 0], obj_pos=[[0, 1], [3, 3]],
                         obj_colour=[0, 1])
    _, state = env.reset(jax.random.key(0), params)
    ego = np.asarray(env.egocentric(state, params))  # [walls, colour 0, colour 1] x 7 x 7
    assert ego.shape == (3, 7, 7)
    assert ego[1, 3, 4] == 1.0 and ego[2, 6, 6] == 1.0  # right of the agent; 3 down, 3 right
    assert ego[0, 2, 3] == 1.0 and ego[0, 3, 3] == 0.0  # above the grid reads as wall


# -- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,match", [
    (dict(size=1), "size must be >= 2"),
    (dict(num_objects=0), "num_objects must be >= 1"),
    (dict(size=2, num_objects=4), "must fit"),
    (dict(num_colours=0), "num_colours"),
    (dict(obs_view="pixels"), "obs_view"),
])
def test_constructor_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ObjectWorld(**kwargs)


@pytest.mark.parametrize("overrides,match", [
    (dict(speed=2), "no field 'speed'"),
    (dict(obj_colour=[0, 1, 1]), "obj_colour must have shape"),
    (dict(obj_colour=[0, 2]), "obj_colour values"),
    (dict(reward_shift_prob=1.5), "reward_shift_prob"),
    (dict(walls=np.ones((4, 4), bool)), "free cells"),
    (dict(randomize_positions=False, obj_pos=[[1, 1], [3, 3]]), "distinct"),
    (dict(randomize_positions=False, obj_pos=[[0, 4], [3, 3]]), "grid"),
    (dict(randomize_positions=False, walls=np.eye(4, dtype=bool)), "walls"),
])
def test_make_params_validation(overrides, match):
    defaults = dict(agent_start=[1, 1]) if "randomize_positions" in overrides else {}
    with pytest.raises(ValueError, match=match):
        make_params(ENV, **{**defaults, **overrides})


def test_make_params_types_and_absent_objects():
    params = make_params(ENV, max_steps_in_episode=7, reward_shift_prob=1, obj_present=[1, 0])
    assert params.max_steps_in_episode.dtype == jnp.int32 and params.reward_shift_prob.dtype == jnp.float32
    assert params.obj_present.dtype == jnp.bool_
    # An absent object may sit anywhere in the grid, even on the agent's cell.
    make_params(ENV, randomize_positions=False, agent_start=[1, 1], obj_pos=[[0, 0], [1, 1]], obj_present=[1, 0])
