"""DRC(D, N) and its ResNet peer (innerlab.agents.drc): replay parity, resets, ticks, thinking
steps, pool-and-inject's reach, seeds as a vmap axis, parameter counts, one PPO update."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from innerlab.agents import HParams, NetworkConfig, PPOConfig, make_network, make_train
from innerlab.agents.drc import parameter_count
from innerlab.agents.networks import _scan_unroll
from innerlab.envs import ObjectWorld, make_params

IMAGE = (4, 5, 6)          # C, H, W: not square, so a swapped axis would show
OBS_DIM = 4 * 5 * 6 + 3    # the image, then 3 more features (joined to the MLP's input)


def _network(arch, image=IMAGE, obs_dim=OBS_DIM, **kw):
    defaults = dict(width=8, mlp_width=16, drc_depth=2, ticks=2, resnet_blocks=2)
    cfg = NetworkConfig(arch=arch, image_shape=image, **{**defaults, **kw})
    return make_network(cfg, obs_dim, 5)


def _obs(key, shape=(OBS_DIM,)):
    return jax.random.bernoulli(key, 0.3, shape).astype(jnp.float32)


@pytest.mark.parametrize("arch", ["drc", "resnet"])
def test_unroll_equals_stepping_apply(arch):
    """`unroll` (encoder and heads over all [T, B] at once, ticks scanned) gives what scanning
    `apply` over time and vmapping it over envs gives, resets and a non-zero carry0 included."""
    network = _network(arch)
    params = network.init(jax.random.key(1))
    t, b = 7, 3
    k_obs, k_first, k_carry = jax.random.split(jax.random.key(2), 3)
    obs_t = _obs(k_obs, (t, b, OBS_DIM))
    is_first_t = jax.random.bernoulli(k_first, 0.3, (t, b))
    assert is_first_t.any() and not is_first_t.all()
    carry0 = jax.tree.map(lambda c: jax.random.normal(k_carry, (b, *c.shape)), network.initial_carry())
    fast = jax.jit(network.unroll)(params, carry0, obs_t, is_first_t)
    slow = jax.jit(_scan_unroll(network.apply))(params, carry0, obs_t, is_first_t)
    assert fast[1].shape == (t, b, 5) and fast[2].shape == (t, b)
    for x, y in zip(jax.tree.leaves(fast), jax.tree.leaves(slow)):
        assert x.shape == y.shape
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=1e-5)
    if arch == "drc":
        assert network.initial_carry().h.shape == (2, 8, 5, 6)  # [D, width, H, W]
        other = jax.jit(network.unroll)(params, jax.tree.map(jnp.zeros_like, carry0), obs_t, is_first_t)
        assert not np.allclose(np.asarray(other[1][0]), np.asarray(fast[1][0]))
    # Backprop through the (rematerialised) unroll matches backprop through the scanned apply.
    loss = lambda unroll: lambda p: (unroll(p, carry0, obs_t, is_first_t)[1] ** 2).sum()
    g_fast = jax.jit(jax.grad(loss(network.unroll)))(params)
    g_slow = jax.jit(jax.grad(loss(_scan_unroll(network.apply))))(params)
    for x, y in zip(jax.tree.leaves(g_fast), jax.tree.leaves(g_slow)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("arch", ["drc", "resnet"])
def test_features_are_per_cell_and_match_the_carry(arch):
    network = _network(arch)
    params = network.init(jax.random.key(0))
    obs = _obs(jax.random.key(1))
    feats = jax.jit(network.features)(params, network.initial_carry(), obs, jnp.bool_(True))
    if arch == "drc":
        assert feats.shape == (2 * 8, 5, 6)  # D * width
        carry, _, _ = jax.jit(network.apply)(params, network.initial_carry(), obs, jnp.bool_(True))
        np.testing.assert_allclose(feats, carry.h.reshape(16, 5, 6), atol=1e-6)
    else:
        assert feats.shape == (8, 5, 6)


def test_is_first_resets_memory():
    network = _network("drc")
    params = network.init(jax.random.key(0))
    apply = jax.jit(network.apply)
    obs = _obs(jax.random.key(1))
    _, logits_fresh, value_fresh = apply(params, network.initial_carry(), obs, jnp.bool_(True))
    carry = network.initial_carry()
    for i in range(3):
        carry, _, _ = apply(params, carry, _obs(jax.random.key(10 + i)), jnp.bool_(i == 0))
    _, logits_reset, value_reset = apply(params, carry, obs, jnp.bool_(True))
    _, logits_cont, _ = apply(params, carry, obs, jnp.bool_(False))
    np.testing.assert_allclose(logits_reset, logits_fresh, atol=1e-6)
    np.testing.assert_allclose(value_reset, value_fresh, atol=1e-6)
    assert not np.allclose(logits_cont, logits_fresh, atol=1e-6)


def test_ticks_and_thinking_steps():
    """More ticks change the output (same parameters: N does not change them); a thinking step
    (apply again on the same observation) changes the DRC's output and cannot change the ResNet's."""
    obs = _obs(jax.random.key(1))
    one, three = _network("drc", drc_depth=1, ticks=1), _network("drc", drc_depth=1, ticks=3)
    params = one.init(jax.random.key(0))
    assert jax.tree.structure(params) == jax.tree.structure(three.init(jax.random.key(0)))
    _, logits_one, _ = one.apply(params, one.initial_carry(), obs, jnp.bool_(True))
    _, logits_three, _ = three.apply(params, three.initial_carry(), obs, jnp.bool_(True))
    assert not np.allclose(logits_one, logits_three, atol=1e-6)
    # Three 1-tick steps on one observation are one 3-tick step.
    carry = one.initial_carry()
    for i in range(3):
        carry, logits, _ = one.apply(params, carry, obs, jnp.bool_(i == 0))
    np.testing.assert_allclose(logits, logits_three, atol=1e-5)

    for arch in ("drc", "resnet"):
        network = _network(arch)
        params = network.init(jax.random.key(0))
        carry, logits_0, value_0 = network.apply(params, network.initial_carry(), obs, jnp.bool_(True))
        _, logits_1, value_1 = network.apply(params, carry, obs, jnp.bool_(False))
        if arch == "drc":
            assert not np.allclose(logits_0, logits_1, atol=1e-6)
        else:
            np.testing.assert_array_equal(logits_0, logits_1)
            np.testing.assert_array_equal(value_0, value_1)


def test_pool_and_inject_reaches_the_far_corner():
    """With 3x3 kernels a change at cell (0, 0) reaches at most 4 cells away within one step of
    two ticks (encoder 2 + tick 1 + tick 1); the corner (7, 7) is 7 away on an 8x8 grid, so only
    the pooled injection can carry it there. Zeroing the pool's projection cuts that path."""
    image = (4, 8, 8)
    network = _network("drc", image=image, obs_dim=256, drc_depth=1, ticks=2)
    params = network.init(jax.random.key(0))
    obs = _obs(jax.random.key(1), (256,))
    moved = obs.at[2 * 64 + 0].set(1.0 - obs[2 * 64])  # flip plane 2 at cell (0, 0)

    def far_corner(params, network, obs):
        carry, _, _ = jax.jit(network.apply)(params, network.initial_carry(), obs, jnp.bool_(True))
        return np.asarray(carry.h[:, :, 7, 7]), np.asarray(carry.h[:, :, 0, 0])

    (far_a, near_a), (far_b, near_b) = far_corner(params, network, obs), far_corner(params, network, moved)
    assert not np.allclose(near_a, near_b)
    assert np.abs(far_a - far_b).max() > 1e-6

    no_pool = jax.tree_util.tree_map_with_path(
        lambda path, x: jnp.zeros_like(x) if "proj" in jax.tree_util.keystr(path) else x, params)
    np.testing.assert_array_equal(*(far_corner(no_pool, network, o)[0] for o in (obs, moved)))
    # One tick (a fresh carry pools zeros) is local too: nothing reaches the corner yet.
    single = _network("drc", image=image, obs_dim=256, drc_depth=1, ticks=1)
    np.testing.assert_array_equal(*(far_corner(params, single, o)[0] for o in (obs, moved)))


@pytest.mark.parametrize("arch", ["drc", "resnet"])
def test_seeds_are_a_vmap_axis(arch):
    network = _network(arch)
    obs = _obs(jax.random.key(1))

    def run(key):
        params = network.init(key)
        carry, logits, value = network.apply(params, network.initial_carry(), obs, jnp.bool_(True))
        return network.apply(params, carry, obs, jnp.bool_(False))[1]

    logits = jax.jit(jax.vmap(run))(jax.random.split(jax.random.key(0), 3))
    assert logits.shape == (3, 5) and np.isfinite(np.asarray(logits)).all()
    assert not np.allclose(logits[0], logits[1])


def test_parameter_counts_are_comparable():
    """DRC(3, 3) with 32 channels vs the ResNet (9 blocks x 32) at the quick (8x8) and paper
    (10x10) sizes: within 1.5x of each other. Taufeeque et al.'s DRC(3, 3) has 1,285,125
    (10x10, RGB, 4 actions; ours 1,283,525); their ResNet 3,068,421."""
    counts = {}
    for size in (8, 10):
        for arch in ("drc", "resnet"):
            cfg = NetworkConfig(arch=arch, width=32, image_shape=(4, size, size))
            network = make_network(cfg, 4 * size * size, 4)
            counts[arch, size] = parameter_count(jax.eval_shape(network.init, jax.random.key(0)))
        print(f"{size}x{size}: DRC(3,3,32) {counts['drc', size]:,}  ResNet(9x32) {counts['resnet', size]:,}")
        ratio = counts["drc", size] / counts["resnet", size]
        assert 1 / 1.5 <= ratio <= 1.5, counts
    assert counts["drc", 10] == 1_283_525


def test_bad_configs():
    with pytest.raises(ValueError, match="image_shape"):
        NetworkConfig(arch="drc")
    with pytest.raises(ValueError, match="larger than the observation"):
        make_network(NetworkConfig(arch="resnet", image_shape=(4, 5, 5)), 99, 4)
    with pytest.raises(ValueError, match="must be >= 1"):
        NetworkConfig(arch="drc", image_shape=(4, 5, 5), ticks=0)


@pytest.mark.slow  # the learned-search smoke run trains a DRC with PPO over 2 seeds in the fast tier
def test_ppo_update_with_drc_over_two_seeds():
    """One PPO update of a small DRC on ObjectWorld's image view, two seeds vmapped (the CPU
    deadlock of notes/NOTES.md showed with 2+ seeds)."""
    env = ObjectWorld(size=4, num_objects=2, num_colours=2)
    env_params = make_params(env, max_steps_in_episode=12, obj_colour=[0, 1], reward_table=[[1.0], [-1.0]])
    obs_dim = env.observation_space(env_params).shape[0]
    network = make_network(NetworkConfig(arch="drc", width=4, drc_depth=1, ticks=2, mlp_width=16,
                                         image_shape=(env.image_channels, 4, 4)), obs_dim, env.num_actions)
    config = PPOConfig(num_envs=8, rollout_len=8, total_steps=64, num_minibatches=2, update_epochs=1)
    trainer = make_train(config, env, network)
    hp = HParams(lr=jnp.float32(1e-3), ent_coef=jnp.float32(0.01))
    state, metrics = jax.jit(jax.vmap(trainer.train, in_axes=(0, None, None)))(
        jax.random.split(jax.random.key(0), 2), hp, env_params)
    assert metrics["policy_loss"].shape == (2, 1)
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state.params))
    first = jax.tree.leaves(state.params)[0]
    assert not np.array_equal(first[0], first[1])
