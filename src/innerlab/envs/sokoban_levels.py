"""Sokoban levels: procedural generation by reverse play, an exact solver, cached level sets.

This module imports numpy and the standard library only, no jax: numpy-only callers and the
solving worker processes need nothing more (importing it through the `innerlab.envs` package
still runs that package's `__init__`, which imports the jax envs).

    sets = level_sets(size=8, num_boxes=2, seed=0, counts={"train": 2000, "valid": 100, "test": 200},
                      cache_dir=Path("~/.cache/innerlab/levels"))
    sets["test"].solution_length           # [L] optimal number of steps (exact search)
    actions = solve(*sets["test"].level(0))  # an optimal action list, or None

Generation follows the generator Boxoban's levels came from (Schrader's gym-sokoban, 2018, which
Guez et al. 2019 used for Boxoban):

1. room topology: a random walk of `1.7 * (H + W)` steps (direction changed with chance 0.35)
   stamps one of five small floor masks around each position; the outer ring stays wall;
2. `num_boxes` targets and the player go on distinct random floor cells, a box on each target;
3. reverse play: from that solved position the player walks at random and, when it steps
   directly away from a box, pulls it along (with chance `PULL`); the configuration with the
   best score, box swaps (how often the pulled box changed, the first pull included) x total
   box displacement (Manhattan distance of each box from the target it started on), among those
   with every box off every target, is kept. Pushing the pulls back undoes them, so every
   level made so is solvable.

Deviations from gym-sokoban: its reverse play is an exhaustive depth-first search (depth 300,
up to 300,000 states, costly in Python) where every step away from a box pulls it; ours is one
random walk of `reverse_steps` steps where a pull is optional, which reaches the same kinds of
configuration in milliseconds. Every candidate is then labelled by `solve` with its optimal
solution length; duplicates, levels solved in fewer than `min_length` steps and levels whose
search exceeds `max_states` are dropped. The last would bias a set away from the hardest
levels, but the default budget is far above what we met: the hardest of 300 Boxoban-size
levels (4 boxes) needed under 300,000 states (about 1 s).

Timings per level (2-core CPU shared with other jobs, one process,
`benchmarks/sokoban_throughput.py`, 2026-12-03): size 8 (6x6 room) with 2 boxes, about 1 ms to
draw a candidate and 0.5 ms to solve it (median 0.2 ms, max 10 ms); size 10 (8x8 room,
Boxoban's) with 4 boxes, about 5 ms to draw and 40 ms to solve (median 11-15 ms, heavy-tailed:
max 0.3-1.5 s), so about 45 ms a level: 10,000 levels in about 8 minutes, 100,000 in about 75
minutes on one core, once (cached), or that divided by about `workers` on a machine with the
cores (each spawned worker first spends a few seconds importing).
"""

from __future__ import annotations

import hashlib
import heapq
import multiprocessing
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# (row, col) displacement of actions 0 up, 1 right, 2 down, 3 left (as the env's MOVES).
MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))
FORMAT = 4  # bump whenever generation changes, so cached files of another format are not reused
PULL = 0.75  # chance that a reverse step directly away from a box pulls it
MIN_LENGTH = 3  # default: levels solved in fewer steps are dropped (they test nothing)
MAX_STATES = 1_000_000  # default search budget of `solve` (states stored)
# gym-sokoban's floor stamps, centred on the walk's position.
_MASKS = np.array([[[0, 0, 0], [1, 1, 1], [0, 0, 0]],
                   [[0, 1, 0], [0, 1, 0], [0, 1, 0]],
                   [[0, 0, 0], [1, 1, 0], [0, 1, 0]],
                   [[0, 0, 0], [1, 1, 0], [1, 1, 0]],
                   [[0, 0, 0], [0, 1, 1], [0, 1, 0]]], bool)


@dataclass(frozen=True)
class LevelSet:
    """L Sokoban levels on an H x W grid (outer wall ring included), as numpy arrays."""

    walls: np.ndarray
    """[L, H, W] bool."""
    targets: np.ndarray
    """[L, H, W] bool."""
    boxes: np.ndarray
    """[L, H, W] bool, the boxes at the start."""
    player: np.ndarray
    """[L, 2] int32, the player's (row, col) at the start."""
    solution_length: np.ndarray
    """[L] int32, the optimal number of steps (moves and pushes alike) by `solve`; -1 where the
    level is unsolvable or its search ran out of budget (only levels from `from_text`)."""

    def __post_init__(self):
        count, shape = len(self.walls), self.walls.shape[1:]
        if self.walls.ndim != 3 or self.targets.shape != self.walls.shape or self.boxes.shape != self.walls.shape:
            raise ValueError(f"walls, targets and boxes must share one [L, H, W] shape, got {self.walls.shape}, "
                             f"{self.targets.shape}, {self.boxes.shape}")
        if self.player.shape != (count, 2) or self.solution_length.shape != (count,):
            raise ValueError(f"player must be [{count}, 2] and solution_length [{count}], got "
                             f"{self.player.shape} and {self.solution_length.shape} (grid {shape})")

    def __len__(self) -> int:
        return int(self.walls.shape[0])

    def subset(self, indices) -> LevelSet:
        """The levels at `indices` (an int array, a slice or a bool mask), in that order."""
        return LevelSet(*(getattr(self, name)[indices] for name in _FIELDS))

    def level(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:
        """(walls [H, W], targets [H, W], boxes [H, W], player (row, col)) of level i: the
        arguments of `solve`."""
        return self.walls[i], self.targets[i], self.boxes[i], (int(self.player[i, 0]), int(self.player[i, 1]))

    def text(self, i: int) -> str:
        """Level i in Boxoban's characters, rows joined by newlines: `#` wall, ` ` floor, `.`
        target, `$` box, `*` box on a target, `@` player, `+` player on a target."""
        return render(*self.level(i))

    @staticmethod
    def from_text(levels: list[str] | list[list[str]], solve_levels: bool = True,
                  max_states: int = MAX_STATES) -> LevelSet:
        """Parse levels written in Boxoban's characters (see `text`): each level one string with
        newlines or a list of rows; short rows are padded with floor; all levels must have the
        same shape. With `solve_levels`, `solution_length` comes from `solve` (-1 if none found),
        otherwise it is all -1.

        Raises:
            ValueError: an unknown character, not exactly one player, unequal numbers of boxes
                and targets, no box, or levels of different shapes.
        """
        parsed = [_parse(level.split("\n") if isinstance(level, str) else list(level)) for level in levels]
        if not parsed:
            raise ValueError("from_text needs at least one level")
        shapes = sorted({p[0].shape for p in parsed})
        if len(shapes) != 1:
            raise ValueError(f"levels differ in shape: {shapes}")
        lengths = np.full(len(parsed), -1, np.int32)
        if solve_levels:
            for i, (walls, targets, boxes, player) in enumerate(parsed):
                solution = solve(walls, targets, boxes, player, max_states)
                lengths[i] = -1 if solution is None else len(solution)
        walls, targets, boxes = (np.stack([p[k] for p in parsed]) for k in range(3))
        player = np.array([p[3] for p in parsed], np.int32)
        return LevelSet(walls, targets, boxes, player, lengths)


_FIELDS = ("walls", "targets", "boxes", "player", "solution_length")


def render(walls: np.ndarray, targets: np.ndarray, boxes: np.ndarray, player) -> str:
    """One level ([H, W] bools and the player's (row, col)) in Boxoban's characters (`LevelSet.text`)."""
    player = (int(player[0]), int(player[1]))
    rows = []
    for r in range(walls.shape[0]):
        row = []
        for c in range(walls.shape[1]):
            if walls[r, c]:
                row.append("#")
            elif (r, c) == player:
                row.append("+" if targets[r, c] else "@")
            elif boxes[r, c]:
                row.append("*" if targets[r, c] else "$")
            else:
                row.append("." if targets[r, c] else " ")
        rows.append("".join(row))
    return "\n".join(rows)


def _parse(rows: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:
    """(walls, targets, boxes, player) of one level in Boxoban's characters."""
    h, w = len(rows), max(len(row) for row in rows)
    walls = np.zeros((h, w), bool)
    targets, boxes = np.zeros_like(walls), np.zeros_like(walls)
    players = []
    for r, line in enumerate(rows):
        for c, ch in enumerate(line.ljust(w)):
            if ch not in "# .$*@+":
                raise ValueError(f"unknown level character {ch!r} at row {r}, column {c}")
            walls[r, c] = ch == "#"
            targets[r, c] = ch in ".*+"
            boxes[r, c] = ch in "$*"
            if ch in "@+":
                players.append((r, c))
    if len(players) != 1:
        raise ValueError(f"a level needs exactly one player (@ or +), found {len(players)}")
    if boxes.sum() != targets.sum() or not boxes.any():
        raise ValueError(f"a level needs as many boxes ({boxes.sum()}) as targets ({targets.sum()}), at least one")
    return walls, targets, boxes, players[0]


# --- deadlocks and the exact solver --------------------------------------------------------------

def live_cells(walls: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """[H, W] bool: cells from which a box alone (the other boxes removed) could be pushed to
    some target. A box on any other cell (a "dead square"; a non-target corner of two walls,
    the env's `simple_deadlock`, is one) makes the level unsolvable."""
    far = walls.size * 4
    walls = np.asarray(walls, bool)
    distance = _push_distances(walls, np.flatnonzero(np.asarray(targets, bool) & ~walls).tolist())
    return np.array(distance).reshape(walls.shape) < far


def solve(walls: np.ndarray, targets: np.ndarray, boxes: np.ndarray, player, max_states: int = MAX_STATES
          ) -> list[int] | None:
    """An optimal action list (actions 0 up, 1 right, 2 down, 3 left; every step counts, moves
    and pushes alike, as in the env) that puts every box on a target; [] if the level starts
    solved; None if it cannot be solved or the search stores more than `max_states` states.

    walls, targets, boxes: [H, W] bool; player: (row, col). Grids without an outer wall ring
    are given one (moving off the grid is a move into a wall in the env too).

    The search is A* over (player cell, box cells) with unit step costs and a consistent
    heuristic, the cheapest matching of boxes to distinct targets by push distance (a step
    moves at most one box one cell, so it lowers the heuristic by at most 1): the first solved
    state expanded is optimal. States are pruned that are provably dead: a box on a dead square
    (`live_cells`, which covers the simple corner deadlock), boxes that no matching can bring to
    distinct targets, or a box off a target in a 2x2 block of walls and boxes (no box in such a
    block can ever move). States are Python ints (box bitmask x cells + player) to keep it fast.
    """
    walls, targets, boxes = (np.asarray(a, bool) for a in (walls, targets, boxes))
    row, col = int(player[0]), int(player[1])
    if not (walls[0].all() and walls[-1].all() and walls[:, 0].all() and walls[:, -1].all()):
        walls, targets, boxes = np.pad(walls, 1, constant_values=True), np.pad(targets, 1), np.pad(boxes, 1)
        row, col = row + 1, col + 1
    h, w = walls.shape
    cells = h * w
    far = 4 * cells  # _push_distances' "never"
    wall = walls.reshape(-1).tolist()
    target_list = np.flatnonzero(targets & ~walls).tolist()
    box_list = np.flatnonzero(boxes).tolist()
    live = [d < far for d in _push_distances(walls, target_list)]
    if not target_list or len(box_list) > len(target_list) or any(not live[b] for b in box_list):
        return None
    target_mask = sum(1 << t for t in target_list)
    box_mask = sum(1 << b for b in box_list)
    if box_mask & ~target_mask == 0:
        return []
    if wall[row * w + col] or box_mask >> (row * w + col) & 1:
        raise ValueError(f"the player ({int(player[0])}, {int(player[1])}) is on a wall or a box")

    steps = [dr * w + dc for dr, dc in MOVES]
    bits = [1 << i for i in range(cells)]
    # The four 2x2 blocks holding a cell, as offsets of their other three cells.
    blocks = [(d1, d2, d1 + d2) for d1 in (-1, 1) for d2 in (-w, w)]
    to_target = [_push_distances(walls, [t]) for t in target_list]  # [target][cell] pushes
    matchings: dict[int, int] = {}  # box mask -> heuristic; many states share a box mask

    def matching(mask: int) -> int:
        """The fewest pushes that take the boxes of `mask` to distinct targets, each box alone
        (>= far if none can): dynamic programming over subsets of used targets."""
        value = matchings.get(mask)
        if value is None:
            best = {0: 0}  # used targets (bitmask) -> cheapest cost of the boxes so far
            rest = mask
            while rest:
                low = rest & -rest
                rest ^= low
                box = low.bit_length() - 1
                grown: dict[int, int] = {}
                for used, total in best.items():
                    for j, distance in enumerate(to_target):
                        if not used >> j & 1:
                            option = total + distance[box]
                            if option < grown.get(used | 1 << j, far * len(box_list) + 1):
                                grown[used | 1 << j] = option
                best = grown
            value = matchings[mask] = min(best.values())
        return value

    def frozen(mask: int, cell: int) -> bool:
        """A box just pushed onto `cell` completes a 2x2 block of walls and boxes holding a box off a target."""
        for a, b, c in blocks:
            block = (cell, cell + a, cell + b, cell + c)
            if all(wall[x] or mask & bits[x] for x in block[1:]):
                if any(mask & bits[x] and not target_mask & bits[x] for x in block):
                    return True
        return False

    start = box_mask * cells + row * w + col
    h_start = matching(box_mask)
    if h_start >= far:
        return None
    # state -> (fewest steps found to it, the state before, the action from there): one dict
    # holds costs and the path, as memory bounds the search before time does.
    reached: dict[int, tuple[int, int, int]] = {start: (0, -1, -1)}
    heap = [(h_start, 0, start, h_start)]  # (f, -g: ties go deepest first, state, h)
    while heap:
        _, negative_g, key, heuristic = heapq.heappop(heap)
        g = -negative_g
        if reached[key][0] < g:
            continue  # a stale entry: reached more cheaply since
        mask, here = divmod(key, cells)
        if mask & ~target_mask == 0:
            return _path(reached, key)
        for action, d in enumerate(steps):
            ahead = here + d
            if wall[ahead]:
                continue
            child_h = heuristic  # a plain move leaves the boxes, so the heuristic, as they are
            if mask & bits[ahead]:
                beyond = ahead + d
                if wall[beyond] or mask & bits[beyond] or not live[beyond]:
                    continue
                child_mask = mask ^ bits[ahead] ^ bits[beyond]
                if frozen(child_mask, beyond):
                    continue
                child_h = matching(child_mask)
                if child_h >= far:
                    continue
                child = child_mask * cells + ahead
            else:
                child = key + d
            known = reached.get(child)
            if known is not None and known[0] <= g + 1:
                continue
            reached[child] = (g + 1, key, action)
            if len(reached) > max_states:
                return None
            heapq.heappush(heap, (g + 1 + child_h, -(g + 1), child, child_h))
    return None


def _push_distances(walls: np.ndarray, target_list: list[int]) -> list[int]:
    """[cell] the fewest pushes that take a lone box from the cell to some target, h * w * 4
    where none can: a lower bound on the steps that box still needs (solve's heuristic).

    Breadth first backwards from the targets: a box at b - d is one push further than the box
    at b if b - d and b - 2d are floor (the player at b - 2d pushed it from b - d to b)."""
    h, w = walls.shape
    far = h * w * 4
    distance = [far] * (h * w)
    frontier = list(target_list)
    for t in frontier:
        distance[t] = 0
    wall = walls.reshape(-1).tolist()
    for cell in frontier:  # breadth first: `frontier` grows while it is walked
        r, c = divmod(cell, w)
        for dr, dc in MOVES:
            r2, c2 = r - 2 * dr, c - 2 * dc
            if not (0 <= r2 < h and 0 <= c2 < w):
                continue
            source = cell - (dr * w + dc)
            if not wall[source] and not wall[r2 * w + c2] and distance[source] == far:
                distance[source] = distance[cell] + 1
                frontier.append(source)
    return distance


def _path(reached: dict[int, tuple[int, int, int]], key: int) -> list[int]:
    """The actions from the start to `key`, following solve's `reached` back."""
    actions = []
    while True:
        _, key, action = reached[key]
        if action < 0:
            return actions[::-1]
        actions.append(action)


# --- generation by reverse play -------------------------------------------------------------------

def _room(rng: np.random.Generator, size: int, walk_steps: int, p_change: float = 0.35) -> np.ndarray:
    """[size, size] bool walls of gym-sokoban's room topology: a random walk over the interior
    stamps a random floor mask around each position it visits; the outer ring stays wall."""
    floor = np.zeros((size, size), bool)
    direction = MOVES[rng.integers(4)]
    position = rng.integers(1, size - 1, 2)
    for _ in range(walk_steps):
        if rng.random() < p_change:
            direction = MOVES[rng.integers(4)]
        position = np.clip(position + direction, 1, size - 2)
        r, c = position
        floor[r - 1:r + 2, c - 1:c + 2] |= _MASKS[rng.integers(len(_MASKS))]
    floor[[0, -1], :] = False
    floor[:, [0, -1]] = False
    return ~floor


def _reverse_play(rng: np.random.Generator, walls: np.ndarray, targets: np.ndarray, player: tuple[int, int],
                  steps: int) -> tuple[np.ndarray, tuple[int, int], int]:
    """Play backwards from the solved position (a box on every target): each step moves the
    player to a random free neighbour and, if the step is directly away from a box, pulls that
    box along with chance PULL. Returns the best (boxes [H, W], player, score), score = box
    swaps x total box displacement, counting only positions with every box off every target
    (score 0, boxes on the targets, if none was reached)."""
    h, w = walls.shape
    wall = walls.reshape(-1).tolist()
    target = targets.reshape(-1).tolist()
    homes = np.flatnonzero(targets).tolist()  # box id -> the target it started on
    box_at = dict.fromkeys(range(h * w), -1)  # cell -> id of the box there, -1 if none
    for box, cell in enumerate(homes):
        box_at[cell] = box
    distance = [0] * len(homes)  # box id -> Manhattan distance from its target
    on_target = len(homes)
    here = player[0] * w + player[1]
    best_cells, best_player, best_score = list(homes), here, 0
    swaps, last_pulled = 0, -1
    offsets = [dr * w + dc for dr, dc in MOVES]
    # Drawn up front: one numpy call instead of two per step (the walk is the generator's cost).
    directions = rng.integers(0, 4, steps).tolist()
    coins = (rng.random(steps) < PULL).tolist()
    for d, pull in zip(directions, coins):
        step = offsets[d]
        ahead, behind = here + step, here - step
        if wall[ahead] or box_at[ahead] >= 0:
            continue
        pulled = box_at[behind] if pull else -1
        if pulled >= 0:
            box_at[behind], box_at[here] = -1, pulled
            on_target += target[here] - target[behind]
            home_row, home_col = divmod(homes[pulled], w)
            row, col = divmod(here, w)
            distance[pulled] = abs(row - home_row) + abs(col - home_col)
            if pulled != last_pulled:
                swaps, last_pulled = swaps + 1, pulled
        here = ahead
        # The score changes only on a pull; as in gym-sokoban a strictly better score is needed,
        # so the player of the kept position stands where that pull left it.
        if pulled >= 0 and on_target == 0 and swaps * sum(distance) > best_score:
            best_score = swaps * sum(distance)
            best_cells = [cell for cell, box in box_at.items() if box >= 0]
            best_player = here
    boxes = np.zeros(h * w, bool)
    boxes[best_cells] = True
    return boxes.reshape(h, w), divmod(best_player, w), best_score


Level = tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]
"""One level: walls [H, W] bool, targets [H, W] bool, boxes [H, W] bool, player (row, col)."""


def generate(num_levels: int, size: int, num_boxes: int, seed: int, walk_steps: int | None = None,
             reverse_steps: int | None = None, min_length: int = MIN_LENGTH, max_states: int = MAX_STATES,
             max_tries: int | None = None, workers: int = 1) -> LevelSet:
    """`num_levels` distinct levels on a size x size grid (outer wall ring included) with
    `num_boxes` boxes, each labelled with its optimal solution length by `solve` (see the module
    docstring for the procedure). Deterministic in the arguments other than `workers`.

    Candidate i is drawn from its own random stream, seeded by (seed, i), and candidates are
    kept in the order of i: the first `num_levels` that reverse play scored above 0, that
    repeat no earlier candidate and whose solution takes at least `min_length` steps.

    walk_steps: the room's random walk (default gym-sokoban's int(1.7 * (size + size)));
    reverse_steps: the reverse play's steps (default 30 * (size - 2)^2);
    min_length: levels solved in fewer steps are dropped;
    max_states: `solve`'s budget; levels it cannot finish within it are dropped;
    max_tries: candidates drawn before giving up (default 50 * num_levels + 100);
    workers: processes that draw and solve candidates (solving dominates at Boxoban's size);
        the levels are the same for any number.

    Raises:
        ValueError: a size below 5, too many boxes for the room, a negative seed or workers < 1.
        RuntimeError: `max_tries` candidates gave fewer than `num_levels` levels.
    """
    if size < 5:
        raise ValueError(f"size must be >= 5 (a 3x3 room inside the wall ring), got {size}")
    if num_boxes < 1 or 2 * num_boxes + 1 > (size - 2) ** 2:
        raise ValueError(f"num_boxes={num_boxes} must be >= 1 and fit a {size - 2}x{size - 2} room "
                         f"(2 * num_boxes + 1 cells)")
    if seed < 0 or workers < 1:
        raise ValueError(f"seed must be >= 0 and workers >= 1, got {seed} and {workers}")
    walk_steps = int(1.7 * 2 * size) if walk_steps is None else walk_steps
    reverse_steps = 30 * (size - 2) ** 2 if reverse_steps is None else reverse_steps
    max_tries = 50 * num_levels + 100 if max_tries is None else max_tries
    shape = (size, num_boxes, walk_steps, reverse_steps)
    seen: set[bytes] = set()
    out: list[tuple[Level, int]] = []

    def fresh(level: Level | None) -> bool:
        """A candidate that reverse play scored and that no earlier candidate repeats (recorded)."""
        if level is None:
            return False
        key = level_key(*level)
        if key in seen:
            return False
        seen.add(key)
        return True

    if workers == 1:
        for index in range(max_tries):
            level = _candidate(seed, index, *shape)
            if fresh(level):  # solved only now, so duplicates cost no search
                length = _solution_length(level, max_states)
                if length >= min_length:
                    out.append((level, length))
                    if len(out) == num_levels:
                        break
    else:
        # spawn, not fork: the caller may have started jax's threads, which fork can deadlock.
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            first = 0
            while len(out) < num_levels and first < max_tries:
                # Rounds long enough that one slow solve rarely idles the other workers, and
                # not much longer than the levels still missing, which would be wasted.
                count = min(max(8 * workers, 2 * (num_levels - len(out))), 64 * workers, max_tries - first)
                indices = range(first, first + count)
                first += count
                results = pool.map(_candidate_and_length, indices, [seed] * count, [shape] * count,
                                   [max_states] * count, chunksize=4)
                for level, length in results:
                    if fresh(level) and length >= min_length and len(out) < num_levels:
                        out.append((level, length))
    if len(out) < num_levels:
        raise RuntimeError(f"only {len(out)} of {num_levels} levels after {max_tries} tries; raise max_tries, "
                           f"lower min_length or enlarge the room")
    return LevelSet(walls=np.stack([level[0] for level, _ in out]),
                    targets=np.stack([level[1] for level, _ in out]),
                    boxes=np.stack([level[2] for level, _ in out]),
                    player=np.array([level[3] for level, _ in out], np.int32),
                    solution_length=np.array([length for _, length in out], np.int32))


def _candidate(seed: int, index: int, size: int, num_boxes: int, walk_steps: int, reverse_steps: int
               ) -> Level | None:
    """Candidate `index` of generator `seed`: a room, targets, player and reverse play (module
    docstring), or None where the room is too small or reverse play never got every box off
    every target."""
    rng = np.random.default_rng([seed, index])
    walls = _room(rng, size, walk_steps)
    floor = np.argwhere(~walls)
    if len(floor) <= num_boxes + 1:  # gym-sokoban's check: room for the player and the boxes
        return None
    chosen = floor[rng.choice(len(floor), num_boxes + 1, replace=False)]
    targets = np.zeros_like(walls)
    targets[chosen[1:, 0], chosen[1:, 1]] = True
    boxes, player, score = _reverse_play(rng, walls, targets, (int(chosen[0, 0]), int(chosen[0, 1])), reverse_steps)
    return (walls, targets, boxes, player) if score > 0 else None


def _solution_length(level: Level, max_states: int) -> int:
    """`solve`'s optimal length for the level, -1 if it found none."""
    solution = solve(*level, max_states=max_states)
    return -1 if solution is None else len(solution)


def _candidate_and_length(index: int, seed: int, shape: tuple[int, int, int, int], max_states: int
                          ) -> tuple[Level | None, int]:
    """A worker's job: candidate `index` and its solution length (-1 for no candidate)."""
    level = _candidate(seed, index, *shape)
    return level, (-1 if level is None else _solution_length(level, max_states))


def level_key(walls: np.ndarray, targets: np.ndarray, boxes: np.ndarray, player) -> bytes:
    """Bytes that identify a level ([H, W] bools, player (row, col)): equal keys, equal levels."""
    return (np.packbits(np.stack([walls, targets, boxes])).tobytes()
            + bytes([int(player[0]), int(player[1]), walls.shape[0], walls.shape[1]]))


def level_sets(size: int, num_boxes: int, seed: int, counts: dict[str, int], cache_dir: Path | str | None = None,
               max_states: int = MAX_STATES, min_length: int = MIN_LENGTH, workers: int = 1) -> dict[str, LevelSet]:
    """Disjoint splits {name: LevelSet of counts[name] levels}, in the order of `counts`, taken as
    consecutive slices of one pool of distinct generated levels (so no level is in two splits).

    With `cache_dir`, the splits are read from `cache_dir / "sokoban-{size}-{num_boxes}-{seed}-
    {name}{count}...-{digest}.npz"` if it exists (digest: the generator's FORMAT and the other
    arguments), else generated and written there atomically (a temporary file renamed into
    place, so a killed run leaves no half-written file). Same arguments, same levels, cached or
    not, whatever `workers` (`generate`'s solving processes; not part of the file name). Files
    are plain .npz, read with allow_pickle=False.
    """
    if not counts or any(count < 1 for count in counts.values()):
        raise ValueError(f"counts must name at least one split, each with >= 1 level, got {counts}")
    path = None
    if cache_dir is not None:
        spec = repr((FORMAT, size, num_boxes, seed, sorted(counts.items()), list(counts), max_states, min_length))
        digest = hashlib.sha256(spec.encode()).hexdigest()[:10]
        splits = "-".join(f"{name}{count}" for name, count in counts.items())
        path = Path(cache_dir).expanduser() / f"sokoban-{size}-{num_boxes}-{seed}-{splits}-{digest}.npz"
        if path.exists():
            with np.load(path, allow_pickle=False) as data:
                return {name: LevelSet(*(data[f"{name}.{field}"] for field in _FIELDS)) for name in counts}
    levels = generate(sum(counts.values()), size, num_boxes, seed, min_length=min_length, max_states=max_states,
                      workers=workers)
    out, start = {}, 0
    for name, count in counts.items():
        out[name] = levels.subset(np.arange(start, start + count))
        start += count
    if path is not None:
        _save_atomically(path, {f"{name}.{field}": getattr(split, field)
                                for name, split in out.items() for field in _FIELDS})
    return out


def _save_atomically(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez_compressed to a temporary file in `path`'s folder, then rename it onto `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
