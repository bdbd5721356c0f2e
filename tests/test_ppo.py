"""PPO and networks: shapes, recurrent reset, determinism, learning above a random policy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from innerlab.agents import HParams, NetworkConfig, PPOConfig, evaluate, make_network, make_train
from innerlab.envs import ObjectWorld, make_params


def _setup(arch="lstm", total_steps=4096, num_envs=16, width=32):
    env = ObjectWorld(size=4, num_objects=2, num_colours=2)
    params = make_params(env, max_steps_in_episode=12, obj_colour=[0, 1],
                         reward_table=[[1.0], [-1.0]])
    obs_dim = env.observation_space(params).shape[0]
    image = (env.image_channels, 4, 4) if arch == "cnn" else None  # the flat view is the image, then 2 more
    network = make_network(NetworkConfig(arch=arch, width=width, image_shape=image), obs_dim, env.num_actions)
    config = PPOConfig(num_envs=num_envs, rollout_len=16, total_steps=total_steps, num_minibatches=4)
    return env, params, network, make_train(config, env, network)


def _stats(info, reward):
    return {"return": reward}


@pytest.mark.parametrize("arch", ["mlp", "cnn", "lstm", "gru", "transformer"])
def test_every_arch_trains_and_is_deterministic(arch):
    env, params, network, trainer = _setup(arch, total_steps=2 * 16 * 16)
    train = jax.jit(jax.vmap(trainer.train, in_axes=(0, None, None)))
    keys = jax.random.split(jax.random.key(0), 2)
    hp = HParams(lr=jnp.float32(1e-3), ent_coef=jnp.float32(0.01))
    state_a, metrics_a = train(keys, hp, params)
    state_b, metrics_b = train(keys, hp, params)
    assert metrics_a["policy_loss"].shape == (2, 2)
    for leaf_a, leaf_b in zip(jax.tree.leaves(state_a.params), jax.tree.leaves(state_b.params)):
        np.testing.assert_array_equal(leaf_a, leaf_b)
    # Different seeds -> different parameters.
    first = jax.tree.leaves(state_a.params)[0]
    assert not np.array_equal(first[0], first[1])
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state_a.params))


@pytest.mark.parametrize("arch", ["lstm", "gru", "transformer"])
def test_recurrent_state_resets_on_is_first(arch):
    network = make_network(NetworkConfig(arch=arch, width=8, context=4), 5, 4)
    params = network.init(jax.random.key(0))
    obs = jnp.arange(5.0)
    fresh, logits_fresh, value_fresh = network.apply(params, network.initial_carry(), obs, jnp.array(True))
    # Build up some memory, then start a new episode: the output must equal a fresh start.
    carry = network.initial_carry()
    for i in range(3):
        carry, _, _ = network.apply(params, carry, obs * (i + 2), jnp.array(i == 0))
    _, logits_reset, value_reset = network.apply(params, carry, obs, jnp.array(True))
    _, logits_cont, _ = network.apply(params, carry, obs, jnp.array(False))
    np.testing.assert_allclose(logits_reset, logits_fresh, atol=1e-6)
    np.testing.assert_allclose(value_reset, value_fresh, atol=1e-6)
    assert not np.allclose(logits_cont, logits_fresh, atol=1e-7)


def test_ppo_learns_above_random_policy():
    """Mean evaluation return after a short run beats a uniformly random policy on every seed
    (and on average by a wide margin), over 4 seeds."""
    env, params, network, trainer = _setup("lstm", total_steps=16 * 16 * 60, width=32)
    keys = jax.random.split(jax.random.key(1), 4)
    hp = HParams(lr=jnp.float32(3e-3), ent_coef=jnp.float32(0.01))
    state, _ = jax.jit(jax.vmap(trainer.train, in_axes=(0, None, None)))(keys, hp, params)
    eval_keys = jax.random.split(jax.random.key(2), 4)
    run_eval = lambda net, p, k: evaluate(env, net, p, params, k, 32, 120, _stats)["return"]
    trained = jax.jit(jax.vmap(lambda p, k: run_eval(network, p, k)))(state.params, eval_keys)
    random_net = make_network(NetworkConfig(arch="random"), 1, env.num_actions)
    random = jax.jit(jax.vmap(lambda k: run_eval(random_net, {}, k)))(eval_keys)
    trained, random = np.asarray(trained), np.asarray(random)
    assert (trained > random).all(), (trained, random)
    assert trained.mean() - random.mean() > 0.5, (trained, random)


def test_cnn_sees_the_image_and_the_extra_features():
    cfg = NetworkConfig(arch="cnn", width=8, image_shape=(2, 3, 3))
    network = make_network(cfg, 2 * 9 + 2, 4)
    params = network.init(jax.random.key(0))
    obs = jnp.zeros(20)
    _, base, _ = network.apply(params, network.initial_carry(), obs, jnp.array(True))
    _, pixel, _ = network.apply(params, network.initial_carry(), obs.at[4].set(1.0), jnp.array(True))
    _, extra, _ = network.apply(params, network.initial_carry(), obs.at[19].set(1.0), jnp.array(True))
    assert not np.allclose(base, pixel) and not np.allclose(base, extra)
    with pytest.raises(ValueError, match="image_shape"):
        NetworkConfig(arch="cnn")
    with pytest.raises(ValueError, match="larger than the observation"):
        make_network(NetworkConfig(arch="cnn", image_shape=(3, 3, 3)), 20, 4)


@pytest.mark.parametrize("arch", ["lstm", "gru", "mlp", "cnn", "transformer", "random"])
def test_unroll_equals_stepping_apply(arch):
    """`network.unroll` (PPO's replay: step-independent layers as one product over [T, B])
    gives what scanning `apply` over time and vmapping it over envs gives, resets included."""
    from innerlab.agents.networks import _scan_unroll

    extra = {"image_shape": (2, 3, 3)} if arch == "cnn" else {}
    network = make_network(NetworkConfig(arch=arch, width=16, **extra), 20, 4)
    params = network.init(jax.random.key(1))
    t, b = 9, 5
    k_obs, k_first, k_carry = jax.random.split(jax.random.key(2), 3)
    obs_t = jax.random.normal(k_obs, (t, b, 20))
    is_first_t = jax.random.bernoulli(k_first, 0.3, (t, b))
    assert is_first_t.any() and not is_first_t.all()
    # A non-zero starting carry, so a missed reset would show.
    carry0 = jax.tree.map(lambda c: jnp.broadcast_to(c, (b, *c.shape)), network.initial_carry())
    if arch in ("lstm", "gru"):
        carry0 = jax.tree.map(lambda c: jax.random.normal(k_carry, c.shape), carry0)
    fast = jax.jit(network.unroll)(params, carry0, obs_t, is_first_t)
    slow = jax.jit(_scan_unroll(network.apply))(params, carry0, obs_t, is_first_t)
    assert fast[1].shape == (t, b, 4) and fast[2].shape == (t, b)
    for x, y in zip(jax.tree.leaves(fast), jax.tree.leaves(slow)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=1e-5)
    if arch in ("lstm", "gru"):
        # The first step's carry matters: a different carry0 changes the un-reset envs' output.
        other = jax.jit(network.unroll)(params, jax.tree.map(jnp.zeros_like, carry0), obs_t, is_first_t)
        assert not np.allclose(np.asarray(other[1][0]), np.asarray(fast[1][0]))
