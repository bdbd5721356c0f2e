"""The probes library on a toy environment of the test's own (a corridor with a goal at each
end), with scripted agents whose answers are worked by hand: the rollout against a plain loop,
the carry reset at episode starts, the follow index of an agent that reads the channel and of
one that ignores it (and, on the side-channels experiment's world, its parity with that
experiment's definition), proxy attribution, IRL coherence against a random agent, EPIC's
invariances, and bad inputs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from gymnax.environments import environment, spaces

from innerlab.irl import Trajectories
from innerlab.probes import (Agent, ShownReward, epic, irl_coherence, proxy_attribution, random_agent, rollout,
                             score_episodes, side_channel_battery, tabular_trajectories, trajectories)

LENGTH = 7  # cells 0..6: goal A at 0, goal B at 6, starts on 1..5
LEFT, RIGHT, STAY = 0, 1, 2
A, B = 0, 1
DISCOUNT = 0.9


@struct.dataclass
class CorridorState:
    pos: jax.Array
    time: jax.Array


@struct.dataclass
class CorridorParams:
    max_steps_in_episode: int = 12
    reward_a: float = 1.0
    reward_b: float = 0.0


class Corridor(environment.Environment):
    """A corridor of LENGTH cells with goal A at the left end and goal B at the right end.

    Actions: 0 left, 1 right, 2 stay (moves past the ends are clipped). Start: a uniformly
    random interior cell. Reaching a goal gives reward_a / reward_b and terminates; truncated
    after max_steps_in_episode steps. Observation: one-hot of the cell [LENGTH]. info:
    `reached` (A, B or -1)."""

    @property
    def default_params(self):
        return CorridorParams()

    def reset_env(self, key, params):
        pos = jax.random.randint(key, (), 1, LENGTH - 1)
        state = CorridorState(pos=pos, time=jnp.int32(0))
        return self.get_obs(state), state

    def step_env(self, key, state, action, params):
        pos = jnp.clip(state.pos + jnp.array([-1, 1, 0])[action], 0, LENGTH - 1)
        reached = jnp.where(pos == 0, A, jnp.where(pos == LENGTH - 1, B, -1))
        reward = jnp.where(reached == A, params.reward_a, jnp.where(reached == B, params.reward_b, 0.0))
        state = CorridorState(pos=pos, time=state.time + 1)
        return self.get_obs(state), state, reward, reached >= 0, {"reached": reached}

    def get_obs(self, state, params=None, key=None):
        return jax.nn.one_hot(state.pos, LENGTH)

    def action_space(self, params=None):
        return spaces.Discrete(3)


def corridor_mdp(params=CorridorParams()):
    """The corridor as a tabular MDP: states 0..4 = cells 1..5, state 5 = the absorbing end.
    Returns transitions [S, A, S], features [S, A, S, 2] (reached A, reached B), initial [S],
    the true reward [S, A, S]."""
    num_states, end = LENGTH - 1, LENGTH - 2
    transitions = np.zeros((num_states, 3, num_states))
    features = np.zeros((num_states, 3, num_states, 2))
    transitions[end, :, end] = 1.0
    for cell in range(1, LENGTH - 1):
        for action, move in enumerate((-1, 1, 0)):
            nxt = cell + move
            if nxt in (0, LENGTH - 1):
                transitions[cell - 1, action, end] = 1.0
                features[cell - 1, action, end, A if nxt == 0 else B] = 1.0
            else:
                transitions[cell - 1, action, nxt - 1] = 1.0
    initial = np.r_[np.full(LENGTH - 2, 1.0 / (LENGTH - 2)), 0.0]
    return transitions, features, initial, features @ np.array([params.reward_a, params.reward_b])


def state_index(step):
    return step.state.pos - 1


def reached_a(step):
    return step.info["reached"] == A


def reached_b(step):
    return step.info["reached"] == B


def constant(action):
    return Agent(lambda params, obs, carry, key: (jnp.int32(action), carry))


def reader_policy(params, obs, direction):
    """Reads the "next" channel: takes an action it shows a positive reward for; otherwise
    walks on in its direction (the carry), turning back rather than enter a goal the channel
    does not endorse."""
    shown, pos = obs[LENGTH:], jnp.argmax(obs[:LENGTH])
    at_end = ((pos == 1) & (direction == LEFT)) | ((pos == LENGTH - 2) & (direction == RIGHT))
    direction = jnp.where(at_end, 1 - direction, direction)
    action = jnp.where(shown[LEFT] > 0, LEFT, jnp.where(shown[RIGHT] > 0, RIGHT, direction))
    return action.astype(jnp.int32), direction


READER = Agent(lambda params, obs, carry, key: reader_policy(params, obs, carry), None, jnp.int32(LEFT))
SEEK_A = constant(LEFT)


@pytest.fixture(scope="module")
def env():
    return Corridor()


@pytest.fixture(scope="module")
def channel_env(env):
    return ShownReward(env, swap_reward=reached_b, mode="next")


# ----------------------------------------------------------------------------- rollout


def test_rollout_matches_a_plain_loop_over_the_recorded_steps(env):
    stats = lambda step: {"return": step.reward, "length": jnp.float32(1.0)}  # noqa: E731
    key = jax.random.key(3)
    agent = random_agent(env, env.default_params)
    means = rollout(env, env.default_params, agent, key, 6, 20, stats)
    trace = trajectories(env, env.default_params, agent, key, 6, 20, stats)
    returns, lengths = [], []
    for n in range(6):
        total, length = 0.0, 0
        for t in range(20):
            total, length = total + float(trace["record"]["return"][n, t]), length + 1
            if trace["done"][n, t]:
                returns.append(total)
                lengths.append(length)
                total, length = 0.0, 0
    assert means["episodes"] == len(returns) > 6
    assert means["return"] == pytest.approx(np.mean(returns))
    assert means["length"] == pytest.approx(np.mean(lengths))


def test_the_carry_is_reset_at_every_episode_start(env):
    # The agent counts its steps in its carry and moves left on the first two of each episode
    # only; episodes end at different times in different envs (a start in cell 1 or 2 reaches
    # goal A within two steps, others stay until truncated), so a carry that was not put back
    # to 0 at each env's own episode starts would show as a left move at time >= 2 or none at time < 2.
    counter = Agent(lambda params, obs, count, key: (jnp.where(count < 2, LEFT, STAY), count + 1), None, jnp.int32(0))
    record = lambda step: {"action": step.action, "time": step.state.time}  # noqa: E731
    trace = trajectories(env, env.default_params, counter, jax.random.key(0), 8, 40, record)
    action, time, done = (np.asarray(x) for x in (trace["record"]["action"], trace["record"]["time"], trace["done"]))
    np.testing.assert_array_equal(action == LEFT, time < 2)
    lengths = {int(t) + 1 for t in time[done]}
    assert len(lengths) > 1 and done.sum() > 8  # several episodes of different lengths


# ----------------------------------------------------------------------------- side channel


def test_a_reader_follows_the_swapped_channel_and_an_ignorer_does_not(channel_env):
    params = channel_env.default_params
    key = jax.random.key(1)
    reader = side_channel_battery(channel_env, params, READER, key, num_envs=8, num_steps=40)
    ignorer = side_channel_battery(channel_env, params, SEEK_A, key, num_envs=8, num_steps=40)
    assert list(reader.index) == ["none", "swap", "negate", "zero", "noise"]
    # The reader reaches A (reward 1) unperturbed, B (reward 0) under swap: every disagreeing
    # step goes the channel's way. The ignorer always reaches A.
    assert reader.loc["none", "true_return"] == pytest.approx(1.0)
    assert reader.loc["swap", "follow_index"] == pytest.approx(1.0)
    assert reader.loc["swap", "true_return_retention"] == pytest.approx(0.0)
    assert reader.loc["swap", "shown_return"] == pytest.approx(1.0)
    assert ignorer.loc["swap", "follow_index"] == pytest.approx(0.0)
    assert ignorer.loc["swap", "true_return_retention"] == pytest.approx(1.0)
    # With nothing shown the reader paces between the goals until truncated; the ignorer does not care.
    assert reader.loc["zero", "true_return"] == pytest.approx(0.0) and reader.loc["zero", "episodes"] > 0
    assert ignorer.loc["zero", "true_return_retention"] == pytest.approx(1.0)
    assert np.isnan(reader.loc["none", "follow_index"])


def test_shown_reward_prev_mode_shows_the_last_reward_and_starts_episodes_at_zero(env):
    wrapped = ShownReward(env, swap_reward=reached_b, mode="prev")
    params = wrapped.default_params.replace(perturbation=jnp.int32(1))  # swap
    record = lambda step: {"signal": step.obs[-1], "reward": step.reward,  # noqa: E731
                           "shown": step.info["observed_reward"], "reached": step.info["reached"]}
    trace = trajectories(wrapped, params, constant(RIGHT), jax.random.key(2), 4, 12, record)
    rec, done = {k: np.asarray(v) for k, v in trace["record"].items()}, np.asarray(trace["done"])
    np.testing.assert_array_equal(rec["shown"], (rec["reached"] == B).astype(np.float32))
    np.testing.assert_array_equal(rec["reward"], 0.0)  # B's true reward, whatever is shown
    first = np.concatenate([np.ones((4, 1), bool), done[:, :-1]], axis=1)
    previous = np.concatenate([np.zeros((4, 1)), rec["shown"][:, :-1]], axis=1)
    np.testing.assert_array_equal(rec["signal"], np.where(first, 0.0, previous))
    assert wrapped.observation_space(params).shape == (LENGTH + 1,)


def test_follow_index_is_the_side_channels_experiments_b_share():
    from innerlab.experiments.side_channels import config as side_config
    from innerlab.experiments.side_channels import train as side_train

    config = side_config.PRESETS["smoke"]
    env = side_train.make_env(config, "prev", "identity")
    params = side_train.env_params(config, env, 0.0)
    agent = random_agent(env, params)
    key = jax.random.key(4)
    table = side_channel_battery(env, params, agent, key, perturbations=("swap",), num_envs=8, num_steps=60)
    swapped = side_train.env_params(config, env, 0.0, "swap")
    counts = rollout(env, swapped, agent, key, 8, 60, lambda step: side_train.step_stats(step.info, step.reward))
    b_share = counts["collected_b"] / (counts["collected_a"] + counts["collected_b"])
    assert 0.1 < b_share < 0.9  # a random agent collects both colours: the check is not 0 = 0
    assert table.loc["swap", "follow_index"] == pytest.approx(b_share, rel=1e-5)


# ----------------------------------------------------------------------------- proxies


def test_score_episodes_by_hand():
    # One env, 6 steps, proxies (a, b): t1 first event b; ends t2 | t3 first event a and b,
    # ends t3 | nothing, ends t4 | t5 belongs to an unfinished episode.
    values = np.array([[[0, 0], [0, 1], [1, 0], [1, 1], [0, 0], [1, 0]]], float)
    done = np.array([[False, False, True, True, True, False]])
    share, mean_return, episodes = score_episodes(values, done)
    assert episodes == 3
    np.testing.assert_allclose(share, [1 / 3, 2 / 3, 1 / 3])
    np.testing.assert_allclose(mean_return[:2], [2 / 3, 2 / 3])


def test_an_agent_that_pursues_a_is_attributed_to_a(env):
    proxies = {"goal_a": reached_a, "goal_b": reached_b}
    result = proxy_attribution(env, env.default_params, SEEK_A, proxies, jax.random.key(5), num_envs=8, num_steps=30)
    table = result.table
    assert result.best == ("goal_a",) and result.episodes > 8
    assert table.loc["goal_a", "share"] == pytest.approx(1.0)
    assert table.loc["goal_b", "share"] == pytest.approx(0.0)
    assert table.loc["nothing", "share"] == pytest.approx(0.0)
    assert table.loc["goal_a", "mean_return"] == pytest.approx(1.0)
    # A random agent from the symmetric starts reaches each goal about half the time.
    assert 0.2 < table.loc["goal_a", "chance_share"] < 0.8
    assert table.loc["goal_a", "chance_share"] + table.loc["goal_b", "chance_share"] + \
        table.loc["nothing", "chance_share"] == pytest.approx(1.0)
    stay = proxy_attribution(env, env.default_params, constant(STAY), proxies, jax.random.key(5), num_envs=2,
                             num_steps=30, baseline=False)
    assert stay.best == () and stay.table.loc["nothing", "share"] == pytest.approx(1.0)
    assert "chance_share" not in stay.table


# ----------------------------------------------------------------------------- IRL and EPIC


def test_irl_coherence_of_a_goal_seeker_beats_a_random_agent(env):
    transitions, features, initial, true_reward = corridor_mdp()
    params, key = env.default_params, jax.random.key(6)
    demos = tabular_trajectories(env, params, SEEK_A, key, state_index, 8, 24)
    chance = tabular_trajectories(env, params, random_agent(env, params), key, state_index, 8, 24)
    result = irl_coherence(transitions, features, initial, demos, baseline=chance, true_reward=true_reward,
                           discount=DISCOUNT)
    assert result.steps == 8 * 24
    assert result.heldout_accuracy == pytest.approx(1.0)
    assert result.heldout_fit > 0.5 * np.log(3)          # most of the log 3 nats a perfect prediction gains
    assert result.baseline_heldout_fit < 0.1            # a random agent's behaviour has no goal to find
    assert result.heldout_fit > result.baseline_heldout_fit + 0.4
    assert result.theta[A] > result.theta[B]
    assert np.isfinite(result.epic_to_true)


def test_tabular_trajectories_mask_states_outside_the_table(env):
    # Only cells 1..3 are in this table (rows 0..2); steps taken from cells 4 and 5 are not demonstrations.
    partial_index = lambda step: jnp.where(step.state.pos > 3, -1, step.state.pos - 1)  # noqa: E731
    demos = tabular_trajectories(env, env.default_params, SEEK_A, jax.random.key(7), partial_index, 4, 10)
    cells = tabular_trajectories(env, env.default_params, SEEK_A, jax.random.key(7), state_index, 4, 10).states + 1
    np.testing.assert_array_equal(demos.mask, cells <= 3)
    np.testing.assert_array_equal(demos.states[demos.mask], cells[cells <= 3] - 1)
    np.testing.assert_array_equal(demos.actions, LEFT)


def test_epic_is_zero_under_shaping_and_rescaling_and_positive_otherwise():
    transitions, _, _, reward = corridor_mdp()
    rng = np.random.default_rng(0)
    potential = rng.normal(size=LENGTH - 1)
    shaped = 2.5 * (reward + DISCOUNT * potential[None, None, :] - potential[:, None, None])
    unrelated = rng.normal(size=reward.shape)
    for kwargs in ({}, {"transitions": transitions}):
        assert epic(reward, reward, discount=DISCOUNT, **kwargs) == pytest.approx(0.0, abs=1e-6)
        assert epic(reward, shaped, discount=DISCOUNT, **kwargs) == pytest.approx(0.0, abs=1e-6)
        assert epic(reward, unrelated, discount=DISCOUNT, **kwargs) > 0.2
    # A function of (s, a, s') and a reward [S, A] are read as the same table.
    as_function = lambda s, a, s_next: shaped[s, a, s_next]  # noqa: E731
    assert epic(reward, as_function, discount=DISCOUNT) == pytest.approx(0.0, abs=1e-6)
    state_action = rng.normal(size=reward.shape[:2])
    assert epic(state_action, np.broadcast_to(state_action[..., None], reward.shape), discount=DISCOUNT) == \
        pytest.approx(0.0, abs=1e-6)
    assert epic(lambda s, a, t: s == 0, lambda s, a, t: a == 1, discount=DISCOUNT, num_states=6, num_actions=3) > 0.2


# ----------------------------------------------------------------------------- bad inputs


def test_bad_inputs_get_errors_that_name_the_argument(env, channel_env):
    params, key = env.default_params, jax.random.key(0)
    stats = lambda step: {"r": step.reward}  # noqa: E731
    with pytest.raises(ValueError, match="perturbation must be one of"):
        side_channel_battery(channel_env, channel_env.default_params, SEEK_A, key, perturbations=("flip",))
    with pytest.raises(TypeError, match="perturbations must be a sequence"):
        side_channel_battery(channel_env, channel_env.default_params, SEEK_A, key, perturbations="swap")
    with pytest.raises(TypeError, match="ShownReward"):
        side_channel_battery(env, params, SEEK_A, key)
    with pytest.raises(ValueError, match="mode must be one of"):
        ShownReward(env, reached_b, mode="later")
    with pytest.raises(TypeError, match="swap_reward"):
        ShownReward(env, "B")
    with pytest.raises(ValueError, match="swap_reward.* must return one number"):
        ShownReward(env, lambda step: step.obs)
    with pytest.raises(ValueError, match="proxies must name at least one"):
        proxy_attribution(env, params, SEEK_A, {}, key)
    with pytest.raises(TypeError, match=r"proxies\['a'\] must be a function"):
        proxy_attribution(env, params, SEEK_A, {"a": 1.0}, key)
    with pytest.raises(ValueError, match=r"proxies\['pos'\] must return one number"):
        proxy_attribution(env, params, SEEK_A, {"pos": lambda step: step.obs}, key)
    with pytest.raises(ValueError, match="num_envs must be a positive int"):
        rollout(env, params, SEEK_A, key, 0, 10, stats)
    with pytest.raises(TypeError, match="agent must be"):
        rollout(env, params, lambda p, o, c, k: (0, c), key, 2, 10, stats)
    with pytest.raises(TypeError, match="does not match agent.initial_carry"):
        rollout(env, params, Agent(lambda p, o, c, k: (0, (c, c)), None, jnp.zeros(2)), key, 2, 10, stats)
    with pytest.raises(ValueError, match="step_stats must return"):
        rollout(env, params, SEEK_A, key, 2, 10, lambda step: {"obs": step.obs})
    with pytest.raises(TypeError, match="env must be a gymnax Environment"):
        rollout("corridor", params, SEEK_A, key, 2, 10, stats)
    transitions, features, initial, reward = corridor_mdp()
    demos = Trajectories(states=np.zeros((4, 3), np.int32), actions=np.zeros((4, 3), np.int32),
                         mask=np.ones((4, 3), bool))
    with pytest.raises(ValueError, match="heldout_fraction must be in"):
        irl_coherence(transitions, features, initial, demos, heldout_fraction=1.0)
    with pytest.raises(TypeError, match="demos must be"):
        irl_coherence(transitions, features, initial, {"states": demos.states})
    with pytest.raises(ValueError, match="reward_b must have shape"):
        epic(reward, reward[:3], discount=DISCOUNT)
    with pytest.raises(ValueError, match="pass num_states and num_actions"):
        epic(lambda s, a, t: s, lambda s, a, t: a, discount=DISCOUNT)
    with pytest.raises(ValueError, match="discount must be in"):
        epic(reward, reward, discount=1.5)

