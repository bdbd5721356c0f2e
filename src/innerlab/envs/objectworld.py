"""ObjectWorld: a pure-JAX gridworld of collectable objects, with gymnax 1.0's API.

Shapes in docstrings: N grid size, K objects, C colours, S shapes, C_img image planes.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

# (row, col) displacement of actions 0 up, 1 right, 2 down, 3 left.
MOVES = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]], dtype=np.int32)
ACTION_NAMES = ("up", "right", "down", "left")
OBS_VIEWS = ("flat", "image", "egocentric")


@struct.dataclass
class EnvState(environment.EnvState):
    """One episode's state; every field is an array so states vmap and scan."""

    agent_pos: jax.Array
    """[2] int32, (row, col)."""
    obj_pos: jax.Array
    """[K, 2] int32, (row, col) of each object; distinct cells."""
    obj_colour: jax.Array
    """[K] int32 in [0, C)."""
    obj_shape: jax.Array
    """[K] int32 in [0, S)."""
    obj_present: jax.Array
    """[K] bool, False once collected (or absent from the level)."""
    reward_table: jax.Array
    """[C, S] float32, this episode's reward for collecting each (colour, shape)."""
    colour_shift: jax.Array
    """[] int32, how far this episode's table is rolled along colours from params.reward_table."""
    last_collected: jax.Array
    """[] int32, index of the object collected on the last step, -1 if none."""
    time: jax.Array
    """[] int32, steps taken this episode."""


@struct.dataclass
class EnvParams(environment.EnvParams):
    """Everything a sweep or a test distribution may change; all leaves are arrays.

    Array shapes depend on the constructor (N, K, C, S), so the `None` defaults below are
    placeholders: build params with `env.default_params` or `make_params(env, ...)`.
    """

    max_steps_in_episode: Any = 20
    """[] int32, truncation limit: truncated once `time >= max_steps_in_episode`."""
    walls: Any = None
    """[N, N] bool, blocked cells (default none)."""
    reward_table: Any = None
    """[C, S] float32, reward per (colour, shape) (default colour 0 -> +1, others -> -1)."""
    reward_shift_prob: Any = 0.0
    """[] float32, chance that an episode's table is rolled along colours by a uniform shift."""
    obj_colour: Any = None
    """[K] int32 (default arange(K) * C // K: equal blocks of each colour)."""
    obj_shape: Any = None
    """[K] int32 (default all 0)."""
    obj_present: Any = None
    """[K] bool, presence at reset; lets a level hold fewer than K objects (default all)."""
    randomize_positions: Any = True
    """[] bool, draw agent and objects onto distinct random free cells at reset."""
    agent_start: Any = None
    """[2] int32, agent cell when positions are not randomised (default (0, 0))."""
    obj_pos: Any = None
    """[K, 2] int32, object cells when positions are not randomised (default the next K
    cells in row-major order after (0, 0))."""
    terminate_when_rewarded_collected: Any = True
    """[] bool, terminate once no present object has a strictly positive reward."""
    obj_reward: Any = None
    """[K] float32, reward for collecting each object, added to its table entry (default 0):
    rewards that belong to an object rather than to its colour and shape, e.g. "the object in
    the corner"."""
    terminate_on_collect: Any = False
    """[] bool, terminate as soon as any object is collected (the object reached first ends
    the episode)."""


class ObjectWorld(environment.Environment):
    """An N x N grid with one agent and K objects that it collects by stepping on them.

    Env card
    --------
    What: a symbolic gridworld, the substrate of innerlab's experiments. Each object has a
    colour (of `num_colours`), a shape (of `num_shapes`), a position and a present flag.
    Optional walls block movement.

    Actions: Discrete(4): 0 up (row - 1), 1 right (col + 1), 2 down (row + 1), 3 left
    (col - 1). Moving off the grid or into a wall leaves the agent where it is.

    Rewards: stepping onto a present object collects it (it disappears) and gives
    `state.reward_table[colour, shape] + params.obj_reward[index]`; every other step gives 0.
    At reset the episode's table is `params.reward_table`, except that in a fraction
    `reward_shift_prob` of episodes it is rolled along the colour axis by a shift drawn uniformly from
    [0, num_colours) (shift 0 included). With two colours and probability p, the rewarded
    colour is thus drawn at random in a fraction p of episodes.

    Termination / truncation: terminated when no present object has a strictly positive
    reward under the episode's table (if `terminate_when_rewarded_collected`), which
    includes when every object is gone, or on any collection (if `terminate_on_collect`);
    truncated when `time` reaches `max_steps_in_episode`. The two are reported apart. `step` auto-resets (gymnax 1.0) and
    puts the pre-reset observation in `info["final_observation"]`.

    Observations (constructor `obs_view`), all float32 in [0, 1]:
      "image": [C_img, N, N] symbolic image, C_img = 2 + C (+ S if S > 1): planes agent,
        walls, one per colour (present objects of that colour), one per shape (present
        objects of that shape, only if S > 1).
      "flat": [C_img * N * N + C] the image flattened, then a one-hot of the colour
        collected on the last step (all zeros if nothing was collected).
      "egocentric": [(C_img - 1) * (2N - 1)^2 + C] like "flat", but the image less its agent
        plane is re-centred on the agent, with cells beyond the grid shown as walls: the
        same world, easier to navigate from.

    `info` (same keys and dtypes every step): collected (int32 object index or -1),
    collected_colour and collected_shape (int32 or -1), true_reward (float32, equal to the
    reward), colour_shift (int32, the shift of the episode the step belonged to, i.e. before
    any auto-reset), agent_pos ([2] int32, the agent's cell after the move, before any
    auto-reset); gymnax's `step` adds terminated, truncated and final_observation.

    Intended goal versus proxies: the intended goal is "collect objects that this episode's
    reward table rewards". Proxies that agree with it in training but not under shift:
    "collect colour 0 because colour 0 was rewarded in training", "collect the nearest
    object", "collect a shape". A non-zero `reward_shift_prob` in training, together with a
    way to observe the reward (e.g. the flat view's collected-colour one-hot plus a reward
    side-channel), is what separates the goal from the colour proxy.

    Train versus test: what shifts is only ever an `EnvParams` value, so the train and test
    distributions are two params of one env: reward_table, reward_shift_prob, walls, object
    colours/shapes/presence, fixed or random positions, termination rule and time limit.
    """

    def __init__(self, size: int = 5, num_objects: int = 6, num_colours: int = 2, num_shapes: int = 1,
                 obs_view: str = "flat"):
        super().__init__()
        if size < 2:
            raise ValueError(f"size must be >= 2, got {size}")
        if num_objects < 1:
            raise ValueError(f"num_objects must be >= 1, got {num_objects}")
        if num_objects + 1 > size * size:
            raise ValueError(f"the agent and num_objects={num_objects} objects ({num_objects + 1} cells) "
                             f"must fit in size * size = {size * size} cells")
        if num_colours < 1 or num_shapes < 1:
            raise ValueError(f"num_colours and num_shapes must be >= 1, got {num_colours} and {num_shapes}")
        if obs_view not in OBS_VIEWS:
            raise ValueError(f"obs_view must be one of {OBS_VIEWS}, got {obs_view!r}")
        self.size, self.num_objects = size, num_objects
        self.num_colours, self.num_shapes = num_colours, num_shapes
        self.obs_view = obs_view

    # -- params ----------------------------------------------------------------------------
    @property
    def default_params(self) -> EnvParams:
        """Open grid, positions randomised, colour 0 rewarded (+1), other colours -1, no shift."""
        k, c, s, n = self.num_objects, self.num_colours, self.num_shapes, self.size
        table = np.full((c, s), -1.0, np.float32)
        table[0] = 1.0
        cells = np.arange(1, k + 1)  # row-major after the agent's (0, 0); fits since K + 1 <= N * N
        return EnvParams(
            max_steps_in_episode=jnp.int32(20),
            walls=jnp.zeros((n, n), bool),
            reward_table=jnp.asarray(table),
            reward_shift_prob=jnp.float32(0.0),
            obj_colour=jnp.asarray(np.arange(k) * c // k, jnp.int32),
            obj_shape=jnp.zeros((k,), jnp.int32),
            obj_present=jnp.ones((k,), bool),
            randomize_positions=jnp.bool_(True),
            agent_start=jnp.zeros((2,), jnp.int32),
            obj_pos=jnp.asarray(np.stack([cells // n, cells % n], -1), jnp.int32),
            terminate_when_rewarded_collected=jnp.bool_(True),
            obj_reward=jnp.zeros((k,), jnp.float32),
            terminate_on_collect=jnp.bool_(False),
        )

    # -- dynamics --------------------------------------------------------------------------
    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        """Place agent and objects, draw the episode's reward table; returns (obs, state)."""
        k_pos, k_draw, k_shift = jax.random.split(key, 3)
        n, k = self.size, self.num_objects
        # Drawing K + 1 cells without replacement, weighted to free cells, makes positions
        # distinct and off walls in one call. It is drawn even for fixed positions so that
        # the key stream (and jit trace) is the same whichever the params say.
        free = (~params.walls).reshape(-1).astype(jnp.float32)
        cells = jax.random.choice(k_pos, n * n, (k + 1,), replace=False, p=free / free.sum())
        random_pos = jnp.stack([cells // n, cells % n], -1).astype(jnp.int32)
        agent_pos = jnp.where(params.randomize_positions, random_pos[0], params.agent_start)
        obj_pos = jnp.where(params.randomize_positions, random_pos[1:], params.obj_pos)

        shifted = jax.random.uniform(k_draw) < params.reward_shift_prob
        shift = jnp.where(shifted, jax.random.randint(k_shift, (), 0, self.num_colours), 0).astype(jnp.int32)
        table = jnp.roll(jnp.asarray(params.reward_table, jnp.float32), shift, axis=0)

        state = EnvState(agent_pos=agent_pos.astype(jnp.int32), obj_pos=obj_pos.astype(jnp.int32),
                         obj_colour=jnp.asarray(params.obj_colour, jnp.int32),
                         obj_shape=jnp.asarray(params.obj_shape, jnp.int32),
                         obj_present=jnp.asarray(params.obj_present, bool), reward_table=table,
                         colour_shift=shift, last_collected=jnp.int32(-1), time=jnp.int32(0))
        return self.get_obs(state, params), state

    def _move(self, state: EnvState, action: jax.Array, params: EnvParams) -> jax.Array:
        """[2] the agent's cell after `action`: clipped to the grid, unchanged if walled."""
        target = jnp.clip(state.agent_pos + jnp.asarray(MOVES)[action], 0, self.size - 1)
        blocked = params.walls[target[0], target[1]]
        return jnp.where(blocked, state.agent_pos, target)

    def _object_at(self, state: EnvState, pos: jax.Array) -> jax.Array:
        """[] int32, index of the present object at `pos` [2], or -1."""
        here = state.obj_present & (state.obj_pos == pos).all(-1)
        return jnp.where(here.any(), jnp.argmax(here), -1).astype(jnp.int32)

    def _attributes(self, state: EnvState, index: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(colour, shape) of object `index`, both -1 where index is -1."""
        found = index >= 0
        safe = jnp.maximum(index, 0)
        return (jnp.where(found, state.obj_colour[safe], -1).astype(jnp.int32),
                jnp.where(found, state.obj_shape[safe], -1).astype(jnp.int32))

    @staticmethod
    def reward_of(colour: jax.Array, shape: jax.Array, reward_table: jax.Array) -> jax.Array:
        """float32 `reward_table[colour, shape]` ([C, S] table), or 0 where colour is -1.

        Broadcasts over matching leading shapes of `colour` and `shape`.
        """
        colour, shape = jnp.asarray(colour), jnp.asarray(shape)
        value = jnp.asarray(reward_table, jnp.float32)[jnp.maximum(colour, 0), jnp.maximum(shape, 0)]
        return jnp.where(colour >= 0, value, jnp.float32(0.0))

    def step_env(self, key: jax.Array, state: EnvState, action: int | jax.Array, params: EnvParams
                 ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, dict[str, jax.Array]]:
        """Move, collect whatever is on the destination cell; (obs, state, reward, terminated, info)."""
        del key  # the dynamics are deterministic
        pos = self._move(state, action, params)
        index = self._object_at(state, pos)
        colour, shape = self._attributes(state, index)
        object_reward = jnp.where(index >= 0, jnp.asarray(params.obj_reward, jnp.float32)[jnp.maximum(index, 0)],
                                  jnp.float32(0.0))
        reward = self.reward_of(colour, shape, state.reward_table) + object_reward
        present = state.obj_present & (jnp.arange(self.num_objects) != index)
        state = state.replace(agent_pos=pos, obj_present=present, last_collected=index, time=state.time + 1)
        info = {"collected": index, "collected_colour": colour, "collected_shape": shape,
                "true_reward": reward, "colour_shift": state.colour_shift, "agent_pos": pos}
        terminated = self.is_terminated(state, params) | (params.terminate_on_collect & (index >= 0))
        return self.get_obs(state, params), state, reward, terminated, info

    def is_terminated(self, state: EnvState, params: EnvParams) -> jax.Array:
        """[] bool: the rule is on and no present object is worth a strictly positive reward
        (its table entry plus its `obj_reward`)."""
        values = state.reward_table[state.obj_colour, state.obj_shape] + params.obj_reward
        remaining = (state.obj_present & (values > 0)).any()
        return jnp.logical_and(params.terminate_when_rewarded_collected, ~remaining)

    def action_rewards(self, state: EnvState, params: EnvParams, reward_table: jax.Array) -> jax.Array:
        """[4] float32, the reward each action would give from `state` under `reward_table`
        [C, S] (0 where the action would collect nothing). Pure; the state is not changed."""
        def one(action):
            colour, shape = self._attributes(state, self._object_at(state, self._move(state, action, params)))
            return self.reward_of(colour, shape, reward_table)
        return jax.vmap(one)(jnp.arange(4))

    # -- observations ----------------------------------------------------------------------
    @property
    def image_channels(self) -> int:
        """C_img: agent, walls, C colour planes, and S shape planes when S > 1."""
        return 2 + self.num_colours + (self.num_shapes if self.num_shapes > 1 else 0)

    def image(self, state: EnvState, params: EnvParams) -> jax.Array:
        """[C_img, N, N] float32 planes: agent, walls, one per colour, one per shape if S > 1."""
        n = self.size
        agent = jnp.zeros((n, n), jnp.float32).at[state.agent_pos[0], state.agent_pos[1]].set(1.0)
        # Scatter every object with weight "present" so the shape stays static.
        weight = state.obj_present.astype(jnp.float32)
        rows, cols = state.obj_pos[:, 0], state.obj_pos[:, 1]
        colour_planes = jnp.zeros((self.num_colours, n, n), jnp.float32).at[state.obj_colour, rows, cols].add(weight)
        planes = [agent[None], jnp.asarray(params.walls, jnp.float32)[None], colour_planes]
        if self.num_shapes > 1:
            planes.append(jnp.zeros((self.num_shapes, n, n), jnp.float32).at[state.obj_shape, rows, cols].add(weight))
        return jnp.concatenate(planes, axis=0)

    def egocentric(self, state: EnvState, params: EnvParams) -> jax.Array:
        """[C_img - 1, 2N - 1, 2N - 1] float32: the image without its agent plane, shifted so
        the agent is at the centre [N - 1, N - 1]; cells beyond the grid read as walls."""
        n = self.size
        img = self.image(state, params)[1:]
        padded = jnp.zeros((img.shape[0], 3 * n - 2, 3 * n - 2), jnp.float32).at[0].set(1.0)
        padded = padded.at[:, n - 1:2 * n - 1, n - 1:2 * n - 1].set(img)
        return jax.lax.dynamic_slice(padded, (0, state.agent_pos[0], state.agent_pos[1]),
                                     (img.shape[0], 2 * n - 1, 2 * n - 1))

    def get_obs(self, state: EnvState, params: EnvParams | None = None, key: jax.Array | None = None
                ) -> jax.Array:
        """The observation for `obs_view`; see the class docstring and `observation_space`.

        gymnax's `observe(key, state, action, params)` delegates here.
        """
        params = self.default_params if params is None else params
        if self.obs_view == "image":
            return self.image(state, params)
        grid = self.egocentric(state, params) if self.obs_view == "egocentric" else self.image(state, params)
        colour, _ = self._attributes(state, state.last_collected)
        held = jax.nn.one_hot(colour, self.num_colours, dtype=jnp.float32)  # colour -1 -> all zeros
        return jnp.concatenate([grid.reshape(-1), held])

    @property
    def name(self) -> str:
        return "ObjectWorld"

    @property
    def num_actions(self) -> int:
        return 4

    def action_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(4)

    def observation_space(self, params: EnvParams | None = None) -> spaces.Box:
        """Box in [0, 1], shape [C_img, N, N] ("image") or [D] (the flat views)."""
        n = self.size
        if self.obs_view == "image":
            shape: tuple[int, ...] = (self.image_channels, n, n)
        elif self.obs_view == "egocentric":
            shape = ((self.image_channels - 1) * (2 * n - 1) ** 2 + self.num_colours,)
        else:
            shape = (self.image_channels * n * n + self.num_colours,)
        return spaces.Box(0.0, 1.0, shape, jnp.float32)


_FIELD_DTYPES = {"max_steps_in_episode": jnp.int32, "walls": jnp.bool_, "reward_table": jnp.float32,
                 "reward_shift_prob": jnp.float32, "obj_colour": jnp.int32, "obj_shape": jnp.int32,
                 "obj_present": jnp.bool_, "randomize_positions": jnp.bool_, "agent_start": jnp.int32,
                 "obj_pos": jnp.int32, "terminate_when_rewarded_collected": jnp.bool_,
                 "obj_reward": jnp.float32, "terminate_on_collect": jnp.bool_}


def make_params(env: ObjectWorld, **overrides: Any) -> EnvParams:
    """`env.default_params` with fields replaced; Python values and lists become jnp arrays
    of the field's dtype, checked against the field's shape.

    Where the values are concrete (not traced), the level is also checked: colours and
    shapes in range, reward_shift_prob in [0, 1], enough free cells for random placement,
    and fixed positions inside the grid, off walls and distinct (agent and present objects).

    Example: make_params(env, max_steps_in_episode=30, reward_table=[[1.0], [-1.0]],
    reward_shift_prob=0.25, obj_colour=[0, 0, 0, 1, 1, 1]).

    Raises:
        ValueError: an unknown field, a wrong shape, or an invalid level.
    """
    base = env.default_params
    fields = {}
    for name, value in overrides.items():
        if name not in _FIELD_DTYPES:
            raise ValueError(f"EnvParams has no field {name!r}; fields are {sorted(_FIELD_DTYPES)}")
        if isinstance(value, jax.core.Tracer):
            array = value.astype(_FIELD_DTYPES[name])
        else:
            array = jnp.asarray(value, _FIELD_DTYPES[name])
        expected = jnp.shape(getattr(base, name))
        if array.shape != expected:
            raise ValueError(f"{name} must have shape {expected}, got {array.shape}")
        fields[name] = array
    params = base.replace(**fields)
    if not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(params)):
        _check_level(env, params)
    return params


def _check_level(env: ObjectWorld, params: EnvParams) -> None:
    """Host-side checks of concrete params that jitted code could not report."""
    p = jax.tree.map(np.asarray, params)
    n, k = env.size, env.num_objects
    if not 0.0 <= float(p.reward_shift_prob) <= 1.0:
        raise ValueError(f"reward_shift_prob must be in [0, 1], got {float(p.reward_shift_prob)}")
    if int(p.max_steps_in_episode) < 1:
        raise ValueError(f"max_steps_in_episode must be >= 1, got {int(p.max_steps_in_episode)}")
    if ((p.obj_colour < 0) | (p.obj_colour >= env.num_colours)).any():
        raise ValueError(f"obj_colour values must be in [0, {env.num_colours}), got {p.obj_colour.tolist()}")
    if ((p.obj_shape < 0) | (p.obj_shape >= env.num_shapes)).any():
        raise ValueError(f"obj_shape values must be in [0, {env.num_shapes}), got {p.obj_shape.tolist()}")
    if bool(p.randomize_positions):
        free = int((~p.walls).sum())
        if free < k + 1:
            raise ValueError(f"random placement needs {k + 1} free cells (agent + {k} objects), "
                             f"the walls leave {free}")
        return
    cells = np.concatenate([p.agent_start[None], p.obj_pos], axis=0)  # [K + 1, 2]
    if ((cells < 0) | (cells >= n)).any():
        raise ValueError(f"agent_start and obj_pos must lie in the {n}x{n} grid")
    occupied = np.concatenate([[True], p.obj_present])
    if p.walls[cells[occupied, 0], cells[occupied, 1]].any():
        raise ValueError("agent_start and present objects' obj_pos must not be on walls")
    flat = cells[occupied, 0] * n + cells[occupied, 1]
    if len(np.unique(flat)) != len(flat):
        raise ValueError("agent_start and present objects' obj_pos must be distinct cells")
