"""The numpy ObjectWorld (the sb3 peer's env in `innerlab bench`) against the JAX one: both
stepped with the same random actions from the same states (drawn by the JAX reset, and re-read
after every JAX auto-reset), observations exact and rewards/terminated/truncated equal at
every step; hand-worked transitions; reset distribution; bad input; the sb3 peer's smoke run."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from innerlab.bench.np_objectworld import NumpyObjectWorld, env_steps_per_s
from innerlab.channels import ChannelParams, RewardChannel
from innerlab.envs import ObjectWorld, make_params

UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3

WALLS_5 = np.zeros((5, 5), bool)
WALLS_5[1, 1:4] = WALLS_5[3, 2] = True
LEVEL_5 = dict(walls=WALLS_5, obj_colour=[0, 1, 2, 1], obj_shape=[0, 1, 0, 0],
               reward_table=[[1.0, 0.5], [-1.0, 2.0], [-0.5, -1.0]])

# name: (ObjectWorld sizes, JAX params overrides, NumpyObjectWorld kwargs, with the `prev`
# reward channel, envs, steps). "bench" is the benchmark's configuration, run through
# RewardChannel "prev" so that one compilation checks the plain flat view (the observation
# less its last value), the flat view + prev reward (as the side-channels `prev` condition
# observes it) and the egocentric view; "walls_shapes" exercises the general paths.
CONFIGS = {
    "bench": (dict(size=7, num_objects=6, num_colours=2), dict(max_steps_in_episode=30), dict(), True, 64, 90),
    "walls_shapes": (dict(size=5, num_objects=4, num_colours=3, num_shapes=2),
                     dict(max_steps_in_episode=12, **LEVEL_5),
                     dict(size=5, num_objects=4, num_colours=3, num_shapes=2, max_steps=12, **LEVEL_5), False, 16, 60),
}


def state_fields(state, index) -> dict:
    """set_state's arguments for env `index` of a batched JAX EnvState (or ChannelState)."""
    signal = None
    if hasattr(state, "signal"):
        signal, state = state.signal, state.env
    fields = {name: np.asarray(getattr(state, name))[index] for name in
              ("agent_pos", "obj_pos", "obj_colour", "obj_shape", "obj_present", "reward_table")}
    fields["time"] = int(np.asarray(state.time)[index])
    fields["last_collected"] = int(np.asarray(state.last_collected)[index])
    if signal is not None:
        fields["prev_reward"] = float(np.asarray(signal)[index, 0])
    return fields


def jax_rollout(sizes, overrides, channel, key, num_envs, steps):
    """num_envs JAX ObjectWorlds (flat view, in RewardChannel "prev" if `channel`) reset, then
    `steps` of gymnax's auto-resetting `step` with uniform random actions, one compiled call.

    Returns host arrays: actions [T, B]; at reset: obs [B, D], egocentric obs, states; per
    step: obs (after any auto-reset) [T, B, D], its egocentric view, states, reward,
    terminated, truncated, final_observation (before the auto-reset).
    """
    world = ObjectWorld(**sizes)
    params = make_params(world, **overrides)
    env, env_params = (RewardChannel(world, mode="prev"), ChannelParams(env=params)) if channel else (world, params)
    ego_world = ObjectWorld(**sizes, obs_view="egocentric")
    ego = jax.vmap(lambda state: ego_world.get_obs(state.env if channel else state, params))

    def run(key):
        k_reset, k_act, k_step = jax.random.split(key, 3)
        obs0, state0 = jax.vmap(env.reset, (0, None))(jax.random.split(k_reset, num_envs), env_params)
        actions = jax.random.randint(k_act, (steps, num_envs), 0, 4)

        def body(state, inputs):
            action, k = inputs
            obs, state, reward, terminated, truncated, info = jax.vmap(env.step, (0, 0, 0, None))(
                jax.random.split(k, num_envs), state, action, env_params)
            return state, (obs, ego(state), state, reward, terminated, truncated, info["final_observation"])

        _, out = jax.lax.scan(body, state0, (actions, jax.random.split(k_step, steps)))
        return actions, (obs0, ego(state0), state0), out

    return jax.device_get(jax.jit(run)(key))


@pytest.mark.parametrize("name", list(CONFIGS))
def test_parity_with_jax_on_random_episodes(name):
    sizes, overrides, np_kwargs, channel, num_envs, steps = CONFIGS[name]
    actions, (obs0, ego0, state0), (obs_t, ego_t, state_t, reward_t, term_t, trunc_t, final_t) = jax_rollout(
        sizes, overrides, channel, jax.random.key(0), num_envs, steps)
    flat_dim = obs0.shape[1] - channel
    # Each numpy view and the slice of the JAX arrays it must equal: (reset/after-step obs,
    # final obs, or None where the JAX side has no such array).
    views = {"flat": (NumpyObjectWorld(**np_kwargs), lambda a: a[..., :flat_dim], True),
             "egocentric": (NumpyObjectWorld(**np_kwargs, obs_view="egocentric"), None, False)}
    if channel:
        views["prev_reward"] = (NumpyObjectWorld(**np_kwargs, prev_reward=True), lambda a: a, True)
    episodes = terminations = truncations = positive = negative = 0

    def expected(view, index, t=None):
        """The JAX observation of `view` for env `index` after step t (at reset if None)."""
        _, cut, _ = views[view]
        if t is None:
            return ego0[index] if cut is None else cut(obs0[index])
        return ego_t[t, index] if cut is None else cut(obs_t[t, index])

    for b in range(num_envs):
        for view, (np_env, _, _) in views.items():
            np.testing.assert_array_equal(np_env.set_state(**state_fields(state0, b)), expected(view, b),
                                          err_msg=f"{name} {view}: env {b} at reset")
        episodes += 1
        for t in range(steps):
            done = bool(term_t[t, b] | trunc_t[t, b])
            for view, (np_env, cut, has_final) in views.items():
                where = f"{name} {view}: env {b}, step {t}, action {int(actions[t, b])}"
                obs, reward, terminated, truncated, info = np_env.step(int(actions[t, b]))
                assert obs.dtype == np.float32 and obs.shape == np_env.observation_space.shape, where
                if has_final:
                    np.testing.assert_array_equal(obs, cut(final_t[t, b]), err_msg=where)
                elif not done:  # the egocentric view is compared on the state after the step
                    np.testing.assert_array_equal(obs, expected(view, b, t), err_msg=where)
                assert reward == reward_t[t, b], where
                assert terminated == bool(term_t[t, b]) and truncated == bool(trunc_t[t, b]), where
                if done:  # the JAX env auto-reset: carry on from its new episode
                    obs = np_env.set_state(**state_fields(jax.tree.map(lambda x: x[t], state_t), b))
                    np.testing.assert_array_equal(obs, expected(view, b, t), err_msg=where + " (reset)")
            positive += reward > 0
            negative += reward < 0
            terminations += terminated
            truncations += truncated
            episodes += done
    assert episodes >= 2 * num_envs and truncations > 0 and positive > 0 and negative > 0
    if name == "bench":  # the configuration that matters: termination was compared too
        assert terminations > 0 and episodes >= 150


def test_reset_matches_jax_observation_and_distribution():
    np_env = NumpyObjectWorld()
    jax_env = ObjectWorld(size=7, num_objects=6, num_colours=2)
    params = make_params(jax_env, max_steps_in_episode=30)
    _, template = jax_env.reset(jax.random.key(0), params)
    get_obs = jax.jit(jax_env.get_obs)
    counts = np.zeros(49)
    for episode in range(1000):
        obs, info = np_env.reset(seed=episode)
        cells = np.concatenate([[[np_env.agent_row, np_env.agent_col]], np_env.obj_pos])
        assert len({tuple(c) for c in cells}) == 7 and np_env.obj_present.all() and info == {}
        np.testing.assert_array_equal(np_env.obj_colour, [0, 0, 0, 1, 1, 1])
        counts[cells[:, 0] * 7 + cells[:, 1]] += 1
        if episode < 5:
            state = template.replace(agent_pos=jnp.asarray(cells[0], jnp.int32),
                                     obj_pos=jnp.asarray(cells[1:], jnp.int32))
            np.testing.assert_array_equal(obs, get_obs(state, params))
    # Every cell equally likely to be occupied: 7000 draws over 49 cells, chi-square at 1e-3.
    from scipy.stats import chisquare
    assert chisquare(counts).pvalue > 1e-3
    a, _ = np_env.reset(seed=3)
    b, _ = np_env.reset(seed=3)
    np.testing.assert_array_equal(a, b)


# -- hand-worked transitions, each checked against the JAX env too -------------------------
JAX_ENV = ObjectWorld(size=7, num_objects=6, num_colours=2)
JAX_PARAMS = make_params(JAX_ENV, max_steps_in_episode=30)
_JAX_STEP = jax.jit(lambda state, action, params: JAX_ENV.step_env(jax.random.key(0), state, action, params))


def layout(**overrides) -> dict:
    """Agent at (0,0); colour-0 (+1) objects 0,1,2 at (0,1), (3,3), (6,6); colour-1 (-1)
    objects 3,4,5 at (1,0), (5,0), (0,6).

        A 0 . . . . 5
        3 . . . . . .
        . . . . . . .
        . . . 1 . . .
        . . . . . . .
        4 . . . . . .
        . . . . . . 2
    """
    fields = dict(agent_pos=[0, 0], obj_pos=[[0, 1], [3, 3], [6, 6], [1, 0], [5, 0], [0, 6]],
                  obj_colour=[0, 0, 0, 1, 1, 1], obj_shape=[0] * 6, obj_present=[True] * 6, time=0)
    return {**fields, **overrides}


def both(fields, actions, walls=None):
    """Step the numpy env and the JAX env from `fields`; return the numpy results per step
    after asserting that the JAX env gave the same."""
    np_env = NumpyObjectWorld(walls=walls)
    params = JAX_PARAMS if walls is None else make_params(JAX_ENV, max_steps_in_episode=30, walls=walls)
    np_env.set_state(**fields)
    _, state = JAX_ENV.reset(jax.random.key(0), params)
    state = state.replace(**{k: jnp.asarray(v, getattr(state, k).dtype) for k, v in fields.items()})
    results = []
    for action in actions:
        obs, reward, terminated, truncated, info = np_env.step(action)
        j_obs, state, j_reward, j_terminated, _ = _JAX_STEP(state, jnp.int32(action), params)
        np.testing.assert_array_equal(obs, j_obs)
        assert (reward, terminated, truncated, info["collected"]) == (
            float(j_reward), bool(j_terminated), bool(JAX_ENV.is_truncated(state, params)), int(state.last_collected))
        results.append((obs, reward, terminated, truncated, info))
    return np_env, results


def agent_cell(obs):
    return tuple(int(i) for i in np.argwhere(obs[:49].reshape(7, 7))[0])


def test_border_and_wall_block_the_move():
    np_env, results = both(layout(), [UP, LEFT])
    assert [agent_cell(r[0]) for r in results] == [(0, 0), (0, 0)]
    assert [r[1] for r in results] == [0.0, 0.0] and np_env.time == 2
    walls = np.zeros((7, 7), bool)
    walls[3, 4] = True
    np_env, results = both(layout(agent_pos=[3, 5], obj_pos=[[0, 1], [3, 3], [6, 6], [1, 0], [5, 0], [0, 6]]),
                           [LEFT, DOWN, LEFT, UP, LEFT, LEFT], walls=walls)
    assert [agent_cell(r[0]) for r in results] == [(3, 5), (4, 5), (4, 4), (4, 4), (4, 3), (4, 2)]
    assert results[0][0][49:98].reshape(7, 7)[3, 4] == 1.0  # the walls plane


def test_collecting_plus_one_then_minus_one():
    np_env, results = both(layout(), [RIGHT, LEFT, DOWN, RIGHT])
    (o1, r1, t1, _, i1), (o2, r2, _, _, i2), (o3, r3, _, _, i3), (o4, r4, _, _, _) = results
    assert (r1, i1["collected"], i1["collected_colour"], t1) == (1.0, 0, 0, False)
    np.testing.assert_array_equal(o1[-2:], [1.0, 0.0])  # collected colour 0 this step
    assert o1[2 * 49 + 1] == 0.0  # object 0 gone from the colour-0 plane at (0,1)
    assert (r2, i2["collected"]) == (0.0, -1) and o2[-2:].sum() == 0.0  # the one-hot lasts one step
    assert (r3, i3["collected"], i3["collected_colour"]) == (-1.0, 3, 1)
    np.testing.assert_array_equal(o3[-2:], [0.0, 1.0])
    assert o3[3 * 49 + 7] == 0.0  # object 3 gone from the colour-1 plane at (1,0)
    assert r4 == 0.0 and np_env.obj_present.tolist() == [False, True, True, False, True, True]


def test_termination_when_the_last_rewarded_object_is_collected():
    fields = layout(obj_present=[True, False, False, True, True, True])
    _, results = both(fields, [RIGHT])
    assert results[0][1:4] == (1.0, True, False)
    # With no rewarded object left the episode is over however it started.
    _, results = both(layout(obj_present=[False, False, False, True, True, True]), [DOWN])
    assert results[0][1:4] == (-1.0, True, False)


def test_truncation_at_step_30():
    _, results = both(layout(time=28), [DOWN, DOWN])  # collect object 3 at step 29, move on at 30
    assert [r[3] for r in results] == [False, True] and not any(r[2] for r in results)
    # Terminated and truncated together on the 30th step.
    _, results = both(layout(time=29, obj_present=[True, False, False, True, True, True]), [RIGHT])
    assert results[0][2:4] == (True, True)


@pytest.mark.parametrize("action", [4, -1, 1.5, "up", None, np.array([0, 1])])
def test_bad_action_is_refused(action):
    np_env = NumpyObjectWorld()
    np_env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action must be an integer in \[0, 4\)"):
        np_env.step(action)


def test_bad_construction_and_state():
    with pytest.raises(RuntimeError, match="reset"):
        NumpyObjectWorld().step(0)
    with pytest.raises(ValueError, match="obs_view"):
        NumpyObjectWorld(obs_view="image")
    with pytest.raises(ValueError, match="free cells"):
        NumpyObjectWorld(size=3, num_objects=6, walls=np.eye(3, dtype=bool))
    np_env = NumpyObjectWorld()
    with pytest.raises(ValueError, match="distinct"):
        np_env.set_state(**layout(agent_pos=[0, 1]))
    with pytest.raises(ValueError, match="colours"):
        np_env.set_state(**layout(obj_colour=[0, 0, 0, 1, 1, 2]))
    np_env.set_state(**layout(agent_pos=[0, 1], obj_present=[False] + [True] * 5))  # a gone object's cell is free
    # numpy integer actions (what DummyVecEnv passes) are fine.
    assert np_env.step(np.int64(LEFT))[1] == 0.0 and np_env.step(np.array(DOWN))[1] == -1.0


def test_gymnasium_and_sb3_env_checks():
    env_checker = pytest.importorskip("stable_baselines3.common.env_checker")
    env_checker.check_env(NumpyObjectWorld(), warn=True)
    env_checker.check_env(NumpyObjectWorld(obs_view="egocentric", prev_reward=True), warn=True)
    assert env_steps_per_s(1, 200) > 0 and env_steps_per_s(4, 200) > 0


def test_sb3_peer_tiny_run():
    pytest.importorskip("sb3_contrib")
    from innerlab.bench.sb3_peer import sb3_recurrent_throughput

    # One torch thread: on a busy 2-core machine two OpenMP threads can spin-wait on each
    # other for a whole time slice per op, which turns this ~0.2 s run into tens of seconds.
    for lstm_critic in (False, True):
        result = sb3_recurrent_throughput(num_envs=2, hidden=16, rollout_len=16, update_epochs=1, num_minibatches=2,
                                          total_steps=64, lstm_critic=lstm_critic, warmup=False, torch_threads=1)
        assert result["steps_per_s"] > 0 and result["steps"] == 64 and result["params"] > 0
        assert result["config"]["shared_lstm"] != lstm_critic and result["config"]["torch_threads"] == 1


def test_sb3_peer_matches_innerlab_network_size():
    pytest.importorskip("sb3_contrib")
    from innerlab.agents import NetworkConfig, make_network
    from innerlab.bench.sb3_peer import build_model

    for obs_dim, prev_reward in ((198, False), (199, True)):
        network = make_network(NetworkConfig(arch="lstm", width=128), obs_dim, 4)
        innerlab_params = sum(x.size for x in jax.tree.leaves(jax.eval_shape(network.init, jax.random.key(0))))
        model = build_model(num_envs=2, hidden=128, rollout_len=16, update_epochs=1, num_minibatches=2,
                            lstm_critic=False, total_steps=32, env_kwargs=dict(prev_reward=prev_reward))
        sb3_params = sum(p.numel() for p in model.policy.parameters())
        assert model.observation_space.shape == (obs_dim,)
        # Same layers; torch's LSTM has two bias vectors (input and hidden) where flax has one.
        assert sb3_params == innerlab_params + 4 * 128
