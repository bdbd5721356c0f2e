"""Population-based training: exact copying of parameters and optimiser state from the selected
members, perturbation of hyper-parameters, the plain (no selection) path, determinism."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from innerlab.agents import HParams, NetworkConfig, PPOConfig, make_network, make_train
from innerlab.agents.pbt import PBTConfig, broadcast_hparams, exploit_explore, make_population
from innerlab.envs.persistent import MyopiaPD

ENV = MyopiaPD()
NET = make_network(NetworkConfig(arch="mlp", width=8, depth=1), 2, 2)
PPO = PPOConfig(num_envs=4, rollout_len=4, total_steps=4 * 4 * 8, update_epochs=1, num_minibatches=1, gamma=0.0,
                anneal_lr=False)
TRAINER = make_train(PPO, ENV, NET, episode_info=("exploited",))


def trained_members(population=4, updates=3):
    """Members with distinct parameters and non-zero Adam moments."""
    lrs = jnp.asarray([1e-3, 2e-3, 3e-3, 4e-3][:population], jnp.float32)
    hparams = HParams(lr=lrs, ent_coef=jnp.zeros((population,), jnp.float32))
    members = jax.vmap(TRAINER.init, in_axes=(0, 0, None))(jax.random.split(jax.random.key(0), population), hparams,
                                                         ENV.default_params)
    members, _ = jax.vmap(lambda m: TRAINER.run(m, ENV.default_params, updates))(members)
    return members


def leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def adam_moments(opt_state):
    """(mu, nu, count) of the inject_hyperparams(adam) state, the chain's second element."""
    inner = opt_state[1].inner_state
    return inner[0].mu, inner[0].nu, inner[0].count


@pytest.mark.parametrize("truncation", [0.25, 0.5])
def test_bottom_members_copy_params_and_optimiser_state_exactly(truncation):
    members = trained_members()
    fitness = jnp.asarray([0.1, 0.9, 0.5, -1.0])
    config = PBTConfig(truncation=truncation, perturb=(0.8, 1.25))
    new, source = exploit_explore(jax.random.key(3), members, fitness, config)
    source = np.asarray(source)
    n = int(4 * truncation)
    ranked = np.argsort(np.asarray(fitness))
    bottom, top = set(ranked[:n]), set(ranked[4 - n:])
    for p in range(4):
        src = source[p]
        if p in bottom:
            assert src in top, f"member {p} must copy from the top {n}, got {src}"
        else:
            assert src == p, "members outside the bottom fraction keep their own state"
        for a, b in zip(leaves(jax.tree.map(lambda x: x[p], new.params)),
                        leaves(jax.tree.map(lambda x: x[src], members.params))):
            np.testing.assert_array_equal(a, b)
        for a, b in zip(leaves(jax.tree.map(lambda x: x[p], adam_moments(new.opt_state))),
                        leaves(jax.tree.map(lambda x: x[src], adam_moments(members.opt_state)))):
            np.testing.assert_array_equal(a, b)
        lr_new, lr_src = float(new.hparams.lr[p]), float(members.hparams.lr[src])
        if p in bottom:
            assert np.isclose(lr_new, lr_src * 0.8) or np.isclose(lr_new, lr_src * 1.25)
        else:
            assert lr_new == lr_src
        # The learning rate the optimiser will use is the member's (possibly perturbed) one.
        assert np.isclose(float(new.opt_state[1].hyperparams["learning_rate"][p]), lr_new)
    # Environments and keys are never copied.
    for a, b in zip(leaves(new.env_state), leaves(members.env_state)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(jax.random.key_data(new.key), jax.random.key_data(members.key))


def test_nan_fitness_ranks_last():
    members = trained_members()
    _, source = exploit_explore(jax.random.key(0), members, jnp.asarray([0.0, jnp.nan, 1.0, 0.5]),
                                PBTConfig(truncation=0.25))
    assert int(source[1]) == 2, "the member with no finished episodes is replaced by the best"


def test_population_of_one_is_left_alone():
    members = trained_members(population=1)
    new, source = exploit_explore(jax.random.key(0), members, jnp.asarray([1.0]), PBTConfig())
    assert source.tolist() == [0]


def run_population(config, key=0, population=4, rounds=3):
    pop = make_population(TRAINER, ENV, NET, config, population, PPO.rollout_len)
    hparams = broadcast_hparams(HParams(lr=1e-2, ent_coef=0.0), population)
    state = pop.init(jax.random.key(key), hparams, ENV.default_params)
    return jax.jit(pop.run, static_argnums=2)(state, ENV.default_params, rounds)


def test_plain_population_never_copies_and_pbt_does():
    _, metrics = run_population(PBTConfig(interval=2, exploit=False))
    assert (np.asarray(metrics["source"]) == np.arange(4)).all()
    assert np.asarray(metrics["exploited"]).shape == (3, 2, 4)  # [rounds, interval, P]
    _, metrics = run_population(PBTConfig(interval=2, exploit=True))
    assert (np.asarray(metrics["source"]) != np.arange(4)).sum(1).tolist() == [1, 1, 1]


@pytest.mark.parametrize("swap", [False, True])
def test_population_training_is_deterministic(swap):
    config = PBTConfig(interval=2, swap_envs=swap)
    a, _ = run_population(config, key=5)
    b, _ = run_population(config, key=5)
    c, _ = run_population(config, key=6)
    for x, y in zip(leaves(a.members.params), leaves(b.members.params)):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, z) for x, z in zip(leaves(a.members.params), leaves(c.members.params)))


def test_eval_fitness_is_a_finite_return():
    _, metrics = run_population(PBTConfig(interval=2, fitness="eval", eval_envs=4, eval_steps=4))
    fitness = np.asarray(metrics["fitness"])
    assert fitness.shape == (3, 4) and np.isfinite(fitness).all()
    assert ((fitness >= 0.0) & (fitness <= 1.5)).all(), "one-step PD returns lie in [0, 1.5]"


def test_bad_pbt_config_is_rejected():
    with pytest.raises(ValueError, match="truncation"):
        PBTConfig(truncation=0.8)
    with pytest.raises(ValueError, match="fitness"):
        PBTConfig(fitness="best")
