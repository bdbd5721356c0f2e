"""Scoring of recorded rollouts on the host (numpy): solve rates, pacing, thinking, probe labels.

A trace is a dict of arrays [S, T, L, ...] (seeds, steps, levels) from `train.rollout_level`
or `train.planner_rollout`. Only each level's first episode counts: the steps up to and
including its first `done` (an episode still running after T steps ends at T - 1).
"""

from __future__ import annotations

import numpy as np

from innerlab.envs.sokoban_levels import LevelSet

NO_PUSH = 4
"""The `path` label of a cell no box will be pushed out of (directions are 0..3)."""


# Flat-index displacement of a push in direction 0 up, 1 right, 2 down, 3 left on a W-wide grid.
def _flat_moves(width: int) -> np.ndarray:
    return np.array([-width, 1, width, -1])


def first_episode(done: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mask [S, T, L]: step t belongs to the first episode, length [S, L])."""
    steps = done.shape[1]
    ended = done.any(axis=1)
    last = np.where(ended, done.argmax(axis=1), steps - 1)          # [S, L]
    mask = np.arange(steps)[None, :, None] <= last[:, None, :]
    return mask, last + 1


def cycles(player_pos: np.ndarray, pushed: np.ndarray, start: np.ndarray, length: np.ndarray,
           window: int) -> np.ndarray:
    """[S, L] bool: within its first `window` steps (and its first episode) the agent came back
    to a state it had been in since its last push, i.e. stood on a cell it had already stood on
    while no box moved (staying put, against a wall or by thinking, counts: the state repeats).

    player_pos [S, T, L, 2] after each step; pushed [S, T, L]; start [L, 2]; length [S, L]."""
    s_count, _, l_count, _ = player_pos.shape
    out = np.zeros((s_count, l_count), bool)
    for s in range(s_count):
        for lv in range(l_count):
            seen = {tuple(start[lv])}
            for t in range(min(window, int(length[s, lv]))):
                here = tuple(player_pos[s, t, lv])
                if pushed[s, t, lv]:
                    seen = {here}
                    continue
                if here in seen:
                    out[s, lv] = True
                    break
                seen.add(here)
    return out


def episodes(trace: dict[str, np.ndarray], level_set: LevelSet, window: int) -> dict[str, np.ndarray]:
    """Per seed and level [S, L]: solved, episode_return, length, cycled, cycled_solved (cycled on
    the levels the agent solved, nan elsewhere: pacing before a solution, as Taufeeque et al.
    look at it; an agent that fails a level wanders and cycles for want of a plan), thinks,
    think_rate."""
    mask, length = first_episode(trace["done"])
    solved = (trace["solved"] & mask).any(axis=1)
    ret = (trace["reward"] * mask).sum(axis=1)
    thinks = (trace["thought"] & mask).sum(axis=1)
    cycled = cycles(trace["player_pos"], trace["pushed"], level_set.player, length, window)
    return {"solved": solved.astype(float), "episode_return": ret, "length": length.astype(float),
            "cycled": cycled.astype(float), "cycled_solved": np.where(solved, cycled, np.nan),
            "thinks": thinks.astype(float),
            "think_rate": thinks / np.maximum(length, 1)}


def agreement(actions_a: np.ndarray, actions_b: np.ndarray, done: np.ndarray) -> float:
    """Share of levels on which two rollouts took the same action at every step of the first
    episode (actions and done [T, L]; `done` of rollout b)."""
    mask, _ = first_episode(done[None])
    same = (actions_a == actions_b) | ~mask[0]
    return float(same.all(axis=0).mean())


def correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of x and y ([L]); nan if either is constant."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def probe_labels(trace: dict[str, np.ndarray], level_set: LevelSet, horizon: int) -> dict[str, np.ndarray]:
    """What the probes read, for every step t of every first episode (before action t is taken):

    box [S, T, L, HW] bool: cells holding a box at t;
    next_cell, next_dir [S, T, L] int: cell and direction of the first push at or after t (-1: none);
    within [S, T, L, HW] bool: the box on this cell is pushed within steps t .. t + horizon - 1;
    valid [S, T, L] bool: t is in the first episode;
    path [S, T, L, HW] int: the direction of the first push out of this cell at or after t, for
        every cell (a box's future path over the rest of the episode; NO_PUSH if none): the
        "box directions" of Taufeeque et al. 2024;
    floor [S, T, L, HW] bool: non-wall cells of the steps in the first episode.
    """
    mask, _ = first_episode(trace["done"])
    pushed = trace["pushed"] & mask
    push_from, push_dir = trace["push_from"], trace["push_dir"]
    s_count, steps, l_count = pushed.shape
    h, w = level_set.boxes.shape[1:]
    cells = h * w
    moves = _flat_moves(w)

    boxes = np.broadcast_to(level_set.boxes.reshape(1, l_count, cells), (s_count, l_count, cells)).copy()
    box = np.zeros((s_count, steps, l_count, cells), bool)
    s_idx, l_idx = np.meshgrid(np.arange(s_count), np.arange(l_count), indexing="ij")
    for t in range(steps):
        box[:, t] = boxes
        p = pushed[:, t]
        src = np.where(p, push_from[:, t], 0)
        dst = np.where(p, src + moves[np.clip(push_dir[:, t], 0, 3)], 0)
        boxes[s_idx[p], l_idx[p], src[p]] = False
        boxes[s_idx[p], l_idx[p], dst[p]] = True

    next_step = np.full((s_count, l_count), -1)
    next_cell = np.full((s_count, steps, l_count), -1)
    next_dir = np.full((s_count, steps, l_count), -1)
    for t in range(steps - 1, -1, -1):
        next_step = np.where(pushed[:, t], t, next_step)
        found = next_step >= 0
        safe = np.maximum(next_step, 0)
        next_cell[:, t] = np.where(found, np.take_along_axis(push_from, safe[:, None], 1)[:, 0], -1)
        next_dir[:, t] = np.where(found, np.take_along_axis(push_dir, safe[:, None], 1)[:, 0], -1)

    onehot = np.zeros((s_count, steps + 1, l_count, cells), np.int32)
    s3, t3, l3 = np.nonzero(pushed)
    onehot[s3, t3 + 1, l3, push_from[s3, t3, l3]] = 1
    cumulative = onehot.cumsum(axis=1)                                  # pushes from each cell before t
    ahead = np.minimum(np.arange(steps) + horizon, steps)
    within = (cumulative[:, ahead] - cumulative[:, :steps]) > 0

    path = np.full((s_count, steps + 1, l_count, cells), NO_PUSH)      # backwards: the first push wins
    for t in range(steps - 1, -1, -1):
        path[:, t] = path[:, t + 1]
        s_i, l_i = np.nonzero(pushed[:, t])
        path[s_i, t, l_i, push_from[s_i, t, l_i]] = push_dir[s_i, t, l_i]
    floor = ~level_set.walls.reshape(1, 1, l_count, cells) & mask[..., None]
    return {"box": box & mask[..., None], "next_cell": np.where(mask, next_cell, -1),
            "next_dir": np.where(mask, next_dir, -1), "within": within & box, "valid": mask,
            "path": path[:, :steps], "floor": floor}
