"""Adversaries for a reward ensemble (rewards.adversary): hand-worked queries, validity of random
inputs, the input adversary against random inputs on a MuZero agent's reward heads, the latent
adversary, and the two losses."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from innerlab.agents.muzero import MuZeroConfig, make_muzero
from innerlab.envs import ObjectWorld, make_params
from innerlab.rewards.adversary import (Inputs, agreement_loss, build, disagreement, input_adversary,
                                        labelled_loss, latent_adversary, random_inputs)

UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3
MOVES = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]])

# Jitted once (eager calls compile every small op: ~3x slower on first use).
build_jit = jax.jit(build, static_argnums=0)
random_jit = jax.jit(random_inputs, static_argnums=(0, 3))


@pytest.fixture(scope="module")
def env():
    return ObjectWorld(size=4, num_objects=2, num_colours=3, obs_view="egocentric")


@pytest.fixture(scope="module")
def base(env):
    return make_params(env, reward_table=[[1.0], [-1.0], [-0.5]])


def hand_inputs(actions, present):
    """Agent (1, 1); object 0 colour 2 at (1, 2), object 1 colour 0 at (3, 3); one input per action."""
    b = len(actions)
    return Inputs(agent_pos=jnp.tile(jnp.array([1, 1], jnp.int32), (b, 1)),
                  obj_pos=jnp.tile(jnp.array([[1, 2], [3, 3]], jnp.int32), (b, 1, 1)),
                  obj_colour=jnp.tile(jnp.array([2, 0], jnp.int32), (b, 1)),
                  obj_shape=jnp.zeros((b, 2), jnp.int32),
                  obj_present=jnp.asarray(present, bool),
                  action=jnp.asarray(actions, jnp.int32))


def test_build_hand_worked(env, base):
    inputs = hand_inputs([RIGHT, UP, RIGHT, DOWN], [[True, True], [True, True], [False, True], [True, True]])
    obs, reward = build_jit(env, base, inputs)
    # Right onto object 0 (colour 2): table[2, 0] = -0.5. Up onto the empty (0, 1): 0. Right with
    # object 0 absent: nothing to collect, 0. Down onto the empty (2, 1): 0.
    np.testing.assert_allclose(reward, [-0.5, 0.0, 0.0, 0.0])
    assert obs.shape == (4, env.observation_space(base).shape[0])
    for i, present in enumerate(([True, True], [True, True], [False, True])):
        params = make_params(env, reward_table=[[1.0], [-1.0], [-0.5]], randomize_positions=False,
                             agent_start=[1, 1], obj_pos=[[1, 2], [3, 3]], obj_colour=[2, 0], obj_present=present)
        expected, state = env.reset(jax.random.key(3), params)
        np.testing.assert_array_equal(obs[i], expected)
        np.testing.assert_array_equal(obs[i], env.get_obs(state, params))
    assert not np.array_equal(obs[0], obs[2]), "object 0's presence must show in the observation"


def test_build_keeps_the_base_params(env, base):
    """Everything not in the input comes from `base`: object rewards, walls, the table."""
    inputs = hand_inputs([RIGHT, LEFT], [[True, True], [True, True]])
    with_bonus = base.replace(obj_reward=jnp.array([0.25, 0.0], jnp.float32))
    _, reward = build_jit(env, with_bonus, inputs)
    np.testing.assert_allclose(reward, [-0.25, 0.0])  # -0.5 + 0.25; left onto the empty (1, 0)
    walled = base.replace(walls=jnp.zeros((4, 4), bool).at[1, 0].set(True))
    obs_open, _ = build_jit(env, base, inputs)
    obs_walled, _ = build_jit(env, walled, inputs)
    assert not np.array_equal(obs_open[1], obs_walled[1])
    flipped = base.replace(reward_table=jnp.array([[1.0], [-1.0], [0.75]], jnp.float32))
    _, reward = build_jit(env, flipped, inputs)
    np.testing.assert_allclose(reward, [0.75, 0.0])


WALLS = np.zeros((5, 5), bool)
WALLS[1, 1:4] = WALLS[3, 1:4] = True  # 6 walls, 19 free cells


def numpy_reward(walls, table, one):
    """The reward of one input's action, worked out independently of the env."""
    n = walls.shape[0]
    target = np.clip(one["agent_pos"] + MOVES[one["action"]], 0, n - 1)
    if walls[target[0], target[1]]:
        return 0.0
    for k in range(len(one["obj_present"])):
        if one["obj_present"][k] and (one["obj_pos"][k] == target).all():
            return float(table[one["obj_colour"][k], one["obj_shape"][k]])
    return 0.0


def test_random_inputs_are_valid_levels_with_the_env_reward():
    env = ObjectWorld(size=5, num_objects=3, num_colours=3, num_shapes=2, obs_view="egocentric")
    table = np.array([[1.0, 0.5], [-1.0, -0.25], [0.0, 2.0]], np.float32)
    base = make_params(env, walls=WALLS, reward_table=table)
    inputs = random_jit(env, base, jax.random.key(0), 400)
    got = jax.tree.map(np.asarray, inputs)
    assert inputs.count == 400
    cells = np.concatenate([got.agent_pos[:, None], got.obj_pos], 1)  # [B, K + 1, 2]
    assert ((cells >= 0) & (cells < 5)).all()
    assert not WALLS[cells[..., 0], cells[..., 1]].any()
    flat = cells[..., 0] * 5 + cells[..., 1]
    assert all(len(set(row)) == 4 for row in flat), "agent and objects on distinct cells"
    assert set(got.obj_colour.ravel()) == {0, 1, 2} and set(got.obj_shape.ravel()) == {0, 1}
    assert set(got.action) == {0, 1, 2, 3}
    assert 0.68 < got.obj_present.mean() < 0.82  # 0.75, 1200 draws: sd 0.0125
    # Every free cell is used (uniform over free cells: 1600 cells drawn over 19).
    assert len(set(flat.ravel())) == 19
    # The queries' rewards are the env's.
    _, reward = build_jit(env, base, inputs)
    expected = [numpy_reward(WALLS, table, {k: v[i] for k, v in vars(got).items()}) for i in range(400)]
    np.testing.assert_allclose(reward, expected)
    assert (np.asarray(reward) != 0).sum() >= 10  # enough collections to mean something (20 with this key)
    # Deterministic in the key.
    again = random_jit(env, base, jax.random.key(0), 400)
    other = random_jit(env, base, jax.random.key(1), 400)
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(inputs), jax.tree.leaves(again)))
    assert not np.array_equal(inputs.agent_pos, other.agent_pos)


# -- the input adversary on a MuZero agent's reward heads ----------------------------------------

@pytest.fixture(scope="module")
def agent_setup(env, base):
    config = MuZeroConfig(num_envs=4, rollout_len=4, buffer_len=16, total_steps=64, latent_dim=8, width=16,
                          ensemble=4, num_simulations=2)
    agent = make_muzero(config, env)
    # The parameters agent.init makes (its net.init), without its buffer pre-fill: compiling the
    # pre-fill's search rollouts would add ~7 s here, and the heads are the same untrained ones.
    obs, _ = jax.jit(env.reset)(jax.random.key(0), base)
    params = jax.jit(agent.net.init)(jax.random.key(0), obs, jnp.int32(0))

    @jax.jit
    def score(obs, action):
        return disagreement(jax.vmap(agent.reward_heads, (None, 0, 0))(params, obs, action))

    @jax.jit
    def latent_score(latent, action):
        return disagreement(jax.vmap(agent.latent_reward_heads, (None, 0, 0))(params, latent, action))

    searches = {rounds: jax.jit(lambda key, rounds=rounds: input_adversary(score, env, base, key, 16, 128, rounds))
                for rounds in (1, 3)}
    return agent, params, score, latent_score, searches


def test_input_adversary_beats_random_inputs(env, base, agent_setup):
    _, _, score, _, searches = agent_setup
    control_score = jax.jit(lambda key: (lambda c: score(build(env, base, c)[0], c.action))(
        random_inputs(env, base, key, 16)))
    for seed in range(5):
        inputs, scores = searches[3](jax.random.key(seed))
        control_scores = control_score(jax.random.key(100 + seed))
        # Measured: adversary 0.154-0.159, random 0.058-0.084 (mean disagreement of 16 inputs).
        assert float(scores.mean()) > 1.5 * float(control_scores.mean()), seed
        # Highest first, and the scores are those of the inputs returned.
        assert inputs.count == 16 and scores.shape == (16,)
        assert (np.diff(np.asarray(scores)) <= 0).all()
        np.testing.assert_allclose(score(build_jit(env, base, inputs)[0], inputs.action), scores, rtol=1e-5, atol=1e-9)


def test_input_adversary_keeps_the_best_of_all_rounds(env, base, agent_setup):
    """(mu + lambda) selection: the result is the top `count` of the union of the rounds' pools, so
    more rounds never lose what fewer found. Each round's pool is random_inputs on one of
    split(key, rounds); JAX's partitionable threefry makes split(key, 1)[0] == split(key, 3)[0], so
    rounds 3 sees the pool of rounds 1 and must score at least as well, rank by rank."""
    _, _, score, _, searches = agent_setup
    key = jax.random.key(11)
    _, scores = searches[3](key)
    pools = [random_jit(env, base, k, 128) for k in jax.random.split(key, 3)]
    union = np.concatenate([np.asarray(score(build_jit(env, base, p)[0], p.action)) for p in pools])
    np.testing.assert_allclose(scores, np.sort(union)[::-1][:16], rtol=1e-5, atol=1e-9)
    assert np.array_equal(jax.random.key_data(jax.random.split(key, 1)[0]),
                          jax.random.key_data(jax.random.split(key, 3)[0]))
    _, one_round = searches[1](key)
    assert (np.asarray(scores) >= np.asarray(one_round) - 1e-7).all()
    assert float(scores.mean()) > float(one_round.mean())


def test_input_adversary_with_a_hand_made_score(env, base):
    """A score of the action alone (left = 3 highest): every input kept is a left, scored 3."""
    def score(obs, action):
        del obs
        return action.astype(jnp.float32)  # prefers action 3 (left)
    inputs, scores = jax.jit(lambda key: input_adversary(score, env, base, key, 8, 32, 2))(jax.random.key(0))
    np.testing.assert_array_equal(inputs.action, 3)  # 64 draws hold far more than 8 lefts
    np.testing.assert_array_equal(scores, 3.0)


def test_input_adversary_bad_arguments(env, base):
    score = lambda obs, action: obs.sum(-1)
    with pytest.raises(ValueError, match=r"count \(17\) must be <= pool \(16\)"):
        input_adversary(score, env, base, jax.random.key(0), 17, 16)
    with pytest.raises(ValueError, match="rounds must be >= 1"):
        input_adversary(score, env, base, jax.random.key(0), 4, 16, 0)


# -- the latent adversary -----------------------------------------------------------------------

def test_latent_adversary_increases_disagreement_and_stays_in_the_cube(env, base, agent_setup):
    agent, params, _, latent_score, _ = agent_setup
    inputs = random_jit(env, base, jax.random.key(5), 32)
    obs, _ = build_jit(env, base, inputs)
    latents = jax.jit(jax.vmap(agent.represent, (None, 0)))(params, obs)
    assert latents.shape == (32, 8) and float(latents.min()) >= 0.0 and float(latents.max()) <= 1.0
    before = latent_score(latents, inputs.action)
    moved = jax.jit(latent_adversary, static_argnums=(0, 3, 4))(latent_score, latents, inputs.action, 10, 0.05)
    after = latent_score(moved, inputs.action)
    assert moved.shape == latents.shape
    assert float(moved.min()) >= 0.0 and float(moved.max()) <= 1.0
    assert float(after.sum()) > 1.5 * float(before.sum())
    assert float(jnp.abs(moved - latents).max()) <= 10 * 0.05 + 1e-6


def test_latent_adversary_hand_worked():
    # score = sum of coordinates: every step adds step_size to every coordinate, clipped at 1;
    # 3 steps of 0.1: 0.2 -> 0.5, 0.95 -> 1.0.
    up = lambda z, a: z.sum(-1)
    np.testing.assert_allclose(latent_adversary(up, jnp.array([[0.2, 0.95]]), jnp.zeros(1, jnp.int32), 3, 0.1),
                               [[0.5, 1.0]], atol=1e-6)
    # score = -sum: down, clipped at 0: 0.25 -> 0.0 (not -0.05), 0.9 -> 0.6.
    down = lambda z, a: -z.sum(-1)
    np.testing.assert_allclose(latent_adversary(down, jnp.array([[0.25, 0.9]]), jnp.zeros(1, jnp.int32), 3, 0.1),
                               [[0.0, 0.6]], atol=1e-6)
    # radius 0.15 around the start: 0.2 stops at 0.35 (not 0.5); 0.95 still stops at the cube's 1.
    np.testing.assert_allclose(latent_adversary(up, jnp.array([[0.2, 0.95]]), jnp.zeros(1, jnp.int32), 3, 0.1, 0.15),
                               [[0.35, 1.0]], atol=1e-6)
    # A signed step: the size of the gradient does not matter, score = 100 z0 - 0.01 z1.
    mixed = lambda z, a: 100 * z[:, 0] - 0.01 * z[:, 1]
    np.testing.assert_allclose(latent_adversary(mixed, jnp.array([[0.5, 0.5]]), jnp.zeros(1, jnp.int32), 2, 0.1),
                               [[0.7, 0.3]], atol=1e-6)


# -- losses ----------------------------------------------------------------------------------------

def test_disagreement_is_the_variance_over_heads():
    np.testing.assert_allclose(disagreement(jnp.array([[1.0, 3.0], [2.0, 2.0], [0.0, 6.0]])), [1.0, 0.0, 9.0])


def test_labelled_loss_hand_worked():
    # (1 - 2)^2 + (3 - 2)^2 = 2.
    np.testing.assert_allclose(labelled_loss(jnp.array([[1.0, 3.0]]), jnp.array([2.0])), 2.0)
    predictions, target = jnp.array([[1.0, 3.0], [0.0, 0.0]]), jnp.array([2.0, 0.0])  # errors 2, 0
    np.testing.assert_allclose(labelled_loss(predictions, target), 1.0)
    np.testing.assert_allclose(labelled_loss(predictions, target, jnp.array([1.0, 0.0])), 2.0)
    np.testing.assert_allclose(labelled_loss(predictions, target, jnp.array([0.0, 1.0])), 0.0)
    np.testing.assert_allclose(labelled_loss(predictions, target, jnp.array([1.0, 3.0])), 0.5)  # 2 / 4
    np.testing.assert_allclose(labelled_loss(predictions, target, jnp.zeros(2)), 0.0)  # empty mask: 0, not nan


def test_agreement_loss_hand_worked():
    # E * var = 2 * 1 = 2; [2, 2]: 0; [0, 3, 3]: 3 * var = 3 * 2 = 6 (= sum of squared deviations 4 + 1 + 1).
    np.testing.assert_allclose(agreement_loss(jnp.array([[1.0, 3.0]])), 2.0)
    predictions = jnp.array([[1.0, 3.0], [2.0, 2.0]])
    np.testing.assert_allclose(agreement_loss(predictions), 1.0)
    np.testing.assert_allclose(agreement_loss(predictions, jnp.array([0.0, 1.0])), 0.0)
    np.testing.assert_allclose(agreement_loss(predictions, jnp.array([1.0, 0.0])), 2.0)
    np.testing.assert_allclose(agreement_loss(jnp.array([[0.0, 3.0, 3.0]])), 6.0)
