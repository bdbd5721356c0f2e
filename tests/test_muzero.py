"""The MuZero-style agent (agents.muzero): config checks, shapes, the buffer pre-fill, acting,
evaluation bookkeeping, determinism, and (slow tier) that it learns an ObjectWorld."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from innerlab.agents.muzero import MuZeroConfig, make_muzero
from innerlab.envs import ObjectWorld, make_params

SMALL = dict(num_envs=4, rollout_len=4, buffer_len=16, total_steps=64, batch_size=8, sgd_steps=2, latent_dim=8,
             width=16, ensemble=3, num_simulations=2)


def test_config_defaults_and_derived_sizes():
    config = MuZeroConfig()
    # window = unroll 3 + td_steps 5 + 1 = 9; 16 envs x 8 steps = 128 per update; 40_960 / 128 = 320;
    # pre-fill ceil(9 / 8) = 2 rollouts.
    assert (config.window, config.steps_per_update, config.num_updates, config.prefill_rollouts) == (9, 128, 320, 2)
    assert MuZeroConfig(total_steps=255).num_updates == 1  # rounded down to whole updates
    MuZeroConfig(buffer_len=17)  # exactly one window (9) plus one rollout (8) fits


@pytest.mark.parametrize("fields, message", [
    (dict(buffer_len=16), r"buffer_len \(16\) must hold a training window .*= 9\) plus one rollout \(8\)"),
    (dict(buffer_len=12, rollout_len=4, unroll=1, td_steps=7), r"buffer_len \(12\) must hold"),
    (dict(total_steps=127), r"total_steps \(127\) must be at least one update .*= 128\)"),
    (dict(discount=1.5), r"discount must be in \[0, 1\], got 1.5"),
    (dict(discount=-0.1), r"discount must be in \[0, 1\]"),
    (dict(num_envs=0), "num_envs must be >= 1, got 0"),
    (dict(ensemble=0), "ensemble must be >= 1"),
    (dict(td_steps=0), "td_steps must be >= 1"),
])
def test_config_rejects_bad_values(fields, message):
    with pytest.raises(ValueError, match=message):
        MuZeroConfig(**fields)


def test_image_observations_are_rejected():
    env = ObjectWorld(size=3, num_objects=1, obs_view="image")
    with pytest.raises(ValueError, match="MuZero needs flat observations"):
        make_muzero(MuZeroConfig(**SMALL), env)


@pytest.fixture(scope="module")
def small():
    env = ObjectWorld(size=4, num_objects=2, num_colours=3, obs_view="egocentric")
    params = make_params(env, reward_table=[[1.0], [-1.0], [-0.5]])
    config = MuZeroConfig(**SMALL)
    agent = make_muzero(config, env)
    init = jax.jit(agent.init)
    return env, params, config, agent, init


def test_init_prefills_the_buffer(small):
    env, params, config, agent, init = small
    state = init(jax.random.key(0), params)
    # window = 3 + 5 + 1 = 9 steps, rollouts of 4: ceil(9 / 4) = 3 pre-fill rollouts = 12 steps of 16 slots.
    assert config.prefill_rollouts == 3
    assert int(state.buffer.count) == config.prefill_rollouts * config.rollout_len == 12
    d = env.observation_space(params).shape[0]
    assert state.buffer.obs.shape == (16, 4, d) and state.obs.shape == (4, d)
    filled = slice(0, 12)
    np.testing.assert_allclose(state.buffer.policy[filled].sum(-1), 1.0, atol=1e-5)
    assert ((state.buffer.action[filled] >= 0) & (state.buffer.action[filled] < 4)).all()
    assert np.isfinite(np.asarray(state.buffer.root_value[filled])).all()
    assert np.asarray(state.buffer.obs[filled]).any(axis=-1).all(), "every written slot holds a real observation"
    assert not np.asarray(state.buffer.obs[12:]).any() and not np.asarray(state.buffer.policy[12:]).any()
    # The rewards written are ObjectWorld's: 0 or a table entry.
    assert set(np.unique(np.asarray(state.buffer.reward[filled]))) <= {0.0, 1.0, -1.0, -0.5}
    assert int(state.updates) == 0


def test_reward_heads_act_and_search(small):
    env, params, config, agent, init = small
    state = init(jax.random.key(0), params)
    obs, action = state.obs[0], jnp.int32(2)
    heads = agent.reward_heads(state.params, obs, action)
    assert heads.shape == (config.ensemble,)
    assert len(set(np.asarray(heads).round(6))) == config.ensemble, "independently initialised heads differ"
    latent = agent.represent(state.params, obs)
    assert latent.shape == (config.latent_dim,)
    assert float(latent.min()) == pytest.approx(0.0) and float(latent.max()) == pytest.approx(1.0)  # min-max scaled
    np.testing.assert_allclose(agent.latent_reward_heads(state.params, latent, action), heads, rtol=1e-6)
    act = jax.jit(agent.act)
    obs = jnp.tile(state.obs, (64, 1))  # [256, D]
    greedy, out = act(state.params, jax.random.key(1), obs, 0.0)
    assert greedy.dtype == jnp.int32 and greedy.shape == (256,)
    np.testing.assert_array_equal(greedy, out.action)  # epsilon 0: always the search's action
    np.testing.assert_allclose(out.action_weights.sum(-1), 1.0, atol=1e-5)
    uniform, _ = act(state.params, jax.random.key(1), obs, 1.0)
    counts = np.bincount(np.asarray(uniform), minlength=4)
    assert counts.sum() == 256 and (counts > 40).all(), counts  # 64 expected each, sd 7


def test_run_is_deterministic(small):
    env, params, config, agent, init = small
    run = jax.jit(agent.run, static_argnums=2)

    def train(key):
        return run(init(key, params), params, 4)

    a, metrics = train(jax.random.key(3))
    b, _ = train(jax.random.key(3))
    c, _ = train(jax.random.key(4))
    leaves = lambda s: jax.tree.leaves(s.params)
    assert all(np.array_equal(x, y) for x, y in zip(leaves(a), leaves(b)))
    assert not all(np.array_equal(x, y) for x, y in zip(leaves(a), leaves(c)))
    # 4 updates of 4 x 4 steps after the 12-step pre-fill; the ring buffer wraps (28 > 16).
    assert int(a.updates) == 4 and int(a.buffer.count) == 12 + 4 * 4
    assert metrics["reward_loss"].shape == (4,) and np.isfinite(np.asarray(metrics["reward_loss"])).all()
    assert not all(np.array_equal(x, y) for x, y in zip(leaves(a), leaves(init(jax.random.key(3), params))))


def test_evaluate_counts_only_ended_episodes(small):
    """Fixed level, agent (0, 0), both +1 objects 5-6 steps away, episodes of 2 steps: nothing can
    be collected, every episode is truncated with return 0; with episodes of 5 steps nothing ends
    within the 4 evaluated steps (nan)."""
    env, _, config, agent, init = small
    level = make_params(env, reward_table=[[1.0], [-1.0], [-0.5]], randomize_positions=False, agent_start=[0, 0],
                        obj_pos=[[3, 3], [3, 2]], obj_colour=[0, 0], max_steps_in_episode=2)
    state = init(jax.random.key(0), level)
    evaluate = jax.jit(agent.evaluate, static_argnums=(3, 4))
    assert float(evaluate(state.params, jax.random.key(0), level, 4, 4, 1.0)) == 0.0
    assert np.isnan(float(evaluate(state.params, jax.random.key(0), level.replace(max_steps_in_episode=jnp.int32(5)),
                                   4, 4, 1.0)))
    # Episodes of 1 step from (0, 0) with a +1 at (0, 1) and a -1 at (3, 3): return 1 for right,
    # 0 for the others; 4 envs x 4 steps = 16 episodes, so the mean is a multiple of 1/16.
    near = make_params(env, reward_table=[[1.0], [-1.0], [-0.5]], randomize_positions=False, agent_start=[0, 0],
                       obj_pos=[[0, 1], [3, 3]], obj_colour=[0, 1], max_steps_in_episode=1)
    value = float(evaluate(state.params, jax.random.key(0), near, 4, 4, 1.0))
    assert 0.0 < value < 1.0 and 16 * value == pytest.approx(round(16 * value))


# -- the agent learns (issue 5's acceptance). In the slow tier since issue 17: 60 s of a cold fast
# suite on 2 cores, which had grown past its 6 minutes; the fast tier still trains the agent in
# robust-reward's smoke run, and the slow tier's quick preset requires it to learn there too. ---

@pytest.mark.slow
def test_the_model_based_agent_learns():
    """5 x 5 ObjectWorld, random positions, two +1 and two -1 objects, 20 steps: after 20_480 env
    steps per seed the greedy search policy's return is well above the uniform random policy's.
    Measured (keys 0-4, 3 seeds each): greedy per seed 0.53-1.21, random -0.23-0.17; mean greedy
    minus mean random 0.66-1.00 (1.00 for key 1, used here): the 0.5 margin holds for every key
    tried. About 30-40 s on 2 CPU cores, 28 s of it compilation."""
    env = ObjectWorld(size=5, num_objects=4, num_colours=3, obs_view="egocentric")
    params = make_params(env, reward_table=[[1.0], [-1.0], [-1.0]], obj_colour=[0, 0, 1, 1], max_steps_in_episode=20)
    config = MuZeroConfig(total_steps=20_480)
    agent = make_muzero(config, env)

    @jax.jit
    def train(key):
        k_train, k_eval = jax.random.split(key)
        state = agent.init(k_train, params)
        state, _ = agent.run(state, params, config.num_updates)
        return (agent.evaluate(state.params, k_eval, params, 16, 60),
                agent.evaluate(state.params, k_eval, params, 16, 60, epsilon=1.0))

    greedy, random = jax.vmap(train)(jax.random.split(jax.random.key(1), 3))
    greedy, random = np.asarray(greedy), np.asarray(random)
    assert np.isfinite(greedy).all() and np.isfinite(random).all()
    assert (greedy > random).all(), (greedy, random)
    assert greedy.mean() > random.mean() + 0.5, (greedy, random)
