"""The learned-search experiment: hand-worked scoring (episodes, cycles, probe labels), probes on
planted signals, and its smoke run (columns, metrics, the ResNet's thinking-steps invariance)."""

import numpy as np
import pandas as pd
import pytest

from innerlab.envs.sokoban_levels import LevelSet
from innerlab.experiments.learned_search import scoring

# A 1x7 corridor inside walls: player at column 1, boxes at columns 3 and 5 (flat cells 10, 12).
CORRIDOR = ["#########",
            "#@ $ $ .#",
            "#      .#",
            "#########"]


@pytest.fixture(scope="module")
def corridor() -> LevelSet:
    return LevelSet.from_text([CORRIDOR])


def test_first_episode_masks_steps_up_to_the_first_done():
    done = np.array([[0, 0, 1, 0, 1], [0, 0, 0, 0, 0]], bool).T[None]   # [S=1, T=5, L=2]
    mask, length = scoring.first_episode(done)
    assert length.tolist() == [[3, 5]]
    assert mask[0, :, 0].tolist() == [True, True, True, False, False]
    assert mask[0, :, 1].all()


def test_cycles_count_a_return_without_a_push_and_reset_at_a_push():
    start = np.array([[1, 1]])
    # right, left: back on the start cell with no push -> a cycle at step 2.
    pos = np.array([[1, 2], [1, 1], [1, 2]])[None, :, None]
    assert scoring.cycles(pos, np.zeros((1, 3, 1), bool), start, np.array([[3]]), window=3)[0, 0]
    # Outside the window it does not count.
    assert not scoring.cycles(pos, np.zeros((1, 3, 1), bool), start, np.array([[3]]), window=1)[0, 0]
    # A push on step 1 (the agent moves onto (1, 2)) starts a new segment: coming back to (1, 1)
    # after it is not a return within the segment.
    pos = np.array([[1, 2], [1, 1], [2, 1]])[None, :, None]
    pushed = np.array([True, False, False])[None, :, None]
    assert not scoring.cycles(pos, pushed, start, np.array([[3]]), window=3)[0, 0]
    # Bumping into a wall (the state repeats) is a cycle of length one.
    pos = np.array([[1, 1]])[None, :, None]
    assert scoring.cycles(pos, np.zeros((1, 1, 1), bool), start, np.array([[1]]), window=3)[0, 0]


def _trace(steps, **events):
    """A one-seed, one-level trace of `steps` steps with pushes {t: (from, dir)} and a done step."""
    push_from = np.full((1, steps, 1), -1)
    push_dir = np.full((1, steps, 1), -1)
    for t, (cell, direction) in events.get("pushes", {}).items():
        push_from[0, t, 0], push_dir[0, t, 0] = cell, direction
    done = np.zeros((1, steps, 1), bool)
    done[0, events.get("done", steps - 1), 0] = True
    return {"pushed": push_from >= 0, "push_from": push_from, "push_dir": push_dir, "done": done}


def test_probe_labels_by_hand(corridor):
    # Labels read only the push events (the env's own info), not the moves: pushes of the box on
    # cell 12 (right) at step 1 and of the box on cell 14 (right) at step 3; the episode ends at
    # step 4, so the push recorded at step 5 (after the auto-reset) is not the agent's plan.
    trace = _trace(6, pushes={1: (12, 1), 3: (14, 1), 5: (13, 1)}, done=4)
    labels = scoring.probe_labels(trace, corridor, horizon=2)
    # Boxes before each step: cells 12 and 14 (row 1, cols 3 and 5), then 13 and 14, then 13 and 15.
    box_cells = [np.flatnonzero(labels["box"][0, t, 0]).tolist() for t in range(6)]
    assert box_cells[:5] == [[12, 14], [12, 14], [13, 14], [13, 14], [13, 15]]
    assert box_cells[5] == []                       # past the first episode: masked
    assert labels["next_cell"][0, :, 0].tolist() == [12, 12, 14, 14, -1, -1]
    assert labels["next_dir"][0, :, 0].tolist() == [1, 1, 1, 1, -1, -1]
    within = [np.flatnonzero(labels["within"][0, t, 0]).tolist() for t in range(5)]
    # horizon 2: at t the window is steps t and t + 1.
    assert within == [[12], [12], [14], [14], []]
    assert labels["valid"][0, :, 0].tolist() == [True] * 5 + [False]
    # box_path: per cell, the direction of the first push out of it at or after t (4: none).
    path = labels["path"][0, :, 0]
    assert path[:, 12].tolist()[:5] == [1, 1, 4, 4, 4]
    assert path[:, 14].tolist()[:5] == [1, 1, 1, 1, 4]
    assert (np.delete(path[:5], [12, 14], axis=1) == scoring.NO_PUSH).all()
    floor = labels["floor"][0, :, 0]
    assert floor[:5].sum(1).tolist() == [int((~corridor.walls[0]).sum())] * 5 and not floor[5].any()


def test_agreement_and_correlation():
    a = np.array([[0, 1], [2, 3], [1, 1]])
    b = np.array([[0, 1], [2, 0], [0, 1]])
    done = np.array([[False, False], [True, False], [False, True]])
    # level 0 ends at step 1 (the step-2 difference is past its end): same; level 1 differs at step 1.
    assert scoring.agreement(a, b, done) == 0.5
    assert scoring.correlation([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert np.isnan(scoring.correlation([1, 1, 1], [1, 2, 3]))


def _planted(signal: bool, seeds=2, steps=6, levels=16, features=3, size=4, seed=0):
    """Features [S, T, L, F, H, W] and labels where, with `signal`, feature 0 marks the next pushed
    box's cell and features 1-2 encode its direction there; otherwise pure noise."""
    rng = np.random.default_rng(seed)
    cells = size * size
    box = np.zeros((seeds, steps, levels, cells), bool)
    next_cell = np.zeros((seeds, steps, levels), int)
    next_dir = rng.integers(0, 4, (seeds, steps, levels))
    for s in range(seeds):
        for t in range(steps):
            for lv in range(levels):
                chosen = rng.choice(cells, 3, replace=False)
                box[s, t, lv, chosen] = True
                next_cell[s, t, lv] = chosen[0]
    feats = rng.normal(size=(seeds, steps, levels, features, cells)).astype(np.float32) * 0.1
    if signal:
        s, t, lv = np.indices(next_cell.shape)
        feats[s, t, lv, 0, next_cell] += 3.0
        feats[s, t, lv, 1, next_cell] += np.where(next_dir % 2 == 0, 3.0, -3.0)
        feats[s, t, lv, 2, next_cell] += np.where(next_dir < 2, 3.0, -3.0)
    within = np.zeros_like(box)
    s, t, lv = np.indices(next_cell.shape)
    within[s, t, lv, next_cell] = True
    path = np.full(box.shape, 4)
    path[s, t, lv, next_cell] = next_dir  # the next pushed box's cell carries its direction
    labels = {"box": box, "next_cell": next_cell, "next_dir": next_dir, "within": within,
              "valid": np.ones(next_cell.shape, bool), "path": path, "floor": np.ones(box.shape, bool)}
    return feats.reshape(seeds, steps, levels, features, size, size), labels


def test_probes_read_a_planted_plan_and_not_noise():
    import jax

    from innerlab.experiments.learned_search import probes
    keys = jax.random.split(jax.random.key(0), 2)
    feats, labels = _planted(True)
    score = probes.fit_and_score(feats, labels, keys)
    # Directions sit on the corners of a square in features 1-2 (dir 0 = (+, +), 1 = (-, +),
    # 2 = (+, -), 3 = (-, -)), so each is linearly separable from the others.
    assert (score["next_push"] > 0.9).all() and (score["push_within_k"] > 0.9).all()
    assert (score["box_path"] > 0.9).all()
    chance = probes.chance(labels)
    assert chance["next_push"] == pytest.approx(1 / 12) and chance["box_path"] == pytest.approx(0.2)
    feats, labels = _planted(False, seed=1)
    score = probes.fit_and_score(feats, labels, keys)
    assert (score["next_push"] < 0.3).all()
    assert (np.abs(score["push_within_k"] - 0.5) < 0.2).all()
    assert (np.abs(score["box_path"] - 0.2) < 0.1).all()


# --- the smoke run (shared with the contract test's cases) ---------------------------------------

@pytest.fixture(scope="module")
def rows(smoke_run) -> pd.DataFrame:
    return pd.read_parquet(smoke_run("learned-search") / "metrics.parquet")


def test_smoke_rows_have_the_issues_columns_and_metrics(rows):
    for column in ("arch", "variant", "thinking_steps", "difficulty", "budget", "probe", "split"):
        assert column in rows.columns
    metrics = set(rows.metric)
    assert {"solved", "episode_return", "cycle_rate", "probe_accuracy", "think_rate", "env_steps"} <= metrics
    assert set(rows.arch) >= {"drc", "resnet", "random", "planner"}
    planner = rows[rows.arch == "planner"]
    assert sorted(planner[planner.metric == "solved"].budget.unique()) == [1, 4]
    assert set(rows[rows.metric == "solved"].difficulty) >= {"all", "easy", "medium", "hard"}


def test_thinking_steps_cannot_change_the_resnet_but_run_the_drc(rows):
    agreement = rows[(rows.metric == "action_agreement")]
    resnet = agreement[agreement.arch == "resnet"]
    assert len(resnet) and (resnet.value == 1.0).all()
    assert len(agreement[agreement.arch == "drc"])  # measured (its value depends on the weights)


def test_solve_rates_are_shares(rows):
    solved = rows[rows.metric == "solved"].value
    assert ((solved >= 0) & (solved <= 1)).all()


def test_thinking_gain_uses_the_fixed_n_not_the_best():
    from innerlab.experiments.learned_search import report
    # Per seed: solved at n = 0, 2, 4, 8. n = 8 is the best, but the gain is read at n = 4.
    solved = {0: [0.2, 0.3, 0.4], 2: [0.2, 0.3, 0.4], 4: [0.3, 0.4, 0.5], 8: [0.9, 0.9, 0.9]}
    rows = pd.DataFrame([{"arch": "drc", "variant": "fixed", "split": "test", "difficulty": "all", "metric": "solved",
                          "thinking_steps": n, "seed": s, "value": v, "budget": 0, "probe": "-"}
                         for n, values in solved.items() for s, v in enumerate(values)])
    assert report.gain_steps(rows) == 4
    mean, low, high = report.thinking_gain(rows, "drc")
    assert mean == pytest.approx(0.1) and low == pytest.approx(0.1) and high == pytest.approx(0.1)
    without_4 = rows[rows.thinking_steps != 4]
    assert report.gain_steps(without_4) == 2
    assert report.thinking_gain(without_4, "drc")[0] == pytest.approx(0.0)
    assert np.isnan(report.thinking_gain(rows[rows.thinking_steps == 0], "drc")[0])


def test_episodes_count_cycles_on_solved_levels_apart():
    levels = LevelSet.from_text([CORRIDOR, CORRIDOR])
    start = levels.player[0]
    steps, here, right = 3, tuple(start), (int(start[0]), int(start[1]) + 1)
    # Both levels: right, back (a cycle), right again. Level 0 is solved on the last step.
    pos = np.array([right, here, right])[None, :, None].repeat(2, axis=2)            # [S, T, L, 2]
    done = np.zeros((1, steps, 2), bool)
    done[0, -1, 0] = True
    trace = {"done": done, "solved": done.copy(), "reward": np.zeros((1, steps, 2)),
             "thought": np.zeros((1, steps, 2), bool), "player_pos": pos, "pushed": np.zeros((1, steps, 2), bool)}
    scores = scoring.episodes(trace, levels, window=3)
    assert scores["solved"].tolist() == [[1.0, 0.0]]
    assert scores["cycled"].tolist() == [[1.0, 1.0]]
    assert scores["cycled_solved"][0, 0] == 1.0 and np.isnan(scores["cycled_solved"][0, 1])
