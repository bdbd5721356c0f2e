"""Sokoban: a pure-JAX implementation with gymnax 1.0's API and Boxoban's rules and rewards.

Shapes in docstrings: L levels in a bank, H = W = `size` (the grid, outer wall ring included).
Levels come from `innerlab.envs.sokoban_levels` (numpy: generation, exact solver, cached sets).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from innerlab.envs.sokoban_levels import LevelSet, render

# (row, col) displacement of actions 0 up, 1 right, 2 down, 3 left (as ObjectWorld's MOVES).
MOVES = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]], dtype=np.int32)
ACTION_NAMES = ("up", "right", "down", "left", "think")
THINK = 4
PLANES = ("wall", "target", "box", "player")
OBS_VIEWS = ("image", "egocentric")


@struct.dataclass
class EnvState(environment.EnvState):
    """One episode's state; every field is an array so states vmap and scan."""

    player: jax.Array
    """[2] int32, (row, col)."""
    boxes: jax.Array
    """[H, W] bool."""
    walls: jax.Array
    """[H, W] bool, copied from the bank at reset so that `step` never indexes the bank."""
    targets: jax.Array
    """[H, W] bool, copied from the bank at reset."""
    level: jax.Array
    """[] int32, the level's index in the bank."""
    time: jax.Array
    """[] int32, steps taken this episode (think steps included)."""


@struct.dataclass
class EnvParams(environment.EnvParams):
    """A bank of levels and the reward scheme; all leaves are arrays. Build with `bank_params`
    (every field checked); `level_params` cuts a bank to one level.

    The bank's `None` defaults are placeholders (their shapes depend on the constructor's size).
    """

    max_steps_in_episode: Any = 120
    """[] int32, truncation limit: truncated once `time >= max_steps_in_episode` (Boxoban
    training, Guez et al. 2019: 120)."""
    walls: Any = None
    """[L, H, W] bool."""
    targets: Any = None
    """[L, H, W] bool."""
    boxes: Any = None
    """[L, H, W] bool, the boxes at the start."""
    player: Any = None
    """[L, 2] int32, the player's (row, col) at the start."""
    step_penalty: Any = -0.1
    """[] float32, paid every step, think steps included."""
    box_on_reward: Any = 1.0
    """[] float32, a push puts a box on a target."""
    box_off_reward: Any = -1.0
    """[] float32, a push moves a box off a target."""
    solve_reward: Any = 10.0
    """[] float32, the push that puts the last box on a target (on top of box_on_reward)."""
    think_cost: Any = 0.0
    """[] float32, subtracted from a think step's reward (on top of the step penalty)."""


class Sokoban(environment.Environment):
    """Sokoban on a bank of levels, with Boxoban's rules and rewards (Guez et al. 2019).

    Env card
    --------
    What: the player pushes boxes onto targets in a walled room; a box can be pushed, never
    pulled, so a careless push can make a level unsolvable (a box in a corner). Every level has
    as many boxes as targets. The substrate of the learned-search experiment (Guez et al. 2019,
    "An investigation of model-free planning"; Taufeeque et al. 2024, "Planning behavior in a
    recurrent neural network that plays Sokoban").

    Actions: Discrete(4), or Discrete(5) with `think_action`: 0 up (row - 1), 1 right (col + 1),
    2 down (row + 1), 3 left (col - 1). Into a free cell: move. Into a wall: stay. Into a box:
    push it one cell if the cell beyond is free (no wall, no box), else stay. A step that
    moves nothing still costs a step. 4 think (with `think_action` only): nothing moves, the
    clock advances; a way for a recurrent agent to buy computation.

    Rewards (Boxoban / gym-sokoban, all `EnvParams` fields): `step_penalty` -0.1 every step;
    `box_on_reward` +1 when a push raises the number of boxes on targets, `box_off_reward` -1
    when it lowers it (a push from one target onto another changes neither); `solve_reward`
    +10 when the last box reaches a target; a think step gets `step_penalty - think_cost`.
    A level solved in n steps therefore returns 10 + (boxes) - 0.1 n at best.

    Termination / truncation: terminated when every box is on a target; truncated when `time`
    reaches `max_steps_in_episode` (gymnax's `step`), reported apart. `step` auto-resets into a
    level drawn uniformly from the bank and puts the pre-reset observation in
    `info["final_observation"]`.

    Reset: the level index is drawn uniformly from the bank's L levels (a bank of one level is a
    fixed level: `level_params`).

    Observations (constructor `obs_view`), float32 in {0, 1}, flattened (our networks take flat
    observations and reshape them with `image_shape`):
      "image": [4 * H * W], planes wall, target, box, player of shape `image_shape` = (4, H, W),
        channels first.
      "egocentric": [3 * (2H - 1) * (2W - 1)], planes wall, target, box re-centred on the player
        (at [H - 1, W - 1]), cells beyond the grid shown as wall.

    `info` (same keys and dtypes every step, so it vmaps and scans): solved (bool: this step
    put the last box on a target), pushed (bool: a box moved), push_from (int32 flat index
    r * W + c of the box that moved, -1 if none), push_dir (int32 the push's action, -1 if
    none), player_pos ([2] int32 after the step, before any auto-reset), boxes_on_target (int32
    after the step), thought (bool: the action was think); gymnax's `step` adds terminated,
    truncated and final_observation.

    Intended goal versus proxies: the goal is to solve the level. The +1 per box on a target is
    a shaping proxy that a greedy agent can chase into deadlocks (a box pushed onto the nearest
    target that blocks the others); the step penalty rewards speed, so thinking is worth it
    only where it saves more than its cost in steps.

    Train versus test: the rules never change; what shifts is the level set. Train, validation
    and test sets are disjoint draws from the same generator (`sokoban_levels.level_sets`);
    test levels are binned by their optimal solution length (exact solver) for difficulty.

    Deviations from Boxoban: one-hot planes instead of RGB pixels (the same information); four
    movement actions and no no-op (gym-sokoban's push/move split and no-op are dropped; the
    think action, off by default, is our addition); levels come from our reimplementation of
    Boxoban's generator, not Boxoban's published level files (which need a download).
    """

    def __init__(self, size: int = 10, think_action: bool = False, obs_view: str = "image"):
        super().__init__()
        if size < 5:
            raise ValueError(f"size must be >= 5 (a 3x3 room inside the wall ring), got {size}")
        if obs_view not in OBS_VIEWS:
            raise ValueError(f"obs_view must be one of {OBS_VIEWS}, got {obs_view!r}")
        self.size = size
        self.think_action = think_action
        self.obs_view = obs_view

    # -- params ----------------------------------------------------------------------------
    @property
    def default_params(self) -> EnvParams:
        """A bank of one corridor level: player at (1, 1), a box at (1, 2), its target at (1, 3).

        Tests and examples only; real banks come from `bank_params`."""
        n = self.size
        walls = np.ones((n, n), bool)
        walls[1:-1, 1:-1] = False
        targets, boxes = np.zeros_like(walls), np.zeros_like(walls)
        targets[1, 3] = boxes[1, 2] = True
        level = LevelSet(walls[None], targets[None], boxes[None], np.array([[1, 1]], np.int32),
                         np.array([1], np.int32))
        return bank_params(self, level)

    # -- dynamics --------------------------------------------------------------------------
    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        """Copy a uniformly drawn level of the bank into the state; returns (obs, state)."""
        level = jax.random.randint(key, (), 0, params.walls.shape[0], dtype=jnp.int32)
        state = EnvState(player=params.player[level].astype(jnp.int32), boxes=params.boxes[level],
                         walls=params.walls[level], targets=params.targets[level], level=level,
                         time=jnp.int32(0))
        return self.get_obs(state, params), state

    def step_env(self, key: jax.Array, state: EnvState, action: int | jax.Array, params: EnvParams
                 ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, dict[str, jax.Array]]:
        """Move or push (or think); (obs, state, reward, terminated, info)."""
        del key  # the dynamics are deterministic
        action = jnp.asarray(action, jnp.int32)
        # Without the think action, 4 is not an action: `thought` is then a constant False.
        thought = action == THINK if self.think_action else jnp.bool_(False)
        move = jnp.asarray(MOVES)[jnp.clip(action, 0, 3)]
        # Clipping keeps indices in the grid; with the outer wall ring it never changes a cell
        # that matters, and without one a step off the grid reads the player's own cell (empty,
        # so the player stays) and a push off the grid reads the box's own cell (occupied, so
        # it is blocked).
        ahead = jnp.clip(state.player + move, 0, self.size - 1)
        beyond = jnp.clip(state.player + 2 * move, 0, self.size - 1)
        wall_ahead = state.walls[ahead[0], ahead[1]]
        box_ahead = state.boxes[ahead[0], ahead[1]]
        beyond_free = ~state.walls[beyond[0], beyond[1]] & ~state.boxes[beyond[0], beyond[1]]
        pushed = ~thought & box_ahead & beyond_free
        moved = ~thought & ~wall_ahead & (~box_ahead | beyond_free)
        moved_boxes = state.boxes.at[ahead[0], ahead[1]].set(False).at[beyond[0], beyond[1]].set(True)
        boxes = jnp.where(pushed, moved_boxes, state.boxes)
        player = jnp.where(moved, ahead, state.player)

        on_before = (state.boxes & state.targets).sum(dtype=jnp.int32)
        on_after = (boxes & state.targets).sum(dtype=jnp.int32)
        all_on = ~(boxes & ~state.targets).any()
        solved = all_on & (on_after > on_before)
        reward = (params.step_penalty
                  + jnp.where(on_after > on_before, params.box_on_reward, 0.0)
                  + jnp.where(on_after < on_before, params.box_off_reward, 0.0)
                  + jnp.where(solved, params.solve_reward, 0.0)
                  - jnp.where(thought, params.think_cost, 0.0)).astype(jnp.float32)
        state = state.replace(player=player, boxes=boxes, time=state.time + 1)
        info = {"solved": solved, "pushed": pushed,
                "push_from": jnp.where(pushed, ahead[0] * self.size + ahead[1], -1).astype(jnp.int32),
                "push_dir": jnp.where(pushed, action, -1).astype(jnp.int32), "player_pos": player,
                "boxes_on_target": on_after, "thought": thought}
        return self.get_obs(state, params), state, reward, all_on, info

    def is_terminated(self, state: EnvState, params: EnvParams) -> jax.Array:
        """[] bool: every box is on a target."""
        return ~(state.boxes & ~state.targets).any()

    # -- observations ----------------------------------------------------------------------
    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H', W') of the observation before flattening: (4, H, W) for "image", (3, 2H - 1,
        2W - 1) for "egocentric"."""
        n = self.size
        return (len(PLANES), n, n) if self.obs_view == "image" else (len(PLANES) - 1, 2 * n - 1, 2 * n - 1)

    def image(self, state: EnvState) -> jax.Array:
        """[4, H, W] float32 planes wall, target, box, player."""
        player = jnp.zeros((self.size, self.size), bool).at[state.player[0], state.player[1]].set(True)
        return jnp.stack([state.walls, state.targets, state.boxes, player]).astype(jnp.float32)

    def egocentric(self, state: EnvState) -> jax.Array:
        """[3, 2H - 1, 2W - 1] float32 planes wall, target, box shifted so that the player is at
        the centre [H - 1, W - 1]; cells beyond the grid read as wall."""
        n = self.size
        planes = jnp.stack([state.walls, state.targets, state.boxes]).astype(jnp.float32)
        padded = jnp.zeros((3, 3 * n - 2, 3 * n - 2), jnp.float32).at[0].set(1.0)
        padded = padded.at[:, n - 1:2 * n - 1, n - 1:2 * n - 1].set(planes)
        return jax.lax.dynamic_slice(padded, (0, state.player[0], state.player[1]), (3, 2 * n - 1, 2 * n - 1))

    def get_obs(self, state: EnvState, params: EnvParams | None = None, key: jax.Array | None = None
                ) -> jax.Array:
        """The flattened view of `obs_view` ([prod(image_shape)] float32); gymnax's `observe`
        delegates here."""
        view = self.image(state) if self.obs_view == "image" else self.egocentric(state)
        return view.reshape(-1)

    @property
    def name(self) -> str:
        return "Sokoban"

    @property
    def num_actions(self) -> int:
        return 5 if self.think_action else 4

    def action_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(self.num_actions)

    def observation_space(self, params: EnvParams | None = None) -> spaces.Box:
        """Box in [0, 1] of shape [prod(image_shape)]."""
        return spaces.Box(0.0, 1.0, (int(np.prod(self.image_shape)),), jnp.float32)


def simple_deadlock(boxes: jax.Array, walls: jax.Array, targets: jax.Array) -> jax.Array:
    """[...] bool: some box off a target sits in a corner of two walls (one above or below it,
    one left or right of it; cells beyond the grid count as wall), so it can never move again
    and the level can no longer be solved.

    boxes, walls, targets: [..., H, W] bool (numpy or jax; jittable and vmappable).
    """
    walls = jnp.asarray(walls, bool)
    pad = [(0, 0)] * (walls.ndim - 2) + [(1, 1), (1, 1)]
    padded = jnp.pad(walls, pad, constant_values=True)
    vertical = padded[..., :-2, 1:-1] | padded[..., 2:, 1:-1]
    horizontal = padded[..., 1:-1, :-2] | padded[..., 1:-1, 2:]
    stuck = jnp.asarray(boxes, bool) & ~jnp.asarray(targets, bool) & vertical & horizontal
    return stuck.any(axis=(-2, -1))


def state_text(state: EnvState) -> str:
    """One (unbatched) state in Boxoban's characters (see `LevelSet.text`); host-side, not jittable."""
    return render(np.asarray(state.walls), np.asarray(state.targets), np.asarray(state.boxes),
                  np.asarray(state.player))


# -- building params --------------------------------------------------------------------------

_BANK = ("walls", "targets", "boxes", "player")
_SCALARS = {"max_steps_in_episode": jnp.int32, "step_penalty": jnp.float32, "box_on_reward": jnp.float32,
            "box_off_reward": jnp.float32, "solve_reward": jnp.float32, "think_cost": jnp.float32}


def bank_params(env: Sokoban, level_set: LevelSet, **overrides: Any) -> EnvParams:
    """EnvParams holding every level of `level_set` (L >= 1), with scalar fields replaced by
    `overrides` (e.g. max_steps_in_episode=80, think_cost=0.05); values may be traced.

    Raises:
        ValueError: levels of another grid size, an unknown or non-scalar field, a non-positive
            time limit, or an invalid level (boxes and targets differing in number or none,
            a box on a wall, the player off the grid or on a wall or box, already solved).
    """
    walls, targets, boxes = (np.asarray(getattr(level_set, name), bool) for name in _BANK[:3])
    player = np.asarray(level_set.player, np.int32)
    n = env.size
    if walls.ndim != 3 or walls.shape[1:] != (n, n) or len(walls) < 1:
        raise ValueError(f"levels must be [L >= 1, {n}, {n}] for a size-{n} env, got {walls.shape}")
    unknown = set(overrides) - set(_SCALARS)
    if unknown:
        raise ValueError(f"unknown or non-scalar EnvParams field(s) {sorted(unknown)}; "
                         f"scalars are {sorted(_SCALARS)}")
    _check_levels(walls, targets, boxes, player)
    defaults = EnvParams.__dataclass_fields__
    fields = {name: jnp.asarray(defaults[name].default, dtype) for name, dtype in _SCALARS.items()}
    for name, value in overrides.items():
        traced = isinstance(value, jax.core.Tracer)
        array = value.astype(_SCALARS[name]) if traced else jnp.asarray(value, _SCALARS[name])
        if array.shape != ():
            raise ValueError(f"{name} must be a scalar, got shape {array.shape}")
        if name == "max_steps_in_episode" and not traced and int(array) < 1:
            raise ValueError(f"max_steps_in_episode must be >= 1, got {int(array)}")
        fields[name] = array
    return EnvParams(walls=jnp.asarray(walls), targets=jnp.asarray(targets), boxes=jnp.asarray(boxes),
                     player=jnp.asarray(player), **fields)


def _check_levels(walls: np.ndarray, targets: np.ndarray, boxes: np.ndarray, player: np.ndarray) -> None:
    """Host-side checks of a bank that the jitted step could not report."""
    count, n = len(walls), walls.shape[1]
    if player.shape != (count, 2):
        raise ValueError(f"player must be [{count}, 2], got {player.shape}")
    box_count, target_count = boxes.sum((1, 2)), (targets & ~walls).sum((1, 2))
    bad = np.flatnonzero((box_count != target_count) | (box_count == 0))
    if len(bad):
        raise ValueError(f"level {bad[0]} has {box_count[bad[0]]} boxes and {target_count[bad[0]]} free targets; "
                         "levels need as many of each, at least one")
    bad = np.flatnonzero((boxes & walls).any((1, 2)))
    if len(bad):
        raise ValueError(f"level {bad[0]} has a box on a wall")
    bad = np.flatnonzero(((player < 0) | (player >= n)).any(1))
    if len(bad):
        raise ValueError(f"level {bad[0]}'s player {player[bad[0]].tolist()} is off the {n}x{n} grid")
    rows, cols, index = player[:, 0], player[:, 1], np.arange(count)
    bad = np.flatnonzero(walls[index, rows, cols] | boxes[index, rows, cols])
    if len(bad):
        raise ValueError(f"level {bad[0]}'s player {player[bad[0]].tolist()} is on a wall or a box")
    bad = np.flatnonzero(~(boxes & ~targets).any((1, 2)))
    if len(bad):
        raise ValueError(f"level {bad[0]} starts solved")


def level_params(params: EnvParams, index: int | jax.Array) -> EnvParams:
    """`params` with its bank cut to level `index` (a bank of one: every reset plays it).

    index: int or [] int32, may be traced; `jax.vmap(level_params, (None, 0))(params, indices)`
    gives params with a leading [K] axis, one level each, to roll out one env per level. For a
    LevelSet, `bank_params(env, level_set.subset([i]))` does the same.
    """
    def take(leaf):
        return jax.lax.dynamic_index_in_dim(leaf, index, axis=0, keepdims=True)

    return params.replace(**{name: take(getattr(params, name)) for name in _BANK})
