"""Maze as published (Langosco et al. 2022, Maze I): procgen's level generator checked by hand and
by plain search, the env's dynamics and observation, the IMPALA-CNN's shapes and parameter count
(hand-computed from the authors' `ImpalaModel`), and the experiment's maze_paper conditions."""

import dataclasses
from collections import deque

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from innerlab.agents import NetworkConfig, make_network
from innerlab.agents.drc import parameter_count
from innerlab.agents.impala import max_pool
from innerlab.envs.levels import LevelSet, LevelSetParams, take_level
from innerlab.envs.procgen_maze import (PROCGEN_MOVES, ProcgenMaze, kruskal_maze, maze_sides,
                                        procgen_maze_levels)
from innerlab.experiments import get
from innerlab.experiments.base import ConfigError
from innerlab.experiments.unidentifiability import config as unid_config
from innerlab.experiments.unidentifiability.scoring import score_maze_suite


def reachable(walls: np.ndarray, start) -> set:
    """Cells reachable from `start` by 4-neighbour moves through non-walls (plain BFS)."""
    seen, queue = {tuple(start)}, deque([tuple(start)])
    n = walls.shape[0]
    while queue:
        r, c = queue.popleft()
        for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            nxt = (r + dr, c + dc)
            if 0 <= nxt[0] < n and 0 <= nxt[1] < n and not walls[nxt] and nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen


# -- levels ------------------------------------------------------------------------------------

def test_maze_sides_are_procgens():
    # maze_aisc.cpp: randn((world - 1) / 2) * 2 + 3
    assert maze_sides(15).tolist() == [3, 5, 7, 9, 11, 13, 15]
    assert maze_sides(25).tolist() == list(range(3, 26, 2))


@pytest.mark.parametrize("side", [3, 5, 9, 15])
def test_kruskal_maze_is_perfect(side):
    walls = kruskal_maze(side, np.random.default_rng(side))
    rooms = [(r, c) for r in range(0, side, 2) for c in range(0, side, 2)]
    assert not walls[::2, ::2].any(), "every even cell is a room"
    assert walls[1::2, 1::2].all(), "odd-odd cells stay walls"
    assert reachable(walls, (0, 0)) == {(r, c) for r in range(side) for c in range(side) if not walls[r, c]}
    # A perfect maze is a spanning tree of the rooms: rooms - 1 passages.
    passages = int((~walls).sum()) - len(rooms)
    assert passages == len(rooms) - 1


@pytest.mark.parametrize("rand_region", [0, 1, 3, None])
def test_levels_layout_start_cheese_and_solvable(rand_region):
    world = 15
    suite = procgen_maze_levels(world, 200, seed=4, rand_region=rand_region)
    walls, goal, start = (np.asarray(x) for x in (suite.params.walls, suite.params.goal, suite.params.start))
    assert set(suite.side.tolist()) <= set(maze_sides(world).tolist())
    assert len(set(suite.side.tolist())) >= 5, "sizes vary over the range"
    for i in range(len(suite)):
        side = int(suite.side[i])
        margin = (world - side) // 2
        inside = np.zeros((world, world), bool)
        inside[margin:margin + side, margin:margin + side] = True
        assert walls[i][~inside].all(), "everything outside the maze is wall"
        assert tuple(start[i]) == (margin + side - 1, margin), "the mouse starts in the maze's bottom-left cell"
        assert tuple(suite.corner[i]) == (margin, margin + side - 1)
        assert not walls[i][tuple(goal[i])] and tuple(goal[i]) != tuple(start[i])
        row, col = goal[i] - margin  # the cheese in the maze's own coordinates
        if rand_region is not None:
            region = max(min(rand_region, side), 1)
            assert row < region and col >= side - region, "cheese in the top-right region"
        assert tuple(goal[i]) in reachable(walls[i], start[i]), "solvable"
        assert suite.shortest[i] >= np.abs(goal[i] - start[i]).sum()  # never below the Manhattan distance
    if rand_region in (0, 1):
        np.testing.assert_array_equal(goal, suite.corner)
    if rand_region is None:  # anywhere: most cheeses are away from the corner
        assert (goal != suite.corner).any(-1).mean() > 0.8


def test_levels_are_deterministic_in_the_seed():
    a, b = (procgen_maze_levels(9, 20, seed=7, rand_region=2) for _ in range(2))
    np.testing.assert_array_equal(np.asarray(a.params.walls), np.asarray(b.params.walls))
    np.testing.assert_array_equal(a.goal, b.goal)


# -- env ---------------------------------------------------------------------------------------

def test_procgen_actions():
    # 0-2 left, 3 down, 4 stay, 5 up, 6-8 right, 9-14 stay (basic-abstract-game.cpp game_step)
    names = {(0, -1): "left", (1, 0): "down", (0, 0): "stay", (-1, 0): "up", (0, 1): "right"}
    got = [names[tuple(m)] for m in PROCGEN_MOVES]
    assert got == ["left"] * 3 + ["down", "stay", "up"] + ["right"] * 3 + ["stay"] * 6


def test_env_walks_the_shortest_path_to_the_cheese_and_terminates():
    suite = procgen_maze_levels(9, 5, seed=1, rand_region=None)
    env = ProcgenMaze(9)
    step_of = {(0, -1): 1, (1, 0): 3, (-1, 0): 5, (0, 1): 7}
    for i in range(len(suite)):
        level = take_level(suite.params, i)
        walls, goal = np.asarray(level.walls), tuple(np.asarray(level.goal))
        # BFS parents from the goal give a shortest path.
        parent, queue = {goal: None}, deque([goal])
        while queue:
            cell = queue.popleft()
            for d in step_of:
                nxt = (cell[0] - d[0], cell[1] - d[1])
                if 0 <= nxt[0] < 9 and 0 <= nxt[1] < 9 and not walls[nxt] and nxt not in parent:
                    parent[nxt] = cell
                    queue.append(nxt)
        obs, state = env.reset(jax.random.key(0), level)
        cell, total, steps = tuple(np.asarray(state.agent_pos)), 0.0, 0
        while cell != goal:
            nxt = parent[cell]
            obs, state, reward, terminated, truncated, info = env.step(
                jax.random.key(1), state, step_of[(nxt[0] - cell[0], nxt[1] - cell[1])], level)
            total, steps, cell = total + float(reward), steps + 1, nxt
            assert tuple(np.asarray(info["agent_pos"])) == nxt
        assert bool(terminated) and total == 1.0 and steps == suite.shortest[i]
        assert int(info["collected"]) == 0


def test_walls_block_and_no_op_actions_stay():
    level = take_level(procgen_maze_levels(7, 1, seed=2).params, 0)
    env = ProcgenMaze(7)
    _, state = env.reset(jax.random.key(0), level)
    start = np.asarray(state.agent_pos)
    for action in (4, 9, 13, 3):  # stays, and "down" from the bottom row into the border wall
        _, state, reward, terminated, _ = env.step_env(jax.random.key(0), state, action, level)
        np.testing.assert_array_equal(np.asarray(state.agent_pos), start)
        assert float(reward) == 0.0 and not bool(terminated)


def test_observation_planes_and_64_pixel_render():
    level = take_level(procgen_maze_levels(25, 1, seed=3, rand_region=5).params, 0)
    cells = ProcgenMaze(25)
    obs, state = cells.reset(jax.random.key(0), level)
    img = np.asarray(obs).reshape(3, 25, 25)
    np.testing.assert_array_equal(img[0].astype(bool), np.asarray(level.walls))
    assert img[1].sum() == 1 and img[1][tuple(np.asarray(level.start))] == 1
    assert img[2].sum() == 1 and img[2][tuple(np.asarray(level.goal))] == 1
    pixels = ProcgenMaze(25, 64)
    big = np.asarray(pixels.get_obs(state, level)).reshape(3, 64, 64)
    assert pixels.observation_space().shape == (3 * 64 * 64,)
    # Each pixel shows the cell under its centre: cell = floor((p + 0.5) * 25 / 64).
    idx = np.floor((np.arange(64) + 0.5) * 25 / 64).astype(int)
    np.testing.assert_array_equal(big, img[:, idx][:, :, idx])
    assert 6 <= big[1].sum() <= 9  # one cell is 2.56 pixels wide


def test_level_set_plays_procgen_mazes_jitted_and_vmapped():
    suite = procgen_maze_levels(7, 6, seed=5, rand_region=0)
    env = LevelSet(ProcgenMaze(7))
    params = LevelSetParams(levels=suite.params)
    reset = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    obs, state = reset(jax.random.split(jax.random.key(0), 4), params)
    obs, state, reward, terminated, truncated, info = step(jax.random.split(jax.random.key(1), 4), state,
                                                           jnp.array([0, 5, 7, 14]), params)
    assert obs.shape == (4, 3 * 49) and reward.shape == (4,)


def test_corner_share_scores_each_mazes_own_corner():
    class Suite:  # two levels of different sizes: corners differ
        goal = np.array([[5, 1], [2, 2]])
        corner = np.array([[3, 5], [1, 6]])
        shortest = np.array([4, 4])
    positions = np.zeros((1, 3, 2, 2), int)
    positions[0, :, 0] = [[4, 5], [3, 5], [5, 1]]   # level 0: corner at t=1, then the cheese
    positions[0, :, 1] = [[2, 3], [2, 2], [2, 2]]   # level 1: cheese at t=1, never the corner
    episode = {"positions": positions, "live": np.ones((1, 3, 2), bool), "collected": np.array([[0, 0]]),
               "steps": np.array([[3, 2]]), "ret": np.array([[1.0, 1.0]])}
    scores = score_maze_suite(episode, Suite, size=99)
    assert scores[("corner_share", "-")].tolist() == [0.5]
    assert scores[("goal_share", "-")].tolist() == [1.0]


# -- network -----------------------------------------------------------------------------------

def impala_parameter_count(in_channels: int, side: int, actions: int, width: int = 16) -> int:
    """By hand, from the authors' ImpalaModel: per stack a conv (in -> c) and two residual blocks of
    two convs (c -> c), each 3x3 with bias; a dense layer from the last stack to 256; the heads."""
    def conv(cin, cout):
        return 9 * cin * cout + cout
    total, cin = 0, in_channels
    for c in (width, 2 * width, 2 * width):
        total += conv(cin, c) + 4 * conv(c, c)
        cin = c
        side = (side - 1) // 2 + 1
    return total + (cin * side * side * 256 + 256) + (256 * actions + actions) + (256 + 1)


def test_impala_parameter_count_matches_the_published_network():
    # 64x64 RGB, procgen's 15 actions: 626,256 (the authors' model, scale 1)
    assert impala_parameter_count(3, 64, 15) == 626_256
    for side in (64, 25, 15):
        net = make_network(NetworkConfig(arch="impala", width=16, image_shape=(3, side, side)), 3 * side * side, 15)
        assert parameter_count(net.init(jax.random.key(0))) == impala_parameter_count(3, side, 15)


def test_impala_shapes_and_unroll_matches_apply():
    side = 15
    net = make_network(NetworkConfig(arch="impala", width=4, image_shape=(3, side, side)), 3 * side * side, 15)
    params = net.init(jax.random.key(0))
    obs = jax.random.uniform(jax.random.key(1), (5, 3, 3 * side * side))
    first = jnp.zeros((5, 3), bool)
    carry, logits, value = net.apply(params, net.initial_carry(), obs[0, 0], first[0, 0])
    assert logits.shape == (15,) and value.shape == () and carry.shape == (0,)
    assert net.features(params, carry, obs[0, 0], first[0, 0]).shape == (8, 2, 2)
    _, logits_t, value_t = net.unroll(params, jnp.zeros((3, 0)), obs, first)
    assert logits_t.shape == (5, 3, 15) and value_t.shape == (5, 3)
    one = jax.vmap(jax.vmap(lambda o: net.apply(params, carry, o, False)[1]))(obs)
    np.testing.assert_allclose(np.asarray(logits_t), np.asarray(one), atol=1e-5)


def test_max_pool_matches_a_loop():
    x = np.random.default_rng(0).normal(size=(7, 6, 2)).astype(np.float32)
    out = np.asarray(max_pool(jnp.asarray(x)))
    assert out.shape == (4, 3, 2)
    for i in range(4):
        for j in range(3):
            window = x[max(2 * i - 1, 0):2 * i + 2, max(2 * j - 1, 0):2 * j + 2]
            np.testing.assert_allclose(out[i, j], window.max((0, 1)))


# -- the experiment's conditions ---------------------------------------------------------------

def test_conditions_and_presets():
    smoke = unid_config.PRESETS["smoke"]
    paper = [c for c in unid_config.conditions(smoke) if c.fields["task"] == "maze_paper"]
    assert [c.fields["arch"] for c in paper] == ["impala", "random"]
    assert not any(c.fields["task"] == "maze_paper" for c in unid_config.conditions(unid_config.PRESETS["quick"]))
    published = unid_config.PRESETS["paper"]
    assert published.maze_paper and published.maze_paper_total_steps == 200_000_000
    assert (published.maze_paper_world, published.maze_paper_pixels, published.maze_paper_num_envs,
            published.maze_paper_rollout_len, published.maze_paper_epochs, published.maze_paper_minibatches,
            published.maze_paper_gamma, published.maze_paper_lr, published.maze_paper_ent_coef,
            published.maze_paper_width, published.maze_paper_max_steps) == (25, 64, 256, 256, 3, 8, 0.999, 5e-4,
                                                                              0.01, 16, 500)
    trained = paper[0]
    assert unid_config.env_steps(smoke, trained.fields) == 8 * 16


def test_bad_maze_paper_settings_name_their_field():
    experiment = get("unidentifiability")
    smoke = unid_config.PRESETS["smoke"]
    for fields, name in (({"maze_paper_minibatches": 3}, "maze_paper_minibatches"),
                         ({"maze_paper_pixels": 5}, "maze_paper_pixels"),
                         ({"maze_paper_regions": ()}, "maze_paper_regions")):
        with pytest.raises(ConfigError) as err:
            experiment.validate(dataclasses.replace(smoke, **fields))
        assert err.value.field == name


@pytest.mark.xdist_group("unidentifiability")  # shares that experiment's smoke run (tests/conftest.py)
def test_smoke_run_has_maze_paper_rows_and_report_section(smoke_run):
    import pandas as pd

    run = smoke_run("unidentifiability")
    rows = pd.read_parquet(run / "metrics.parquet")
    paper = rows[rows.task == "maze_paper"]
    assert set(paper.arch) == {"impala", "random"}
    assert {"goal_share", "corner_share", "env_steps", "train_seconds"} <= set(paper.metric)
    assert paper.device.notna().all()
    values = paper[paper.metric.isin(["goal_share", "corner_share"])].value
    assert ((values >= 0) & (values <= 1)).all()
    md = (run / "report.md").read_text()
    assert "## Maze as published" in md and "| setting | theirs | source | this run |" in md
