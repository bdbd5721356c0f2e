"""ObjectWorld: a pure-JAX gridworld of collectable objects, with gymnax 1.0's API."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

# (row, col) moves for actions 0 up, 1 right, 2 down, 3 left.
MOVES = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]], dtype=np.int32)
ACTION_NAMES = ("up", "right", "down", "left")
OBS_VIEWS = ("flat", "image", "egocentric")


@struct.dataclass
class EnvState(environment.EnvState):
    agent_pos: jax.Array      # [2] int32 (row, col)
    obj_pos: jax.Array        # [K, 2] int32
    obj_colour: jax.Array     # [K] int32
    obj_shape: jax.Array      # [K] int32
    obj_present: jax.Array    # [K] bool
    reward_table: jax.Array   # [C, S] float32, this episode's reward per (colour, shape)
    colour_shift: jax.Array   # [] int32, how far this episode's table is rolled along colours
    last_collected: jax.Array  # [] int32, object collected on the last step, -1 if none
    time: jax.Array           # [] int32


@struct.dataclass
class EnvParams(environment.EnvParams):
    max_steps_in_episode: int = 20
    walls: Any = None                   # [N, N] bool
    reward_table: Any = None            # [C, S] float32
    reward_shift_prob: Any = 0.0        # [] float
    obj_colour: Any = None              # [K] int32
    obj_shape: Any = None               # [K] int32
    obj_present: Any = None             # [K] bool, presence at reset
    randomize_positions: Any = True     # [] bool
    agent_start: Any = None             # [2] int32, used when positions are not randomised
    obj_pos: Any = None                 # [K, 2] int32, likewise
    terminate_when_rewarded_collected: Any = True  # [] bool


class ObjectWorld(environment.Environment):
    """An N x N grid with one agent and K objects that it collects by stepping on them.

    Env card
    --------
    What: a symbolic gridworld, the substrate of innerlab's experiments. Each object has a
    colour (of `num_colours`), a shape (of `num_shapes`), a position and a present flag.
    Optional walls block movement.

    Actions: Discrete(4): 0 up (row - 1), 1 right (col + 1), 2 down (row + 1), 3 left (col - 1).
    Moving off the grid or into a wall leaves the agent where it is.

    Rewards: stepping onto a present object collects it (it disappears) and gives
    `reward_table[colour, shape]` of the episode's table; every other step gives 0. The
    episode's table is `params.reward_table`, rolled along the colour axis by a uniformly
    random shift in a fraction `reward_shift_prob` of episodes (drawn at reset).

    Termination / truncation: terminated when no present object has a positive reward under
    the episode's table (if `terminate_when_rewarded_collected`); truncated when `time`
    reaches `max_steps_in_episode`. `step` auto-resets (gymnax) and puts the pre-reset
    observation in `info["final_observation"]`.

    Observations (constructor `obs_view`): "image" is a symbolic [C_img, N, N] image with
    planes agent, walls, one per colour and (if num_shapes > 1) one per shape; "flat" is
    that image flattened, followed by a one-hot of the colour collected on the last step
    ([num_colours], zero if nothing was collected); "egocentric" is like "flat" but the
    image (less the agent plane) is re-centred on the agent, [C_img - 1, 2N - 1, 2N - 1],
    with cells beyond the grid shown as walls: the same world, far easier to navigate from.

    Intended goal versus proxies: the intended goal is "collect what the reward table
    rewards"; an agent trained with a fixed table may instead learn a proxy such as "collect
    colour 0" or "collect the nearest object", which agree with it in training only.

    Train versus test: everything that shifts is an `EnvParams` value: reward_table,
    reward_shift_prob, walls, object attributes, fixed or random positions, time limit.

    `info`: collected (object index or -1), collected_colour, collected_shape (or -1),
    true_reward, colour_shift.
    """

    def __init__(self, size: int = 5, num_objects: int = 6, num_colours: int = 2, num_shapes: int = 1,
                 obs_view: str = "flat"):
        super().__init__()
        if size < 2:
            raise ValueError(f"size must be >= 2, got {size}")
        if num_objects < 1:
            raise ValueError(f"num_objects must be >= 1, got {num_objects}")
        if num_objects + 1 > size * size:
            raise ValueError(f"num_objects + 1 ({num_objects + 1}) must fit in size * size ({size * size}) cells")
        if num_colours < 1 or num_shapes < 1:
            raise ValueError("num_colours and num_shapes must be >= 1")
        if obs_view not in OBS_VIEWS:
            raise ValueError(f"obs_view must be one of {OBS_VIEWS}, got {obs_view!r}")
        self.size, self.num_objects = size, num_objects
        self.num_colours, self.num_shapes = num_colours, num_shapes
        self.obs_view = obs_view

    # -- params ----------------------------------------------------------------------------
    @property
    def default_params(self) -> EnvParams:
        k, c, s, n = self.num_objects, self.num_colours, self.num_shapes, self.size
        table = np.full((c, s), -1.0, np.float32)
        table[0] = 1.0
        cells = np.arange(1, k + 1)  # distinct cells after (0, 0), row-major
        return EnvParams(
            max_steps_in_episode=20,
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
        )

    # -- dynamics --------------------------------------------------------------------------
    def reset_env(self, key, params: EnvParams):
        k_pos, k_shift, k_draw = jax.random.split(key, 3)
        n, k = self.size, self.num_objects
        free = ~params.walls.reshape(-1)
        cells = jax.random.choice(k_pos, n * n, (k + 1,), replace=False, p=free / free.sum())
        random_pos = jnp.stack([cells // n, cells % n], -1).astype(jnp.int32)
        agent_pos = jnp.where(params.randomize_positions, random_pos[0], params.agent_start)
        obj_pos = jnp.where(params.randomize_positions, random_pos[1:], params.obj_pos)
        shift = jnp.where(jax.random.uniform(k_draw) < params.reward_shift_prob,
                          jax.random.randint(k_shift, (), 0, self.num_colours), 0).astype(jnp.int32)
        table = jnp.roll(params.reward_table, shift, axis=0) if self.num_colours > 1 else params.reward_table
        # jnp.roll needs a static shift for speed on some backends; a traced shift is fine here.
        state = EnvState(agent_pos=agent_pos, obj_pos=obj_pos, obj_colour=params.obj_colour,
                         obj_shape=params.obj_shape, obj_present=params.obj_present, reward_table=table,
                         colour_shift=shift, last_collected=jnp.int32(-1), time=jnp.int32(0))
        return self.get_obs(state, params), state

    def _move(self, state: EnvState, action, params: EnvParams):
        target = jnp.clip(state.agent_pos + jnp.asarray(MOVES)[action], 0, self.size - 1)
        blocked = params.walls[target[0], target[1]]
        return jnp.where(blocked, state.agent_pos, target)

    def _object_at(self, state: EnvState, pos):
        """Index of the present object at `pos`, or -1."""
        here = state.obj_present & (state.obj_pos == pos).all(-1)
        return jnp.where(here.any(), jnp.argmax(here), -1).astype(jnp.int32)

    @staticmethod
    def reward_of(colour, shape, reward_table):
        """reward_table[colour, shape], or 0 where colour is -1 (nothing collected)."""
        value = reward_table[jnp.maximum(colour, 0), jnp.maximum(shape, 0)]
        return jnp.where(colour >= 0, value, 0.0)

    def step_env(self, key, state: EnvState, action, params: EnvParams):
        pos = self._move(state, action, params)
        idx = self._object_at(state, pos)
        got = idx >= 0
        colour = jnp.where(got, state.obj_colour[idx], -1)
        shape = jnp.where(got, state.obj_shape[idx], -1)
        reward = self.reward_of(colour, shape, state.reward_table).astype(jnp.float32)
        present = state.obj_present & ~(got & (jnp.arange(self.num_objects) == idx))
        state = state.replace(agent_pos=pos, obj_present=present, last_collected=idx, time=state.time + 1)
        terminated = self.is_terminated(state, params)
        info = {"collected": idx, "collected_colour": colour.astype(jnp.int32),
                "collected_shape": shape.astype(jnp.int32), "true_reward": reward,
                "colour_shift": state.colour_shift}
        return self.get_obs(state, params), state, reward, terminated, info

    def is_terminated(self, state: EnvState, params: EnvParams):
        values = state.reward_table[state.obj_colour, state.obj_shape]
        remaining = (state.obj_present & (values > 0)).any()
        return jnp.logical_and(params.terminate_when_rewarded_collected, ~remaining)

    def action_rewards(self, state: EnvState, params: EnvParams, reward_table) -> jax.Array:
        """[4] the reward each action would give now if `reward_table` were in force."""
        def one(action):
            idx = self._object_at(state, self._move(state, action, params))
            colour = jnp.where(idx >= 0, state.obj_colour[idx], -1)
            shape = jnp.where(idx >= 0, state.obj_shape[idx], -1)
            return self.reward_of(colour, shape, reward_table)
        return jax.vmap(one)(jnp.arange(4))

    # -- observations ----------------------------------------------------------------------
    def image(self, state: EnvState, params: EnvParams) -> jax.Array:
        """[C_img, N, N] float32: agent, walls, one plane per colour, one per shape if S > 1."""
        n = self.size
        agent = jnp.zeros((n, n)).at[state.agent_pos[0], state.agent_pos[1]].set(1.0)
        weight = state.obj_present.astype(jnp.float32)
        rows, cols = state.obj_pos[:, 0], state.obj_pos[:, 1]
        colour_planes = jnp.zeros((self.num_colours, n, n)).at[state.obj_colour, rows, cols].add(weight)
        planes = [agent[None], params.walls.astype(jnp.float32)[None], colour_planes]
        if self.num_shapes > 1:
            planes.append(jnp.zeros((self.num_shapes, n, n)).at[state.obj_shape, rows, cols].add(weight))
        return jnp.concatenate(planes, axis=0)

    def egocentric(self, state: EnvState, params: EnvParams) -> jax.Array:
        """[C_img - 1, 2N - 1, 2N - 1]: the image without the agent plane, shifted so the agent is
        at the centre; cells beyond the grid read as walls."""
        n = self.size
        img = self.image(state, params)[1:]
        pad = jnp.zeros((img.shape[0], 3 * n - 2, 3 * n - 2)).at[0].set(1.0)
        pad = pad.at[:, n - 1:2 * n - 1, n - 1:2 * n - 1].set(img)
        return jax.lax.dynamic_slice(pad, (0, state.agent_pos[0], state.agent_pos[1]),
                                     (img.shape[0], 2 * n - 1, 2 * n - 1))

    def get_obs(self, state: EnvState, params: EnvParams | None = None, key=None) -> jax.Array:
        params = self.default_params if params is None else params
        if self.obs_view == "image":
            return self.image(state, params)
        img = self.egocentric(state, params) if self.obs_view == "egocentric" else self.image(state, params)
        last = state.last_collected
        colour = jnp.where(last >= 0, state.obj_colour[jnp.maximum(last, 0)], -1)
        held = jax.nn.one_hot(colour, self.num_colours) * (colour >= 0)
        return jnp.concatenate([img.reshape(-1), held])

    @property
    def image_channels(self) -> int:
        return 2 + self.num_colours + (self.num_shapes if self.num_shapes > 1 else 0)

    @property
    def name(self) -> str:
        return "ObjectWorld"

    @property
    def num_actions(self) -> int:
        return 4

    def action_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(4)

    def observation_space(self, params: EnvParams | None = None) -> spaces.Box:
        n = self.size
        if self.obs_view == "image":
            shape = (self.image_channels, n, n)
        elif self.obs_view == "egocentric":
            shape = ((self.image_channels - 1) * (2 * n - 1) ** 2 + self.num_colours,)
        else:
            shape = (self.image_channels * n * n + self.num_colours,)
        return spaces.Box(0.0, 1.0, shape, jnp.float32)


def make_params(env: ObjectWorld, **overrides) -> EnvParams:
    """`env.default_params` with fields replaced; Python values become typed jnp arrays.

    Example: make_params(env, max_steps_in_episode=30, reward_table=[[1.0], [-1.0]],
    reward_shift_prob=0.25, obj_colour=[0, 0, 0, 1, 1, 1]).
    """
    base = env.default_params
    dtypes = {"walls": bool, "reward_table": jnp.float32, "reward_shift_prob": jnp.float32,
              "obj_colour": jnp.int32, "obj_shape": jnp.int32, "obj_present": bool,
              "randomize_positions": bool, "agent_start": jnp.int32, "obj_pos": jnp.int32,
              "terminate_when_rewarded_collected": bool}
    fields = {}
    for name, value in overrides.items():
        if not hasattr(base, name):
            raise ValueError(f"EnvParams has no field {name!r}")
        if name == "max_steps_in_episode":
            fields[name] = value
            continue
        array = jnp.asarray(value, dtypes[name])
        expected = jnp.shape(getattr(base, name))
        if array.shape != expected:
            raise ValueError(f"{name} must have shape {expected}, got {array.shape}")
        fields[name] = array
    return base.replace(**fields)
