"""Exact tabular export of a small ObjectWorld level, for reward distances and inverse RL.

    mdp = tabulate(env, params)
    mdp.transitions   # [S, A, S] probabilities (one-hot rows: ObjectWorld is deterministic)
    mdp.reward        # [S, A, S] the level's true reward R(s, a, s')
    mdp.features      # [S, A, S, K] which object the transition collects (one-hot, zeros if none)

A state is (agent cell, which objects are present), for every free cell not covered by a
present object, plus one absorbing `terminal` state that every terminating transition
enters (it loops to itself with reward 0). Object positions, colours, shapes and the reward
table are those of `params` (fixed positions are required); the time limit is not part of
the state, so use a discount or a horizon instead. Every transition is computed by the env's
own `step_env`, so the table and the JAX env cannot disagree.

Every reward that depends on which object is collected is linear in `features`:
R = features @ w with w[k] = reward_table[colour_k, shape_k] + obj_reward[k].
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from innerlab.envs.objectworld import EnvParams, EnvState, ObjectWorld


@dataclass(frozen=True)
class TabularMDP:
    transitions: np.ndarray
    """[S, A, S] float64, P(s' | s, a)."""
    reward: np.ndarray
    """[S, A, S] float64, R(s, a, s') (0 where the transition is impossible)."""
    features: np.ndarray
    """[S, A, S, K] float64, one-hot of the object collected by the transition."""
    initial: np.ndarray
    """[S] float64, the start distribution (the level's agent_start, with every object of the level present)."""
    agent_pos: np.ndarray
    """[S, 2] int, the agent's cell in each state (-1 for the terminal state)."""
    present: np.ndarray
    """[S, K] bool, objects present in each state (all False for the terminal state)."""
    terminal: int
    """Index of the absorbing terminal state (the last one)."""

    @property
    def num_states(self) -> int:
        return self.transitions.shape[0]

    @property
    def num_actions(self) -> int:
        return self.transitions.shape[1]

    @functools.cached_property
    def _lookup(self) -> dict[tuple, int]:
        return {(int(p[0]), int(p[1]), *map(bool, m)): i
                for i, (p, m) in enumerate(zip(self.agent_pos[:-1], self.present[:-1]))}

    def index(self, agent_pos, present) -> int:
        """The state index of (agent cell, presence mask); KeyError if it is not a state."""
        return self._lookup[(int(agent_pos[0]), int(agent_pos[1]), *map(bool, present))]

    @property
    def successor(self) -> np.ndarray:
        """[S, A] int, the next state of each (s, a) (ObjectWorld is deterministic)."""
        return self.transitions.argmax(-1)

    @property
    def state_action_reward(self) -> np.ndarray:
        """[S, A] float64, R(s, a) = sum_s' P(s' | s, a) R(s, a, s'): in a deterministic MDP the
        reward of a transition is a function of (s, a); a learned model r(s, a) compares with this."""
        return (self.transitions * self.reward).sum(-1)

    @functools.cached_property
    def reachable(self) -> np.ndarray:
        """[S] bool, states reachable from the start distribution (terminal included if reachable)."""
        seen = self.initial > 0
        frontier = seen.copy()
        while frontier.any():
            nxt = (self.transitions[frontier] > 0).any(axis=(0, 1)) & ~seen
            seen |= nxt
            frontier = nxt
        return seen

    def index_table(self, size: int) -> np.ndarray:
        """[size, size, 2^K] int32 lookup from (row, col, presence bits b = sum_k present_k 2^k)
        to the state index, -1 where (cell, mask) is not a state: state indices inside jit."""
        k = self.present.shape[1]
        table = np.full((size, size, 2 ** k), -1, np.int32)
        bits = (self.present[:-1] * (2 ** np.arange(k))).sum(-1)
        table[self.agent_pos[:-1, 0], self.agent_pos[:-1, 1], bits] = np.arange(self.num_states - 1)
        return table


def tabulate(env: ObjectWorld, params: EnvParams, max_states: int = 50_000) -> TabularMDP:
    """Enumerate the level `params` of `env` (see the module docstring).

    Raises ValueError if positions are randomised (a level must be fixed) or the state count
    would exceed `max_states`.
    """
    if bool(params.randomize_positions):
        raise ValueError("tabulate needs a fixed level: make_params(..., randomize_positions=False, agent_start=..., "
                         "obj_pos=...)")
    n, k = env.size, env.num_objects
    walls = np.asarray(params.walls)
    obj_pos = np.asarray(params.obj_pos)
    level_present = np.asarray(params.obj_present)
    free = [(r, c) for r in range(n) for c in range(n) if not walls[r, c]]
    masks = [m for m in itertools.product([False, True], repeat=k)
             if not any(m[i] and not level_present[i] for i in range(k))]  # absent objects never appear
    states = [(cell, m) for m in masks for cell in free
              if not any(m[i] and tuple(obj_pos[i]) == cell for i in range(k))]
    if len(states) + 1 > max_states:
        raise ValueError(f"the level has {len(states) + 1} states, more than max_states={max_states}")
    num_states, num_actions = len(states) + 1, env.num_actions
    terminal = num_states - 1
    index = {(cell, m): i for i, (cell, m) in enumerate(states)}

    agent = np.array([cell for cell, _ in states], np.int32)
    present = np.array([m for _, m in states], bool).reshape(len(states), k)
    batch = _states(env, params, agent, present)
    step = _grid_step(env)
    _, next_state, reward, terminated, info = step(jax.random.key(0), batch, jnp.arange(num_actions), params)
    next_pos, next_present = np.asarray(next_state.agent_pos), np.asarray(next_state.obj_present)
    reward, terminated = np.asarray(reward, np.float64), np.asarray(terminated)
    collected = np.asarray(info["collected"])

    transitions = np.zeros((num_states, num_actions, num_states))
    rewards = np.zeros((num_states, num_actions, num_states))
    features = np.zeros((num_states, num_actions, num_states, k))
    for s in range(len(states)):
        for a in range(num_actions):
            nxt = terminal if terminated[s, a] else index[(tuple(next_pos[s, a]), tuple(next_present[s, a]))]
            transitions[s, a, nxt] = 1.0
            rewards[s, a, nxt] = reward[s, a]
            if collected[s, a] >= 0:
                features[s, a, nxt, collected[s, a]] = 1.0
    transitions[terminal, :, terminal] = 1.0

    initial = np.zeros(num_states)
    start = (tuple(int(x) for x in np.asarray(params.agent_start)), tuple(bool(x) for x in level_present))
    initial[index[start]] = 1.0
    agent_all = np.concatenate([agent, [[-1, -1]]]).astype(np.int32)
    present_all = np.concatenate([present, np.zeros((1, k), bool)])
    return TabularMDP(transitions=transitions, reward=rewards, features=features, initial=initial,
                      agent_pos=agent_all, present=present_all, terminal=terminal)


@functools.lru_cache(maxsize=16)
def _grid_step(env: ObjectWorld):
    """env.step_env over [states] x [actions], jitted once per env (tabulating many levels of one
    env then compiles once)."""
    return jax.jit(jax.vmap(jax.vmap(env.step_env, in_axes=(None, None, 0, None)), in_axes=(None, 0, None, None)))


def state_batch(env: ObjectWorld, params: EnvParams, mdp: TabularMDP) -> EnvState:
    """The non-terminal states of `mdp` (a tabulation of `params`) as a batch of EnvStates
    [S - 1]: e.g. `jax.vmap(env.get_obs, (0, None))(state_batch(env, params, mdp), params)`."""
    return _states(env, params, mdp.agent_pos[:-1], mdp.present[:-1])


def _states(env: ObjectWorld, params: EnvParams, agent: np.ndarray, present: np.ndarray) -> EnvState:
    """A batch of EnvStates of the level with the given agent cells [B, 2] and presence masks [B, K]."""
    count = agent.shape[0]
    tile = lambda x: jnp.broadcast_to(jnp.asarray(x), (count, *jnp.shape(x)))
    return EnvState(agent_pos=jnp.asarray(agent, jnp.int32), obj_pos=tile(jnp.asarray(params.obj_pos, jnp.int32)),
                    obj_colour=tile(jnp.asarray(params.obj_colour, jnp.int32)),
                    obj_shape=tile(jnp.asarray(params.obj_shape, jnp.int32)),
                    obj_present=jnp.asarray(present, bool),
                    reward_table=tile(jnp.asarray(params.reward_table, jnp.float32)),
                    colour_shift=jnp.zeros((count,), jnp.int32), last_collected=jnp.full((count,), -1, jnp.int32),
                    time=jnp.zeros((count,), jnp.int32))
