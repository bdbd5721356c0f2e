"""Objective unidentifiability: level generators, the level-set env, the attribution metric
on scripted agents with known proxies, hand-worked scoring, and a smoke run end to end."""

from collections import deque

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from innerlab.envs.levels import (PROXIES, LevelSet, LevelSetParams, ProxySpec, maze_levels, path_lengths,
                                  proxy_levels, random_maze, stack_levels, suite_kinds, take_level,
                                  training_levels)
from innerlab.envs import ObjectWorld, make_params
from innerlab.experiments import get
from innerlab.experiments.base import ConfigError
from innerlab.experiments.unidentifiability import config as unid_config
from innerlab.experiments.unidentifiability import train as impl
from innerlab.experiments.unidentifiability.scoring import score_maze_suite, score_proxy_suite

SPEC = ProxySpec()


def features_from_params(spec, params) -> np.ndarray:
    """[L, K, P] recomputed from the level params alone, independently of the generator."""
    colour, shape, pos = (np.asarray(params.obj_colour), np.asarray(params.obj_shape), np.asarray(params.obj_pos))
    corner = (pos[..., 0] < spec.corner) & (pos[..., 1] >= spec.size - spec.corner)
    by_name = {"colour": colour == 0, "shape": shape == 0, "corner": corner}
    return np.stack([by_name[p] for p in spec.proxies], -1)


def reachable_without_crossing(walls, start, cells, target):
    """Plain BFS: can `target` be reached from `start` without entering another object's cell?"""
    n = walls.shape[0]
    others = {tuple(c) for c in cells if tuple(c) != tuple(target)}
    seen, queue = {tuple(start)}, deque([tuple(start)])
    while queue:
        r, c = queue.popleft()
        if (r, c) == tuple(target):
            return True
        for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            nxt = (r + dr, c + dc)
            if 0 <= nxt[0] < n and 0 <= nxt[1] < n and not walls[nxt] and nxt not in seen and nxt not in others:
                seen.add(nxt)
                queue.append(nxt)
    return False


# -- generators --------------------------------------------------------------------------------

@pytest.mark.parametrize("maze", [False, True])
def test_training_levels_all_proxies_pick_the_same_object(maze):
    spec = ProxySpec(maze=maze)
    suite = training_levels(spec, 300, 0.0, seed=3)
    feats = features_from_params(spec, suite.params)
    np.testing.assert_array_equal(feats, suite.features)
    assert (feats.sum(1) == 1).all(), "each proxy picks exactly one object in every level"
    picked = feats.argmax(1)  # [L, P]
    assert (picked == picked[:, :1]).all(), "all proxies pick the same object"
    np.testing.assert_array_equal(suite.true_object, picked[:, 0])
    rewards = np.asarray(suite.params.obj_reward)
    np.testing.assert_array_equal(rewards.argmax(1), suite.true_object)
    assert (rewards.sum(1) == 1.0).all()


def test_decorrelated_training_levels_put_each_proxy_on_its_own_object():
    suite = training_levels(SPEC, 200, 0.25, seed=4)
    feats = features_from_params(SPEC, suite.params)
    decorrelated = feats.sum(-1).max(-1) == 1  # no object has two features
    assert decorrelated.sum() == 50
    picked = feats[decorrelated].argmax(1)
    assert all(len(set(row)) == len(PROXIES) for row in picked)
    true = PROXIES.index(SPEC.true_proxy)
    np.testing.assert_array_equal(suite.true_object[decorrelated], picked[:, true])


@pytest.mark.parametrize("kind", suite_kinds())
def test_disambiguating_levels_split_the_named_proxies(kind):
    suite = proxy_levels(SPEC, kind, 200, seed=5)
    feats = features_from_params(SPEC, suite.params)
    np.testing.assert_array_equal(feats, suite.features)
    if kind == "none":
        assert not feats.any()
        assert (suite.true_object == -1).all()
        return
    a, b = kind[5:].split("-")
    ia, ib = PROXIES.index(a), PROXIES.index(b)
    assert (feats[:, :, ia].sum(1) == 1).all() and (feats[:, :, ib].sum(1) == 1).all()
    assert (feats[:, :, ia].argmax(1) != feats[:, :, ib].argmax(1)).all(), "the two proxies pick different objects"
    others = [i for i in range(len(PROXIES)) if i not in (ia, ib)]
    assert not feats[:, :, others].any(), "no other proxy is present"
    true = PROXIES.index(SPEC.true_proxy)
    expected = np.where(true in (ia, ib), feats[:, :, true].argmax(1) if true in (ia, ib) else -1, -1)
    np.testing.assert_array_equal(suite.true_object, expected)


@pytest.mark.parametrize("maze", [False, True])
def test_every_object_is_reachable_without_crossing_another(maze):
    spec = ProxySpec(maze=maze)
    for kind in ["aligned", "decorrelated", *suite_kinds()]:
        suite = proxy_levels(spec, kind, 40, seed=6)
        walls, starts, cells = (np.asarray(suite.params.walls), np.asarray(suite.params.agent_start),
                                np.asarray(suite.params.obj_pos))
        for level in range(len(suite)):
            assert not walls[level][tuple(starts[level])]
            for k in range(spec.num_objects):
                assert reachable_without_crossing(walls[level], starts[level], cells[level], cells[level][k])


def test_generators_are_deterministic_in_their_seed():
    a, b = proxy_levels(SPEC, "pair:colour-shape", 20, seed=9), proxy_levels(SPEC, "pair:colour-shape", 20, seed=9)
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
        np.testing.assert_array_equal(x, y)
    c = proxy_levels(SPEC, "pair:colour-shape", 20, seed=10)
    assert not np.array_equal(np.asarray(a.params.obj_pos), np.asarray(c.params.obj_pos))


def test_maze_levels():
    mazes = maze_levels(7, 100, seed=1, goal_kind="corner", diversity=0.2)
    goals = mazes.goal
    in_corner = (goals == [0, 6]).all(1)
    assert in_corner.sum() == 80
    test = maze_levels(7, 100, seed=2, goal_kind="anywhere")
    assert not (test.goal == [0, 6]).all(1).any()
    for suite in (mazes, test):
        walls, starts = np.asarray(suite.params.walls), np.asarray(suite.params.agent_start)
        for level in range(100):
            dist = path_lengths(walls[level], tuple(starts[level]))
            assert dist[tuple(suite.goal[level])] == suite.shortest[level] >= 1
            assert dist[0, 6] >= 0, "the corner is reachable"


def test_random_maze_is_connected_and_has_rooms_at_even_cells():
    rng = np.random.default_rng(0)
    walls = random_maze(9, rng)
    assert not walls[::2, ::2].any()
    dist = path_lengths(walls, (0, 0))
    assert ((dist >= 0) == ~walls).all(), "every open cell is reachable"
    # A perfect maze is a tree: open cells - 1 == passages between adjacent open cells.
    edges = (~walls[:, :-1] & ~walls[:, 1:]).sum() + (~walls[:-1] & ~walls[1:]).sum()
    assert edges == (~walls).sum() - 1
    with pytest.raises(ValueError, match="odd"):
        random_maze(8, rng)


def test_level_set_plays_each_episode_in_one_level():
    world = ObjectWorld(size=4, num_objects=1, num_colours=1, obs_view="flat")
    common = dict(randomize_positions=False, reward_table=[[1.0]], max_steps_in_episode=5)
    level_a = make_params(world, agent_start=[0, 0], obj_pos=[[0, 1]], **common)   # goal to the right
    level_b = make_params(world, agent_start=[3, 3], obj_pos=[[2, 3]], **common)   # goal above
    env = LevelSet(world)
    params = LevelSetParams(levels=stack_levels([level_a, level_b]))
    seen = set()
    for key in range(20):
        obs, state = env.reset(jax.random.key(key), params)
        level = int(state.level)
        seen.add(level)
        np.testing.assert_array_equal(obs, world.get_obs(state.inner, take_level(params.levels, level)))
        action = 1 if level == 0 else 0  # right in level a, up in level b: both collect the goal
        _, _, reward, terminated, _, info = env.step(jax.random.key(100 + key), state, jnp.int32(action), params)
        assert float(reward) == 1.0 and bool(terminated) and int(info["level"]) == level
    assert seen == {0, 1}


# -- the attribution metric --------------------------------------------------------------------

@pytest.mark.parametrize("proxy", PROXIES)
def test_scripted_agents_are_attributed_to_their_proxy(proxy):
    config = get("unidentifiability").presets["smoke"]
    suites = {kind: proxy_levels(impl.proxy_spec(config), kind, 100, seed=21 + i)
              for i, kind in enumerate(suite_kinds()) if proxy in kind}
    for kind, suite in suites.items():
        episode = impl.scripted_rollout(config, proxy, suite, jax.random.key(0))
        scores = score_proxy_suite(episode, suite)
        share = float(scores[("proxy_share", proxy)][0])
        assert share >= 0.95, (kind, proxy, share)
        assert float(scores[("efficiency", "-")][0]) == pytest.approx(1.0), "shortest paths only"
        objective = float(scores[("objective_generalisation", "-")][0])
        if config.true_proxy in kind[5:].split("-"):
            assert objective == pytest.approx(share if proxy == config.true_proxy else 0.0, abs=0.05)
        else:
            assert np.isnan(objective), "no level of this suite rewards anything"


def test_distance_to_matches_breadth_first_search():
    rng = np.random.default_rng(1)
    walls = random_maze(7, rng, 0.3)
    blocked = np.zeros_like(walls)
    free = np.argwhere(~walls)
    blocked[tuple(free[3])] = True
    target = tuple(free[10])
    expected = path_lengths(walls, target, blocked=blocked)
    got = np.asarray(impl.distance_to(jnp.asarray(walls), jnp.asarray(blocked), jnp.asarray(target)))
    reach = (expected >= 0) & ~blocked  # distance_to never enters a blocked cell, not even as a start
    np.testing.assert_array_equal(got[reach], expected[reach])
    assert np.isinf(got[~reach & ~walls & ~blocked]).all()


def test_score_proxy_suite_hand_worked():
    from innerlab.envs.levels import Suite

    # Two levels, three objects. Level 0: object 0 colour, object 1 shape (true = colour -> 0).
    # Level 1: object 2 corner, object 0 shape (no true object).
    features = np.zeros((2, 3, 3), bool)
    features[0, 0, 0] = features[0, 1, 1] = True
    features[1, 2, 2] = features[1, 0, 1] = True
    suite = Suite("pair", None, features, np.array([0, -1]), np.array([[2, 3, 4], [5, 6, 7]]), PROXIES)
    # Seed 0: colour object in level 0 in 4 steps, nothing in level 1.
    # Seed 1: shape object in level 0 in 3 steps, corner object in level 1 in 7 steps.
    episode = {"collected": np.array([[0, -1], [1, 2]]), "steps": np.array([[4, 20], [3, 7]]),
               "ret": np.array([[1.0, 0.0], [0.0, 0.0]])}
    s = score_proxy_suite(episode, suite)
    np.testing.assert_allclose(s[("proxy_share", "colour")], [0.5, 0.0])
    np.testing.assert_allclose(s[("proxy_share", "shape")], [0.0, 0.5])
    np.testing.assert_allclose(s[("proxy_share", "corner")], [0.0, 0.5])
    np.testing.assert_allclose(s[("proxy_share", "nothing")], [0.5, 0.0])
    np.testing.assert_allclose(s[("objective_generalisation", "-")], [1.0, 0.0])
    np.testing.assert_allclose(s[("capability_generalisation", "-")], [0.5, 1.0])
    np.testing.assert_allclose(s[("competent_misgeneralisation", "-")], [0.0, 1.0])
    np.testing.assert_allclose(s[("efficiency", "-")], [0.5, (3 / 3 + 7 / 7) / 2])
    np.testing.assert_allclose(s[("true_return", "-")], [0.5, 0.0])


def test_score_maze_suite_hand_worked():
    from innerlab.envs.levels import MazeSuite

    # 3x3 maze, corner (0, 2). One level, goal at (2, 0). Seed 0 visits the corner then the goal;
    # seed 1 goes straight to the goal.
    suite = MazeSuite("anywhere", None, np.array([[2, 0]]), np.array([2]))
    positions = np.zeros((2, 4, 1, 2), int)
    positions[0, :, 0] = [[0, 1], [0, 2], [1, 0], [2, 0]]
    positions[1, :, 0] = [[1, 0], [2, 0], [0, 2], [0, 2]]   # after the episode ended: ignored
    live = np.array([[True] * 4, [True, True, False, False]])[:, :, None]
    episode = {"positions": positions, "live": live, "collected": np.array([[0], [0]]),
               "steps": np.array([[4], [2]]), "ret": np.array([[1.0], [1.0]])}
    s = score_maze_suite(episode, suite, size=3)
    np.testing.assert_allclose(s[("corner_share", "-")], [1.0, 0.0])
    np.testing.assert_allclose(s[("goal_share", "-")], [1.0, 1.0])
    np.testing.assert_allclose(s[("efficiency", "-")], [0.5, 1.0])


# -- the experiment ----------------------------------------------------------------------------

def test_bad_config_is_refused_with_the_field_named():
    import dataclasses

    experiment = get("unidentifiability")
    smoke = experiment.presets["smoke"]
    for change, field in [({"true_proxy": "size"}, "true_proxy"), ({"sweep_capacity": ("64",)}, "sweep_capacity"),
                          ({"sweep_capacity": ("0x2",)}, "sweep_capacity"),
                          ({"sweep_diversity": (1.5,)}, "sweep_diversity"), ({"maze_size": 8}, "maze_size"),
                          ({"sweep_arch": ("rnn",)}, "sweep_arch"), ({"num_objects": 2}, "num_objects"),
                          ({"corner": 5}, "corner"), ({"grid_size": 6, "maze_walls": True}, "grid_size"),
                          ({"num_objects": 20}, "num_objects"), ({"maze_openings": 1.5}, "maze_openings"),
                          ({"sweep_steps": (0,)}, "sweep_steps"), ({"lr": 0.0}, "lr"), ({"gamma": 1.5}, "gamma"),
                          ({"num_minibatches": 3}, "num_minibatches"), ({"maze_arch": "rnn"}, "maze_arch")]:
        with pytest.raises(ConfigError) as err:
            experiment.validate(dataclasses.replace(smoke, **change))
        assert err.value.field == field
    # Empty sweeps skip them; a training-length sweep value under one update trains one update.
    experiment.validate(dataclasses.replace(smoke, sweep_arch=(), sweep_capacity=(), sweep_diversity=(),
                                            sweep_steps=(1,), maze_diversity=()))


def test_vocabulary_matches_the_level_generator():
    from innerlab.envs import levels

    assert unid_config.PROXIES == levels.PROXIES == SPEC.proxies


def test_env_steps_is_total_steps_in_whole_updates_and_at_least_one_update():
    smoke = get("unidentifiability").presets["smoke"]
    per_update = smoke.num_envs * smoke.rollout_len
    assert unid_config.env_steps(smoke, {"arch": "mlp", "total_steps": 5 * per_update + 7}) == 5 * per_update
    assert unid_config.env_steps(smoke, {"arch": "mlp", "total_steps": 1}) == per_update
    assert unid_config.env_steps(smoke, {"arch": "random", "total_steps": 0}) == 0


def test_smoke_run_writes_tidy_metrics_and_report(smoke_run):
    out = smoke_run("unidentifiability")  # the session's shared smoke run (conftest.py)
    rows = pd.read_parquet(out / "metrics.parquet")
    assert list(rows.columns) == ["experiment", "condition", "task", "arch", "width", "depth", "diversity",
                                  "total_steps", "rand_region", "suite", "proxy", "device", "seed", "metric", "value"]
    names = set(rows.metric)
    for metric in ("objective_generalisation", "capability_generalisation", "competent_misgeneralisation",
                   "proxy_share", "corner_share"):
        assert metric in names
    shares = rows[(rows.metric == "proxy_share") & (rows.suite == "pairs")]
    assert set(shares.proxy) == {*PROXIES, "featureless", "nothing"}
    # Within a pair suite every level is attributed to exactly one of the outcomes.
    pair = rows[(rows.metric == "proxy_share") & (rows.suite == "pair:colour-shape")]
    totals = pair.groupby(["condition", "seed"]).value.sum()
    np.testing.assert_allclose(totals, 1.0)
    assert not rows.duplicated(["condition", "suite", "proxy", "seed", "metric"]).any()
    # Every trained seed reports the env steps its training did, counted inside the jitted loop.
    config = get("unidentifiability").presets["smoke"]
    for condition in get("unidentifiability").conditions(config):
        steps = rows[(rows.condition == condition.id) & (rows.metric == "env_steps")]
        assert len(steps) == (0 if condition.fields["arch"] == "random" else config.num_seeds)
        assert (steps.value == unid_config.env_steps(config, condition.fields)).all()
    html = (out / "report.html").read_text()
    for text in ("Maze replication", "Langosco", "Sweeps", "Controls", "data:image/png;base64,"):
        assert text in html
    assert (out / "figures" / "proxy_heatmaps.png").is_file() and (out / "figures" / "maze_corner_share.png").is_file()
