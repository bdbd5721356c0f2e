"""Goal-directedness of an agent's behaviour by inverse RL, and EPIC between reward functions,
for environments that can be written as a tabular MDP.

    demos = tabular_trajectories(env, env_params, agent, key, state_index, num_envs, num_steps)
    chance = tabular_trajectories(env, env_params, random_agent(env, env_params), key, state_index, ...)
    result = irl_coherence(transitions, features, initial, demos, baseline=chance, true_reward=reward)
    epic(reward_a, reward_b, discount=0.9, transitions=transitions)

The user supplies the tabular form of their env: transitions [S, A, S] (P(s' | s, a)),
reward features [S, A, S, d] or [S, A, d], the start distribution [S], and
`state_index(step) -> []` mapping a `Step` (its `state` or `obs`) to its row in the table.
The fitting and the measures are `innerlab.irl`'s (maximum causal entropy IRL, `fit`,
`heldout_accuracy`, `reward_distance`) and `innerlab.rewards.epic_distance`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import jax.numpy as jnp
import numpy as np

from innerlab.agents.policy import Agent
from innerlab.irl import Trajectories, fit, heldout_accuracy, maxent_irl, reward_distance, split, state_visitation
from innerlab.probes.play import Step, check_step_fn, trajectories
from innerlab.rewards import epic_distance


@dataclass(frozen=True)
class _StateAction:
    """Records (state index, action) per step; hashable, so equal maps reuse the rollout's compile."""

    state_index: Callable[[Step], object]

    def __call__(self, step: Step) -> dict:
        return {"state": jnp.asarray(self.state_index(step), jnp.int32), "action": jnp.asarray(step.action, jnp.int32)}


def tabular_trajectories(env, env_params, agent: Agent, key, state_index: Callable[[Step], object], num_envs: int,
                         num_steps: int) -> Trajectories:
    """The agent's play as IRL demonstrations: `Trajectories` [num_envs, num_steps] of table rows.

    Each environment's `num_steps` steps form one row (episodes follow one another in it; the
    IRL likelihood is per step, so only the held-out split sees rows). `state_index(step)`
    gives the state's row in the user's table, or -1 for a state the table does not hold (such
    steps are masked out). Actions must be the table's action indices.
    """
    if not callable(state_index):
        raise TypeError(f"state_index must be a function of a Step returning the state's index, "
                        f"got {type(state_index).__name__}")
    record = _StateAction(state_index)
    shapes = check_step_fn(env, env_params, agent, record, key)
    if shapes["state"].shape != () or shapes["action"].shape != ():
        raise ValueError(f"state_index must return one integer per step and actions must be scalars (discrete), "
                         f"got shapes {shapes['state'].shape} and {shapes['action'].shape}")
    trace = trajectories(env, env_params, agent, key, num_envs, num_steps, record)["record"]
    states = np.asarray(trace["state"])
    return Trajectories(states=np.maximum(states, 0), actions=np.asarray(trace["action"]), mask=states >= 0)


@dataclass(frozen=True)
class Coherence:
    """Coherence measures of one behaviour (see `irl_coherence`)."""

    fit: float
    """Nats per action gained over the uniform policy by the fitted goal, on the training demos."""
    heldout_fit: float
    """The same on the held-out demos: how well the recovered goal predicts unseen behaviour."""
    heldout_accuracy: float
    """Share of held-out actions that are the fitted policy's most likely one (ties share credit)."""
    epic_to_true: float
    """EPIC distance from the recovered reward to `true_reward` (nan if none was given)."""
    baseline_heldout_fit: float
    """heldout_fit of the baseline demos (nan if none were given)."""
    baseline_heldout_accuracy: float
    """heldout_accuracy of the baseline demos (nan if none were given)."""
    theta: np.ndarray
    """[d] the recovered reward weights (identified up to shaping and scale only)."""
    reward: np.ndarray
    """[S, A, S] or [S, A] the recovered reward features . theta."""
    steps: int
    """Valid demonstrated steps."""


def _fit_and_score(transitions, features, initial, demos, discount, heldout_fraction, irl_kwargs):
    train, test = split(demos, 1.0 - heldout_fraction)
    result = maxent_irl(transitions, features, initial, train, discount, **irl_kwargs)
    return result, fit(result.policy, train), fit(result.policy, test), heldout_accuracy(result.policy, test)


def irl_coherence(transitions, features, initial, demos: Trajectories, *, discount: float = 0.9,
                  heldout_fraction: float = 0.5, baseline: Trajectories | None = None, true_reward=None,
                  irl_steps: int = 400, learning_rate: float = 0.05, l2: float = 1e-4) -> Coherence:
    """Fit maximum causal entropy IRL to `demos` and measure how coherent the behaviour is.

    A behaviour is coherent to the extent that some reward in the span of `features` makes it
    soft-optimal. The demos' rows are split: the first (1 - heldout_fraction) train the IRL,
    the rest measure it. `heldout_fit` near 0 says the best goal in the feature class predicts
    the agent no better than acting uniformly at random; up to log A, that a goal explains it
    fully. Read it against `baseline` (e.g. `tabular_trajectories` of `random_agent`: the same
    measure on goal-less behaviour, whose held-out fit is about 0 or below).

    Args:
        transitions: [S, A, S] P(s' | s, a).
        features: [S, A, S, d] or [S, A, d] reward features phi.
        initial: [S] start distribution.
        demos: the agent's `Trajectories` (from `tabular_trajectories`, or recorded otherwise).
        discount: the IRL's discount, in [0, 1).
        heldout_fraction: share of the rows held out, in (0, 1).
        baseline: other demos measured the same way (nan fields if None).
        true_reward: [S, A, S] or [S, A], the reward the agent was meant to pursue; gives
            `epic_to_true`, compared on the states the demos visit.
        irl_steps, learning_rate, l2: `innerlab.irl.maxent_irl`'s optimiser settings.
    """
    if not isinstance(demos, Trajectories):
        raise TypeError(f"demos must be innerlab.irl.Trajectories (see tabular_trajectories), "
                        f"got {type(demos).__name__}")
    if baseline is not None and not isinstance(baseline, Trajectories):
        raise TypeError(f"baseline must be innerlab.irl.Trajectories or None, got {type(baseline).__name__}")
    if not 0.0 < heldout_fraction < 1.0:
        raise ValueError(f"heldout_fraction must be in (0, 1), got {heldout_fraction}")
    irl_kwargs = dict(steps=irl_steps, learning_rate=learning_rate, l2=l2)
    result, train_fit, test_fit, accuracy = _fit_and_score(transitions, features, initial, demos, discount,
                                                           heldout_fraction, irl_kwargs)
    reward = np.asarray(result.reward, np.float64)
    epic_to_true = np.nan
    if true_reward is not None:
        num_states = np.shape(transitions)[0]
        epic_to_true = reward_distance(reward, true_reward, transitions, discount,
                                       state_dist=state_visitation(demos, num_states))
    base_fit = base_accuracy = np.nan
    if baseline is not None:
        _, _, base_fit, base_accuracy = _fit_and_score(transitions, features, initial, baseline, discount,
                                                       heldout_fraction, irl_kwargs)
    return Coherence(fit=train_fit, heldout_fit=test_fit, heldout_accuracy=accuracy, epic_to_true=float(epic_to_true),
                     baseline_heldout_fit=float(base_fit), baseline_heldout_accuracy=float(base_accuracy),
                     theta=np.asarray(result.theta, np.float64), reward=reward,
                     steps=int(np.asarray(demos.mask).sum()))


# -- EPIC ---------------------------------------------------------------------------------------

def _reward_table(reward, name: str, num_states: int, num_actions: int) -> np.ndarray:
    """reward as [S, A, S] float64: an array [S, A, S] or [S, A] (the same for every s'), or a
    function reward(s, a, s_next) of broadcastable index arrays."""
    shape = (num_states, num_actions, num_states)
    if callable(reward):
        s, a, s_next = np.ix_(np.arange(num_states), np.arange(num_actions), np.arange(num_states))
        values = np.asarray(reward(s, a, s_next), np.float64)
        try:
            return np.broadcast_to(values, shape)
        except ValueError:
            raise ValueError(f"{name}(s, a, s_next) on index arrays of shapes {s.shape}, {a.shape}, {s_next.shape} "
                             f"must broadcast to {shape}, got {values.shape}") from None
    values = np.asarray(reward, np.float64)
    if values.shape == shape[:2]:
        return np.broadcast_to(values[:, :, None], shape)
    if values.shape != shape:
        raise ValueError(f"{name} must have shape {shape} or {shape[:2]} (or be a function), got {values.shape}")
    return values


def _table_size(reward_a, reward_b, transitions, num_states, num_actions) -> tuple[int, int]:
    """(S, A) from the first of transitions, the array rewards and num_states/num_actions that gives them."""
    for what, value in (("transitions", transitions), ("reward_a", reward_a), ("reward_b", reward_b)):
        if value is not None and not callable(value):
            shape = np.shape(value)
            if len(shape) not in (2, 3):
                raise ValueError(f"{what} must have shape [S, A, S]" + ("" if what == "transitions" else
                                                                       " or [S, A]") + f", got {shape}")
            return shape[0], shape[1]
    if num_states is None or num_actions is None:
        raise ValueError("with both rewards given as functions, pass num_states and num_actions "
                         "(or transitions) to say which table to evaluate them on")
    return int(num_states), int(num_actions)


def epic(reward_a, reward_b, *, discount: float, transitions=None, state_dist=None, num_states: int | None = None,
         num_actions: int | None = None) -> float:
    """EPIC distance between two reward functions of one tabular space (Gleave et al. 2021).

    Each reward is an array [S, A, S] (R(s, a, s')) or [S, A], or a function
    `reward(s, a, s_next)` of integer index arrays that broadcast against each other (numpy or
    jax element-wise code, or a table lookup); functions need the table's size from
    `transitions` or `num_states`/`num_actions` unless the other reward is an array.

    With `transitions` [S, A, S] the rewards are compared on the transitions the MDP can make
    from `state_dist` (`innerlab.irl.reward_distance`); without, on every (s, a, s') with
    s, s' ~ state_dist and a uniform (`innerlab.rewards.epic_distance`). state_dist [S]
    defaults to uniform.

    0: the rewards order every policy the same way (equal up to potential shaping and positive
    rescaling); up to 1: opposite; nan if either reward is constant after canonicalisation.
    """
    if not 0.0 <= discount <= 1.0:
        raise ValueError(f"discount must be in [0, 1], got {discount}")
    size = _table_size(reward_a, reward_b, transitions, num_states, num_actions)
    if (num_states is not None and num_states != size[0]) or (num_actions is not None and num_actions != size[1]):
        raise ValueError(f"num_states, num_actions = {num_states}, {num_actions} disagree with the arrays' {size}")
    table_a = _reward_table(reward_a, "reward_a", *size)
    table_b = _reward_table(reward_b, "reward_b", *size)
    if transitions is not None:
        return reward_distance(table_a, table_b, transitions, discount, state_dist=state_dist)
    return epic_distance(table_a, table_b, discount, state_dist=state_dist)
