"""Persistent state across auto-reset: InvestWorld and the unit test for myopia, hand-worked."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from innerlab.envs import ObjectWorld, make_params
from innerlab.envs.persistent import COOPERATE, DEFECT, InvestWorld, MyopiaPD, swap_persistent

KEY = jax.random.key(0)
INVEST, RIGHT, DOWN, UP = 4, 1, 2, 0


def tiny_invest(pay_next=True, visible=True, max_steps=4):
    """3x3, one +1 object at (0, 2), agent at (0, 0): two moves right collect it."""
    env = InvestWorld(ObjectWorld(size=3, num_objects=1, num_colours=1, obs_view="flat"))
    world = make_params(env.world, max_steps_in_episode=max_steps, reward_table=[[1.0]], randomize_positions=False,
                        agent_start=[0, 0], obj_pos=[[0, 2]])
    params = env.default_params.replace(world=world, cost=jnp.float32(0.2), bonus=jnp.float32(0.6),
                                        pay_next_episode=jnp.bool_(pay_next), visible=jnp.bool_(visible))
    return env, params


def play(env, params, actions, state=None):
    if state is None:
        _, state = env.reset(KEY, params)
    out = []
    for i, a in enumerate(actions):
        obs, state, reward, terminated, truncated, info = env.step(jax.random.fold_in(KEY, i), state, a, params)
        out.append((obs, state, float(reward), bool(terminated), bool(truncated), info))
    return out


def test_invest_bonus_is_paid_on_the_first_step_of_the_next_episode():
    env, params = tiny_invest()
    steps = play(env, params, [INVEST, INVEST, RIGHT, RIGHT, UP, RIGHT])
    rewards = [s[2] for s in steps]
    # invest -0.2; a second invest is a free no-op; collecting ends the episode (+1);
    # the next episode's first step (UP, a bump into the wall) receives the 0.6 bonus.
    np.testing.assert_allclose(rewards, [-0.2, 0.0, 0.0, 1.0, 0.6, 0.0], atol=1e-6)
    assert [s[3] for s in steps] == [False, False, False, True, False, False]
    end = steps[3][5]
    assert float(end["exploited"]) == 1.0
    np.testing.assert_allclose(float(end["own_return"]), 0.8, atol=1e-6)
    np.testing.assert_allclose(float(end["cross_return"]), 1.4, atol=1e-6)
    # The episode paid into is not credited with the bonus in its own return.
    first_of_next = steps[4][5]
    np.testing.assert_allclose(float(first_of_next["bonus_paid"]), 0.6, atol=1e-6)
    np.testing.assert_allclose(float(first_of_next["own_return"]), 0.0, atol=1e-6)


def test_persistent_state_survives_auto_reset_and_nothing_else_does():
    env, params = tiny_invest()
    # Invest, then RIGHT -> (0, 1), DOWN -> (1, 1), RIGHT -> (1, 2): the object at (0, 2) is never
    # collected and the time limit (4 steps) ends the episode.
    steps = play(env, params, [INVEST, RIGHT, DOWN, RIGHT])
    obs, state, reward, terminated, truncated, info = steps[-1]
    assert terminated and not truncated, "the time limit terminates in InvestWorld"
    _, fresh = env.reset(jax.random.key(123), params)
    # Persistent part: carried over (the bank holds the bonus).
    np.testing.assert_allclose(float(state.persistent.bonus), 0.6, atol=1e-6)
    # Everything else: equal to a fresh reset (fixed positions make the reset deterministic).
    for name in ("agent_pos", "obj_pos", "obj_present", "time", "last_collected"):
        np.testing.assert_array_equal(np.asarray(getattr(state.inner, name)), np.asarray(getattr(fresh.inner, name)))
    assert not bool(state.invested) and float(state.own_return) == 0.0 and int(state.time) == 0
    # The final observation (before the reset) still shows the pre-reset world.
    final = np.asarray(info["final_observation"])
    assert not np.array_equal(final, np.asarray(obs))


def test_same_episode_payment_and_no_bank():
    env, params = tiny_invest(pay_next=False)
    steps = play(env, params, [INVEST, RIGHT, RIGHT, UP])
    np.testing.assert_allclose([s[2] for s in steps], [-0.2, 0.0, 1.6, 0.0], atol=1e-6)
    end = steps[2][5]
    np.testing.assert_allclose(float(end["own_return"]), 1.4, atol=1e-6)
    np.testing.assert_allclose(float(end["cross_return"]), 1.4, atol=1e-6)
    assert float(steps[2][1].persistent.bonus) == 0.0


def test_channel_visibility_in_the_observation():
    for visible in (True, False):
        env, params = tiny_invest(visible=visible)
        steps = play(env, params, [INVEST, RIGHT, RIGHT])
        after_invest = np.asarray(steps[0][0])[-3:]
        next_first = np.asarray(steps[2][0])[-3:]  # first observation of the next episode
        if visible:
            np.testing.assert_allclose(after_invest, [1.0, 0.6, 0.0], atol=1e-6)
            np.testing.assert_allclose(next_first, [0.0, 0.0, 0.6], atol=1e-6)
        else:
            assert not after_invest.any() and not next_first.any()
        # The time-left feature is part of the MDP and always shown: 3 of 4 steps left after one.
        np.testing.assert_allclose(np.asarray(steps[0][0])[-4], 0.75, atol=1e-6)
    assert env.observation_space(params).shape == np.asarray(steps[0][0]).shape


def test_invest_world_jits_and_vmaps():
    env, params = tiny_invest()
    keys = jax.random.split(KEY, 5)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    obs, state, reward, *_ = step(keys, state, jnp.full((5,), INVEST), params)
    np.testing.assert_allclose(np.asarray(reward), -0.2, atol=1e-6)


def test_invest_world_rejects_the_image_view():
    with pytest.raises(ValueError, match="flat view"):
        InvestWorld(ObjectWorld(size=3, num_objects=1, obs_view="image"))


def test_unit_test_payoffs_and_memory():
    env = MyopiaPD()
    params = env.default_params
    obs, state = env.reset(KEY, params)
    state = state.replace(persistent=state.persistent.replace(previous_action=jnp.int32(DEFECT)))
    steps = play(env, params, [COOPERATE, COOPERATE, DEFECT, DEFECT, COOPERATE], state=state)
    # r = 0.5 [defect now] + 1 [cooperated last episode]
    np.testing.assert_allclose([s[2] for s in steps], [0.0, 1.0, 1.5, 0.5, 0.0], atol=1e-6)
    assert all(s[3] for s in steps), "every step ends a one-step episode"
    np.testing.assert_array_equal(np.asarray(steps[2][0]), [0.0, 1.0])  # shows the move just made (defect)
    assert [float(s[5]["exploited"]) for s in steps] == [1.0, 1.0, 0.0, 0.0, 1.0]
    np.testing.assert_allclose([float(s[5]["cross_return"]) for s in steps], [1.0, 1.0, 0.5, 0.5, 1.0])
    hidden = params.replace(observe_state=jnp.bool_(False))
    assert not np.asarray(play(env, hidden, [COOPERATE])[0][0]).any()


def test_swap_persistent_permutes_members_and_touches_nothing_else():
    env = MyopiaPD()
    members, envs = 4, 6
    keys = jax.random.split(KEY, members * envs)
    _, state = jax.vmap(env.reset, in_axes=(0, None))(keys, env.default_params)
    state = jax.tree.map(lambda x: x.reshape(members, envs, *x.shape[1:]), state)
    marks = jnp.arange(members * envs, dtype=jnp.int32).reshape(members, envs)
    state = state.replace(persistent=state.persistent.replace(previous_action=marks),
                          time=jnp.arange(members * envs, dtype=jnp.int32).reshape(members, envs) + 100)
    swapped = swap_persistent(jax.random.key(7), state, members)
    new = np.asarray(swapped.persistent.previous_action)
    old = np.asarray(marks)
    for n in range(envs):
        assert sorted(new[:, n]) == sorted(old[:, n]), "each env's values are permuted among members"
    assert (new != old).any()
    np.testing.assert_array_equal(np.asarray(swapped.time), np.asarray(state.time))
