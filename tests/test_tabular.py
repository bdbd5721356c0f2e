"""Tabular export of ObjectWorld levels: hand-worked transitions, parity with the JAX env on
random rollouts, linear features, and EPIC on exported rewards."""

import jax
import numpy as np
import pytest

from innerlab.envs import ObjectWorld, make_params
from innerlab.envs.tabular import state_batch, tabulate
from innerlab.rewards import epic_distance

UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3


def one_object_level():
    env = ObjectWorld(size=3, num_objects=1, num_colours=1, obs_view="flat")
    params = make_params(env, reward_table=[[1.0]], randomize_positions=False, agent_start=[0, 0], obj_pos=[[0, 2]])
    return env, params


def two_colour_level(table=((1.0,), (-1.0,))):
    env = ObjectWorld(size=3, num_objects=2, num_colours=2, obs_view="flat")
    params = make_params(env, reward_table=[list(row) for row in table], randomize_positions=False,
                         agent_start=[1, 1], obj_pos=[[0, 2], [2, 0]], obj_colour=[0, 1],
                         walls=[[False, False, False], [False, False, False], [False, True, False]])
    return env, params


def test_hand_worked_transitions():
    env, params = one_object_level()
    mdp = tabulate(env, params)
    # 8 cells with the object present (not on its cell) + 9 with it gone + the terminal state.
    assert mdp.num_states == 18 and mdp.terminal == 17 and mdp.num_actions == 4
    np.testing.assert_allclose(mdp.transitions.sum(-1), 1.0)
    start = mdp.index((0, 0), [True])
    assert mdp.initial[start] == 1.0 and mdp.initial.sum() == 1.0
    # Up from the corner bumps the wall: stays, reward 0.
    assert mdp.transitions[start, UP, start] == 1.0 and mdp.reward[start, UP].sum() == 0.0
    # Right twice collects the object, which ends the episode (its only rewarded object).
    middle = mdp.index((0, 1), [True])
    assert mdp.transitions[start, RIGHT, middle] == 1.0
    assert mdp.transitions[middle, RIGHT, mdp.terminal] == 1.0
    assert mdp.reward[middle, RIGHT, mdp.terminal] == 1.0
    np.testing.assert_array_equal(mdp.features[middle, RIGHT, mdp.terminal], [1.0])
    # The terminal state absorbs with reward 0.
    assert (mdp.transitions[mdp.terminal, :, mdp.terminal] == 1.0).all() and not mdp.reward[mdp.terminal].any()


def test_walls_and_collecting_a_penalised_object():
    env, params = two_colour_level()
    mdp = tabulate(env, params)
    start = mdp.index((1, 1), [True, True])
    assert mdp.transitions[start, DOWN, start] == 1.0, "(2, 1) is a wall"
    left = mdp.index((1, 0), [True, True])
    after = mdp.index((2, 0), [True, False])  # collecting the -1 object does not end the episode
    assert mdp.transitions[left, DOWN, after] == 1.0 and mdp.reward[left, DOWN, after] == -1.0
    np.testing.assert_array_equal(mdp.features[left, DOWN, after], [0.0, 1.0])


def test_rewards_are_linear_in_the_features():
    env, params = two_colour_level()
    mdp = tabulate(env, params)
    table = np.asarray(params.reward_table)
    weights = np.array([table[c, s] for c, s in zip(np.asarray(params.obj_colour), np.asarray(params.obj_shape))])
    np.testing.assert_allclose(mdp.features @ weights, mdp.reward)


@pytest.mark.parametrize("seed", [0, 1])
def test_parity_with_the_jax_env_on_random_rollouts(seed):
    env, params = two_colour_level()
    mdp = tabulate(env, params)
    rng = np.random.default_rng(seed)
    _, state = env.reset(jax.random.key(seed), params)
    step = jax.jit(env.step_env)
    s = mdp.index(np.asarray(state.agent_pos), np.asarray(state.obj_present))
    for t in range(60):
        a = int(rng.integers(4))
        _, state, reward, terminated, _ = step(jax.random.key(t), state, a, params)
        expected = int(np.argmax(mdp.transitions[s, a]))
        assert mdp.reward[s, a, expected] == pytest.approx(float(reward))
        if bool(terminated):
            assert expected == mdp.terminal
            _, state = env.reset(jax.random.key(1000 + t), params)
            s = mdp.index(np.asarray(state.agent_pos), np.asarray(state.obj_present))
        else:
            assert expected == mdp.index(np.asarray(state.agent_pos), np.asarray(state.obj_present))
            s = expected


def test_epic_on_exported_rewards():
    env, params = two_colour_level()
    mdp = tabulate(env, params)
    swapped = tabulate(*two_colour_level(table=((-1.0,), (1.0,))))
    gamma = 0.9
    potential = np.random.default_rng(0).normal(size=mdp.num_states)
    shaped = 2.0 * mdp.reward + gamma * potential[None, None, :] - potential[:, None, None]
    assert epic_distance(mdp.reward, shaped, gamma) < 1e-6
    assert epic_distance(mdp.reward, swapped.reward, gamma) > 0.5


def test_random_levels_are_rejected():
    env = ObjectWorld(size=3, num_objects=1, obs_view="flat")
    with pytest.raises(ValueError, match="fixed level"):
        tabulate(env, env.default_params)


# -- state-action rewards, the index table and state batches (for learned reward models) ----------

def test_successor_and_state_action_reward_hand_worked():
    env, params = two_colour_level()  # +1 at (0, 2), -1 at (2, 0), wall at (2, 1)
    mdp = tabulate(env, params)
    assert mdp.successor.shape == (mdp.num_states, 4) and mdp.state_action_reward.shape == (mdp.num_states, 4)
    both = [True, True]
    start = mdp.index((1, 1), both)
    np.testing.assert_array_equal(mdp.successor[start], [mdp.index((0, 1), both), mdp.index((1, 2), both), start,
                                                         mdp.index((1, 0), both)])
    np.testing.assert_array_equal(mdp.state_action_reward[start], [0.0, 0.0, 0.0, 0.0])
    # From (0, 1) right collects the +1: no positive object is left, the episode ends.
    top = mdp.index((0, 1), both)
    assert mdp.successor[top, RIGHT] == mdp.terminal and mdp.state_action_reward[top, RIGHT] == 1.0
    # From (1, 0) down collects the -1 and goes on; left bumps the edge.
    left = mdp.index((1, 0), both)
    assert mdp.successor[left, DOWN] == mdp.index((2, 0), [True, False])
    np.testing.assert_array_equal(mdp.state_action_reward[left], [0.0, 0.0, -1.0, 0.0])
    assert mdp.successor[left, LEFT] == left
    # With the -1 already gone, stepping on its cell gives nothing.
    gone = mdp.index((1, 0), [True, False])
    assert mdp.successor[gone, DOWN] == mdp.index((2, 0), [True, False])
    assert mdp.state_action_reward[gone, DOWN] == 0.0
    # The terminal state loops with reward 0; and R(s, a) is the reward of the one transition.
    np.testing.assert_array_equal(mdp.successor[mdp.terminal], mdp.terminal)
    assert not mdp.state_action_reward[mdp.terminal].any()
    states = np.arange(mdp.num_states)[:, None]
    np.testing.assert_array_equal(mdp.state_action_reward, mdp.reward[states, np.arange(4)[None], mdp.successor])
    assert mdp.state_action_reward.sum() == pytest.approx(
        mdp.reward.sum()), "every reward lies on a possible transition"


def test_index_table_inverts_the_state_list():
    env, params = two_colour_level()
    mdp = tabulate(env, params)
    table = mdp.index_table(3)
    assert table.shape == (3, 3, 4) and table.dtype == np.int32
    for s in range(mdp.num_states - 1):
        row, col = mdp.agent_pos[s]
        bits = int(mdp.present[s, 0]) + 2 * int(mdp.present[s, 1])
        assert table[row, col, bits] == s
    # Every other entry is -1: S - 1 states fill S - 1 entries.
    assert (table >= 0).sum() == mdp.num_states - 1 and set(np.unique(table[table < 0])) == {-1}
    # Hand-worked: the start (1, 1) with both present is bits 3; the wall (2, 1) is never a state;
    # (0, 2) holds object 0, so it is a state only once object 0 is gone (bit 0 clear).
    assert table[1, 1, 3] == mdp.index((1, 1), [True, True])
    assert (table[2, 1] == -1).all()
    assert table[0, 2, 3] == -1 and table[0, 2, 1] == -1
    assert table[0, 2, 2] == mdp.index((0, 2), [False, True]) and table[0, 2, 0] == mdp.index((0, 2), [False, False])
    assert table[2, 0, 1] == mdp.index((2, 0), [True, False]) and table[2, 0, 3] == -1


def test_state_batch_gives_each_states_observation():
    env, params = two_colour_level()
    mdp = tabulate(env, params)
    obs = jax.jit(jax.vmap(env.get_obs, (0, None)))(state_batch(env, params, mdp), params)
    assert obs.shape == (mdp.num_states - 1, env.observation_space(params).shape[0])
    assert len(np.unique(np.asarray(obs), axis=0)) == mdp.num_states - 1, "states look different"
    for cell, present in (((1, 1), [True, True]), ((0, 2), [False, True]), ((2, 0), [True, False]),
                          ((2, 2), [False, False])):
        level = params.replace(agent_start=np.asarray(cell, np.int32), obj_present=np.asarray(present))
        expected, _ = env.reset(jax.random.key(0), level)
        np.testing.assert_array_equal(obs[mdp.index(cell, present)], expected)
