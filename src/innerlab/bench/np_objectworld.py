"""ObjectWorld in plain numpy as a Gymnasium env: the sb3-contrib side of `innerlab bench`.

`NumpyObjectWorld` reproduces `innerlab.envs.objectworld.ObjectWorld`'s dynamics and
observations step for step (tests/test_np_objectworld.py steps both with the same actions
from the same states and checks that observations, rewards, `terminated` and `truncated`
agree exactly). It is written the way a researcher would write a numpy gridworld for
Stable-Baselines3: one env per instance, batched by sb3's `DummyVecEnv`. It imports neither
jax nor innerlab's agents, so the peer measures numpy + torch only.

Env card (the JAX env's docstring is the reference; this is what is reproduced)
--------------------------------------------------------------------------------
What: an N x N grid, one agent, K objects with a colour (of C) and a shape (of S); optional
walls. The defaults are the bench configuration, `ObjectWorld(size=7, num_objects=6,
num_colours=2)` with `make_params(env, max_steps_in_episode=30)` and the default flat view.

Actions: Discrete(4): 0 up (row - 1), 1 right (col + 1), 2 down (row + 1), 3 left
(col - 1). A move off the grid or into a wall leaves the agent where it is. Anything other
than an integer in [0, 4) raises ValueError.

Rewards: stepping onto a present object collects it (it disappears) and gives
`reward_table[colour, shape]` (default colour 0 -> +1, other colours -> -1); other steps 0.

Termination / truncation, reported apart as in gymnax 1.0: terminated once no present object
has a strictly positive reward (this includes every object gone); truncated once
`time >= max_steps` (both may be true on the same step). There is no auto-reset here: sb3's
`DummyVecEnv` resets and keeps the final observation in `info["terminal_observation"]`, as
gymnax's `step` does with `info["final_observation"]`; `step` of this env is the JAX env's
`step_env` followed by `is_truncated`.

Reset: the agent and the K objects on K + 1 distinct cells drawn uniformly without
replacement from the free (non-wall) cells (the JAX env's weighted `jax.random.choice`
draws the same distribution; the random streams differ, so `set_state` exists to start both
from one state); object colours `arange(K) * C // K`, shapes `obj_shape` (default 0), all
present, nothing collected, time 0.

Observations, float32:
  "flat": [C_img * N * N + C]: the image [C_img, N, N] flattened (C order), then a one-hot
    of the colour of the object collected on the last step (zeros if none). C_img = 2 + C
    (+ S if S > 1); planes: agent, walls, one per colour (present objects of that colour),
    one per shape (present objects of that shape, only if S > 1).
  "egocentric": [(C_img - 1) * (2N - 1)^2 + C]: the image without its agent plane, re-centred
    so the agent sits at [N - 1, N - 1], cells beyond the grid drawn as walls; then the
    one-hot as above.
  With `prev_reward=True` one more value is appended: the reward of the previous step (0 at
  reset), i.e. `innerlab.channels.RewardChannel(mode="prev")` with the identity transform
  and no perturbation, which is how the side-channels experiment's `prev` condition observes
  ObjectWorld.

Not reproduced (not part of the bench configuration): `reward_shift_prob` > 0, `obj_reward`,
`terminate_on_collect`, fixed start positions (use `set_state`), `obs_view="image"`, and the
JAX env's `info` keys beyond collected / collected_colour / collected_shape.
"""

from __future__ import annotations

import operator
import time as _time

import gymnasium as gym
import numpy as np

# (row, col) displacement of actions 0 up, 1 right, 2 down, 3 left, as in envs/objectworld.py.
MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))
OBS_VIEWS = ("flat", "egocentric")


class NumpyObjectWorld(gym.Env):
    """ObjectWorld in numpy, one env per instance; see the module docstring for the card.

    Args:
        size: N, the grid is N x N.
        num_objects: K.
        num_colours: C.
        num_shapes: S.
        max_steps: truncation limit (the JAX env's `max_steps_in_episode`).
        obs_view: "flat" or "egocentric".
        walls: [N, N] bool, blocked cells (default none).
        reward_table: [C, S] float32 (default colour 0 -> +1, others -1).
        obj_colour: [K] int (default `arange(K) * C // K`).
        obj_shape: [K] int (default zeros).
        prev_reward: append the previous step's reward to the observation (see module doc).

    Raises:
        ValueError: sizes or a level that the JAX env would also refuse.
    """

    metadata = {"render_modes": []}

    def __init__(self, size: int = 7, num_objects: int = 6, num_colours: int = 2, num_shapes: int = 1,
                 max_steps: int = 30, obs_view: str = "flat", walls=None, reward_table=None, obj_colour=None,
                 obj_shape=None, prev_reward: bool = False):
        super().__init__()
        if size < 2 or num_objects < 1 or num_colours < 1 or num_shapes < 1 or max_steps < 1:
            raise ValueError(f"need size >= 2 and num_objects, num_colours, num_shapes, max_steps >= 1; got "
                             f"{size}, {num_objects}, {num_colours}, {num_shapes}, {max_steps}")
        if obs_view not in OBS_VIEWS:
            raise ValueError(f"obs_view must be one of {OBS_VIEWS}, got {obs_view!r}")
        n, k, c, s = size, num_objects, num_colours, num_shapes
        self.size, self.num_objects, self.num_colours, self.num_shapes = n, k, c, s
        self.max_steps, self.obs_view, self.prev_reward = max_steps, obs_view, prev_reward

        self.walls = np.zeros((n, n), bool) if walls is None else np.array(walls, bool)
        if reward_table is None:
            reward_table = np.full((c, s), -1.0, np.float32)
            reward_table[0] = 1.0
        self.reward_table = np.array(reward_table, np.float32)
        self.default_colour = (np.arange(k) * c // k if obj_colour is None else np.array(obj_colour)).astype(np.int64)
        self.default_shape = (np.zeros(k) if obj_shape is None else np.array(obj_shape)).astype(np.int64)
        if self.walls.shape != (n, n) or self.reward_table.shape != (c, s):
            raise ValueError(f"walls must be [{n}, {n}] and reward_table [{c}, {s}], got "
                             f"{self.walls.shape} and {self.reward_table.shape}")
        if self.default_colour.shape != (k,) or self.default_shape.shape != (k,):
            raise ValueError(f"obj_colour and obj_shape must have shape ({k},)")
        self._check_attributes(self.default_colour, self.default_shape)
        self.free_cells = np.flatnonzero(~self.walls.reshape(-1))
        if len(self.free_cells) < k + 1:
            raise ValueError(f"random placement needs {k + 1} free cells, the walls leave {len(self.free_cells)}")

        self.image_channels = 2 + c + (s if s > 1 else 0)
        grid_dim = (self.image_channels * n * n if obs_view == "flat"
                    else (self.image_channels - 1) * (2 * n - 1) ** 2)
        self.obs_dim = grid_dim + c + (1 if prev_reward else 0)
        low, high = (-np.inf, np.inf) if prev_reward else (0.0, 1.0)
        self.observation_space = gym.spaces.Box(low, high, (self.obs_dim,), np.float32)
        self.action_space = gym.spaces.Discrete(4)
        self._time = None  # None until the first reset or set_state

    # -- state ---------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Agent and objects on distinct random free cells; returns (obs [D], info {})."""
        super().reset(seed=seed)
        k, n = self.num_objects, self.size
        cells = self.np_random.choice(self.free_cells, k + 1, replace=False)
        positions = np.stack([cells // n, cells % n], -1)
        obs = self.set_state(positions[0], positions[1:], self.default_colour, self.default_shape,
                             np.ones(k, bool))
        return obs, {}

    def set_state(self, agent_pos, obj_pos, obj_colour, obj_shape, obj_present, time: int = 0,
                  last_collected: int = -1, reward_table=None, prev_reward: float = 0.0) -> np.ndarray:
        """Put the env in a given state (e.g. a JAX `EnvState`'s fields through np.asarray)
        and return its observation [D].

        agent_pos [2], obj_pos [K, 2], obj_colour [K], obj_shape [K], obj_present [K] bool,
        time and last_collected ints, reward_table [C, S] (default the env's), prev_reward
        the channel's value (used only with `prev_reward=True`).

        Raises:
            ValueError: wrong shapes, cells off the grid or on walls, or present objects
                sharing a cell (the JAX env assumes distinct cells; the numpy env relies on it).
        """
        n, k = self.size, self.num_objects
        agent_pos = np.array(agent_pos, np.int64).reshape(-1)
        obj_pos = np.array(obj_pos, np.int64)
        obj_colour, obj_shape = np.array(obj_colour, np.int64), np.array(obj_shape, np.int64)
        obj_present = np.array(obj_present, bool)
        table = self.reward_table if reward_table is None else np.array(reward_table, np.float32)
        if (agent_pos.shape != (2,) or obj_pos.shape != (k, 2) or obj_colour.shape != (k,)
                or obj_shape.shape != (k,) or obj_present.shape != (k,) or table.shape != self.reward_table.shape):
            raise ValueError("set_state: expected agent_pos [2], obj_pos/colour/shape/present for "
                             f"{k} objects and reward_table {self.reward_table.shape}")
        self._check_attributes(obj_colour, obj_shape)
        cells = np.concatenate([agent_pos[None], obj_pos[obj_present]])
        if ((cells < 0) | (cells >= n)).any() or self.walls[cells[:, 0], cells[:, 1]].any():
            raise ValueError("set_state: the agent and present objects must be on free cells of the grid")
        if len(np.unique(cells[:, 0] * n + cells[:, 1])) != len(cells):
            raise ValueError("set_state: the agent and present objects must be on distinct cells")
        if not -1 <= int(last_collected) < k:
            raise ValueError(f"set_state: last_collected must be in [-1, {k}), got {last_collected}")

        self.agent_row, self.agent_col = int(agent_pos[0]), int(agent_pos[1])
        self.obj_pos, self.obj_colour, self.obj_shape = obj_pos, obj_colour, obj_shape
        self.obj_present = obj_present.copy()
        self.episode_table = table
        self.obj_value = table[obj_colour, obj_shape]  # [K] reward for collecting each object
        # Which present object sits on each cell (-1 for none): collection is one lookup.
        self.object_at = np.full((n, n), -1, np.int64)
        index = np.flatnonzero(obj_present)
        self.object_at[obj_pos[index, 0], obj_pos[index, 1]] = index
        self._time, self.last_collected = int(time), int(last_collected)
        self.last_reward = float(prev_reward)
        return self._obs()

    def _check_attributes(self, colour, shape):
        if ((colour < 0) | (colour >= self.num_colours)).any() or ((shape < 0) | (shape >= self.num_shapes)).any():
            raise ValueError(f"object colours must be in [0, {self.num_colours}) and shapes in "
                             f"[0, {self.num_shapes}), got {colour.tolist()} and {shape.tolist()}")

    @property
    def time(self) -> int:
        return self._time

    # -- dynamics ------------------------------------------------------------------------
    def step(self, action):
        """Move, collect; returns (obs [D] float32, reward, terminated, truncated, info)."""
        try:
            a = operator.index(action)
        except TypeError:
            a = None
        if a is None or not 0 <= a < 4:
            raise ValueError(f"action must be an integer in [0, 4), got {action!r}")
        if self._time is None:
            raise RuntimeError("call reset() or set_state() before step()")
        drow, dcol = MOVES[a]
        row = min(max(self.agent_row + drow, 0), self.size - 1)
        col = min(max(self.agent_col + dcol, 0), self.size - 1)
        if not self.walls[row, col]:
            self.agent_row, self.agent_col = row, col

        index = int(self.object_at[self.agent_row, self.agent_col])
        reward = 0.0
        colour = shape = -1
        if index >= 0:
            reward = float(self.obj_value[index])
            colour, shape = int(self.obj_colour[index]), int(self.obj_shape[index])
            self.obj_present[index] = False
            self.object_at[self.agent_row, self.agent_col] = -1
        self.last_collected, self.last_reward = index, reward
        self._time += 1

        terminated = not (self.obj_present & (self.obj_value > 0)).any()
        truncated = self._time >= self.max_steps
        info = {"collected": index, "collected_colour": colour, "collected_shape": shape}
        return self._obs(), reward, terminated, truncated, info

    # -- observations --------------------------------------------------------------------
    def image(self) -> np.ndarray:
        """[C_img, N, N] float32: agent, walls, colour planes, shape planes if S > 1."""
        n, c = self.size, self.num_colours
        img = np.zeros((self.image_channels, n, n), np.float32)
        img[0, self.agent_row, self.agent_col] = 1.0
        img[1] = self.walls
        present = self.obj_present
        rows, cols = self.obj_pos[present, 0], self.obj_pos[present, 1]
        img[2 + self.obj_colour[present], rows, cols] = 1.0
        if self.num_shapes > 1:
            img[2 + c + self.obj_shape[present], rows, cols] = 1.0
        return img

    def _obs(self) -> np.ndarray:
        n, c = self.size, self.num_colours
        obs = np.zeros(self.obs_dim, np.float32)
        img = self.image()
        if self.obs_view == "flat":
            grid_dim = img.size
            obs[:grid_dim] = img.reshape(-1)
        else:
            side = 2 * n - 1
            grid_dim = (self.image_channels - 1) * side * side
            view = obs[:grid_dim].reshape(self.image_channels - 1, side, side)  # a view into obs
            view[0] = 1.0  # beyond the grid reads as wall
            top, left = n - 1 - self.agent_row, n - 1 - self.agent_col
            view[:, top:top + n, left:left + n] = img[1:]
        if self.last_collected >= 0:
            obs[grid_dim + self.obj_colour[self.last_collected]] = 1.0
        if self.prev_reward:
            obs[grid_dim + c] = self.last_reward
        return obs


def make_vec_env(num_envs: int, seed: int = 0, monitor: bool = False, **env_kwargs):
    """sb3 `DummyVecEnv` of `num_envs` NumpyObjectWorlds (seeded seed, seed + 1, ...), each
    wrapped in sb3's `Monitor` when `monitor` (episode returns for `ep_info_buffer`)."""
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    def make():
        env = NumpyObjectWorld(**env_kwargs)
        return Monitor(env) if monitor else env

    vec = DummyVecEnv([make] * num_envs)
    vec.seed(seed)
    return vec


def env_steps_per_s(num_envs: int = 1, steps: int = 20_000, seed: int = 0, **env_kwargs) -> float:
    """Env-only throughput: env steps per second (counted over all envs) with uniform random
    actions, drawn up front so that only the env is timed.

    num_envs == 1: one NumpyObjectWorld in a plain Python loop, reset when an episode ends.
    num_envs > 1: sb3's DummyVecEnv of num_envs (what RecurrentPPO steps), which auto-resets;
    `steps` is the total over all envs (rounded down to whole vector steps).
    """
    if num_envs < 1 or steps < num_envs:
        raise ValueError(f"need num_envs >= 1 and steps >= num_envs, got {num_envs} and {steps}")
    rng = np.random.default_rng(seed)
    if num_envs == 1:
        env = NumpyObjectWorld(**env_kwargs)
        env.reset(seed=seed)
        actions = rng.integers(0, 4, steps)
        start = _time.perf_counter()
        for action in actions:
            _, _, terminated, truncated, _ = env.step(int(action))
            if terminated or truncated:
                env.reset()
        return steps / (_time.perf_counter() - start)
    vec = make_vec_env(num_envs, seed, **env_kwargs)
    vec.reset()
    actions = rng.integers(0, 4, (steps // num_envs, num_envs))
    start = _time.perf_counter()
    for action in actions:
        vec.step(action)
    return actions.size / (_time.perf_counter() - start)


if __name__ == "__main__":
    for n_envs in (1, 8, 64):
        print(f"numpy ObjectWorld 7x7, {n_envs:>2} env(s): {env_steps_per_s(n_envs, 50_000):,.0f} env-steps/s")
