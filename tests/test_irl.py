"""Maximum causal entropy IRL and coherence measures: soft value iteration against a numpy loop,
hand-worked sampling, recovery of known rewards (random MDPs and an ObjectWorld level) judged
by EPIC, coherence measures on cases with known answers, determinism and bad inputs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import logsumexp

from innerlab.envs import ObjectWorld, make_params, tabulate
from innerlab.irl import (Trajectories, fit, heldout_accuracy, maxent_irl, reward_distance, sample_trajectories,
                          soft_value_iteration, split, state_visitation)

DISCOUNT = 0.9
ITERATIONS = 150


def random_mdp(seed, num_states=10, num_actions=3, num_features=5):
    """Dense random dynamics (Dirichlet rows), Gaussian features [S, A, S, d] and true weights."""
    rng = np.random.default_rng(seed)
    transitions = rng.dirichlet(np.ones(num_states), size=(num_states, num_actions))
    features = rng.normal(size=(num_states, num_actions, num_states, num_features))
    theta = rng.normal(size=num_features)
    initial = np.full(num_states, 1.0 / num_states)
    return transitions, features, theta, initial


def soft_value_iteration_loop(transitions, reward, discount, iterations):
    """The plain numpy reference: Q = sum_s' P (R + discount V), V = logsumexp_a Q."""
    value = np.zeros(transitions.shape[0])
    for _ in range(iterations):
        q = (transitions * (reward + discount * value[None, None, :])).sum(-1)
        value = logsumexp(q, axis=-1)
    q = (transitions * (reward + discount * value[None, None, :])).sum(-1)
    return q, logsumexp(q, axis=-1), np.exp(q - logsumexp(q, axis=-1, keepdims=True))


def demos_of(seed, transitions, reward, initial, num=300, horizon=20, terminal=None):
    policy = soft_value_iteration(transitions, reward, DISCOUNT, ITERATIONS).policy
    return policy, sample_trajectories(jax.random.key(seed), transitions, policy, initial, horizon, num,
                                       terminal=terminal)


# ----------------------------------------------------------------------------- soft value iteration


def test_soft_value_iteration_matches_a_numpy_loop():
    transitions, features, theta, _ = random_mdp(0)
    reward = features @ theta
    soft = soft_value_iteration(transitions, reward, DISCOUNT, ITERATIONS)
    q, v, policy = soft_value_iteration_loop(transitions, reward, DISCOUNT, ITERATIONS)
    np.testing.assert_allclose(soft.q, q, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(soft.v, v, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(soft.policy, policy, atol=1e-5)
    np.testing.assert_allclose(np.asarray(soft.policy).sum(-1), 1.0, atol=1e-6)
    # A reward per (s, a) is the same problem as its expectation over s'.
    state_action = soft_value_iteration(transitions, (transitions * reward).sum(-1), DISCOUNT, ITERATIONS)
    np.testing.assert_allclose(state_action.q, soft.q, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- sampling


def chain():
    """States 0 -> 1 -> 2 under action 0 ("right"); action 1 stays; 2 is absorbing."""
    transitions = np.zeros((3, 2, 3))
    transitions[[0, 1, 2], 0, [1, 2, 2]] = 1.0
    transitions[[0, 1, 2], 1, [0, 1, 2]] = 1.0
    return transitions


def test_sampling_a_deterministic_policy_on_a_chain():
    transitions = chain()
    policy = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])  # right from 0, stay in 1 forever
    initial = np.array([1.0, 0.0, 0.0])
    demos = sample_trajectories(jax.random.key(0), transitions, policy, initial, horizon=4, num=2)
    np.testing.assert_array_equal(demos.states, [[0, 1, 1, 1]] * 2)
    np.testing.assert_array_equal(demos.actions, [[0, 1, 1, 1]] * 2)
    assert demos.mask.all() and demos.states.dtype == jnp.int32

    policy = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # right, right, then wait in the terminal
    demos = sample_trajectories(jax.random.key(0), transitions, policy, initial, horizon=5, num=1, terminal=2)
    np.testing.assert_array_equal(demos.states, [[0, 1, 2, 2, 2]])
    np.testing.assert_array_equal(demos.actions, [[0, 0, 1, 1, 1]])
    np.testing.assert_array_equal(demos.mask, [[True, True, False, False, False]])
    assert int(demos.num_steps()) == 2


def test_sampling_is_a_function_of_the_key():
    transitions, _, _, initial = random_mdp(1)
    policy = np.full((10, 3), 1.0 / 3.0)
    first, again, other = (sample_trajectories(jax.random.key(k), transitions, policy, initial, 10, 8)
                           for k in (3, 3, 4))
    np.testing.assert_array_equal(first.states, again.states)
    np.testing.assert_array_equal(first.actions, again.actions)
    assert (np.asarray(first.states) != np.asarray(other.states)).any()


# ----------------------------------------------------------------------------- recovering known rewards


def recover(key, transitions, features, theta, initial):
    """Demos of the soft-optimal policy of features . theta, then IRL on them: the recovered reward."""
    policy = soft_value_iteration(transitions, features @ theta, DISCOUNT, ITERATIONS).policy
    demos = sample_trajectories(key, transitions, policy, initial, 20, 500)
    return maxent_irl(transitions, features, initial, demos, DISCOUNT).reward


def test_recovers_the_reward_of_random_mdps():
    mdps = [random_mdp(seed) for seed in (10, 11, 12)]
    stacked = [jnp.asarray(np.stack(parts), jnp.float32) for parts in zip(*mdps)]
    recovered = jax.vmap(recover)(jax.random.split(jax.random.key(0), 3), *stacked)
    rng = np.random.default_rng(99)
    for (transitions, features, theta, _), reward in zip(mdps, np.asarray(recovered)):
        truth = features @ theta
        distance = reward_distance(reward, truth, transitions, DISCOUNT)
        baseline = reward_distance(features @ rng.normal(size=theta.shape), truth, transitions, DISCOUNT)
        print(f"EPIC recovered {distance:.4f}, random {baseline:.4f}")
        assert distance < 0.1
        assert baseline > 0.3 and distance < baseline / 3


def objectworld_level():
    """4x4, three objects: +1 (ends the episode only once the other positive one is gone), -1, +1.5."""
    env = ObjectWorld(size=4, num_objects=3, num_colours=2, obs_view="flat")
    params = make_params(env, reward_table=[[1.0], [-1.0]], randomize_positions=False, agent_start=[0, 0],
                         obj_pos=[[0, 3], [2, 1], [3, 3]], obj_colour=[0, 1, 0], obj_reward=[0.0, 0.0, 0.5])
    table = np.asarray(params.reward_table)
    weights = table[np.asarray(params.obj_colour), np.asarray(params.obj_shape)] + np.asarray(params.obj_reward)
    return tabulate(env, params), weights


def test_recovers_an_objectworld_reward():
    mdp, weights = objectworld_level()
    # x3 so the demonstrator clearly prefers the good objects (temperature 1 on a +-1 reward is nearly uniform).
    _, demos = demos_of(0, mdp.transitions, 3.0 * mdp.reward, mdp.initial, num=500, terminal=mdp.terminal)
    result = maxent_irl(mdp.transitions, mdp.features, mdp.initial, demos, DISCOUNT)
    distance = reward_distance(result.reward, mdp.reward, mdp.transitions, DISCOUNT)
    print(f"ObjectWorld EPIC {distance:.4f}, theta {np.asarray(result.theta)}, true weights {weights}")
    assert distance < 0.1
    np.testing.assert_array_equal(np.sign(result.theta), np.sign(weights))
    # The optimiser converged: the likelihood stopped improving, and beats the uniform policy.
    history = np.asarray(result.history)
    assert abs(history[-1] - history[-50]) < 1e-3 and result.log_likelihood > -np.log(mdp.num_actions)


# ----------------------------------------------------------------------------- coherence measures


def test_fit_separates_goal_directed_from_random_behaviour():
    transitions, features, theta, initial = random_mdp(2)
    uniform = np.full((10, 3), 1.0 / 3.0)
    random_demos = sample_trajectories(jax.random.key(5), transitions, uniform, initial, 20, 300)
    assert fit(uniform, random_demos) == pytest.approx(0.0, abs=1e-9)

    policy, goal_demos = demos_of(6, transitions, 2.0 * (features @ theta), initial)
    assert fit(policy, goal_demos) > 0.2
    # Held out: IRL finds no goal in random behaviour, and one in goal-directed behaviour.
    for demos, check in ((random_demos, lambda f: abs(f) < 0.02), (goal_demos, lambda f: f > 0.2)):
        train, test = split(demos, 0.8)
        recovered = maxent_irl(transitions, features, initial, train, DISCOUNT)
        assert check(fit(recovered.policy, test)), fit(recovered.policy, test)


def test_heldout_accuracy_known_answers():
    transitions, _, _, initial = random_mdp(3)
    uniform = np.full((10, 3), 1.0 / 3.0)
    deterministic = np.eye(3)[np.arange(10) % 3]
    demos = sample_trajectories(jax.random.key(7), transitions, deterministic, initial, 15, 20)
    assert heldout_accuracy(uniform, demos) == 1.0 / 3.0
    assert heldout_accuracy(deterministic, demos) == 1.0
    # A two-way tie that includes the demonstrated action counts one half; masked steps do not count.
    tied = Trajectories(states=np.array([[0, 1]]), actions=np.array([[0, 2]]), mask=np.array([[True, False]]))
    assert heldout_accuracy(np.array([[0.4, 0.4, 0.2], [0.0, 1.0, 0.0]]), tied) == 0.5


def test_split_and_state_visitation():
    demos = Trajectories(states=np.arange(10).reshape(5, 2) % 3, actions=np.zeros((5, 2), np.int32),
                         mask=np.array([[True, True]] * 4 + [[True, False]]))
    train, test = split(demos, 0.6)
    np.testing.assert_array_equal(train.states, demos.states[:3])
    np.testing.assert_array_equal(test.mask, demos.mask[3:])
    with pytest.raises(ValueError, match="empty"):
        split(demos, 0.05)
    visits = state_visitation(demos, num_states=4)
    # Valid states: 0 1 2 0 1 2 0 1 2 (the masked last step, state 0, is left out).
    np.testing.assert_allclose(visits, [3 / 9, 3 / 9, 3 / 9, 0.0])


def test_reward_distance_ignores_shaping_and_scale():
    transitions = chain()  # deterministic: the coverage is 6 of the 18 (s, a, s') triples
    rng = np.random.default_rng(0)
    reward = rng.normal(size=(3, 2, 3))
    potential = rng.normal(size=3)
    shaping = DISCOUNT * potential[None, None, :] - potential[:, None, None]
    assert reward_distance(reward, 2.0 * reward + shaping, transitions, DISCOUNT) == pytest.approx(0.0, abs=1e-6)
    assert reward_distance(reward, -reward, transitions, DISCOUNT, state_dist=[0.5, 0.5, 0.0]) == pytest.approx(1.0)
    # [S, A] rewards broadcast over s'.
    state_action = rng.normal(size=(3, 2))
    assert reward_distance(state_action, 3.0 * state_action[:, :, None] + shaping, transitions,
                           DISCOUNT) == pytest.approx(0.0, abs=1e-6)
    assert reward_distance(state_action, reward, transitions, DISCOUNT) > 0.05


# ----------------------------------------------------------------------------- determinism and bad inputs


def test_determinism():
    transitions, features, theta, initial = random_mdp(2)
    _, demos = demos_of(6, transitions, 2.0 * (features @ theta), initial)
    first = maxent_irl(transitions, features, initial, demos, DISCOUNT)
    again = maxent_irl(transitions, features, initial, demos, DISCOUNT)
    np.testing.assert_array_equal(first.theta, again.theta)
    np.testing.assert_array_equal(first.policy, again.policy)


def test_bad_inputs():
    transitions, features, _, initial = random_mdp(5, num_states=4)
    demos = sample_trajectories(jax.random.key(0), transitions, np.full((4, 3), 1 / 3), initial, 5, 4)
    irl = lambda **changes: maxent_irl(**{"transitions": transitions, "features": features, "initial": initial,
                                          "trajectories": demos, "discount": DISCOUNT, "steps": 2, **changes})
    with pytest.raises(ValueError, match="features"):
        irl(features=features[:3])
    with pytest.raises(ValueError, match="transitions must have shape"):
        irl(transitions=transitions[:, :, :3])
    with pytest.raises(ValueError, match="initial"):
        irl(initial=np.full(5, 0.2))
    with pytest.raises(ValueError, match="summing to 1"):
        irl(transitions=2.0 * transitions)
    with pytest.raises(ValueError, match="discount"):
        irl(discount=1.0)
    with pytest.raises(ValueError, match="no valid"):
        irl(trajectories=demos.replace(mask=np.zeros_like(demos.mask)))
    with pytest.raises(ValueError, match="actions"):
        irl(trajectories=demos.replace(actions=demos.actions + 3))
    with pytest.raises(ValueError, match="no valid"):
        fit(np.full((4, 3), 1 / 3), demos.replace(mask=np.zeros_like(demos.mask)))
    with pytest.raises(ValueError, match="reward_a"):
        reward_distance(np.zeros((4, 2)), np.zeros((4, 3)), transitions, DISCOUNT)
