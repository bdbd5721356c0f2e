"""Maximum causal entropy inverse RL on a tabular MDP with a reward linear in features
(Ziebart, Bagnell and Dey 2010, "Modeling Interaction via the Principle of Maximum Causal
Entropy", ICML 2010).

    soft = soft_value_iteration(transitions, reward, discount, iterations)   # soft-optimal policy
    demos = sample_trajectories(key, transitions, soft.policy, initial, horizon, num, terminal=t)
    result = maxent_irl(transitions, features, initial, demos, discount)     # theta, reward, policy

Shapes: S states, A actions, d features, N trajectories, T steps. The demonstrator is modelled
as Boltzmann-rational in the soft (maximum-entropy) sense: it acts with
pi(a | s) = exp(Q(s, a) - V(s)) where Q and V solve the discounted soft Bellman equations of
R_theta = features . theta. Maximising the causal entropy of the policy subject to matching
the demonstrations' discounted feature expectations has as its Lagrange dual maximising the
(discount-weighted) log-likelihood of the demonstrated actions under that policy; `maxent_irl`
maximises their log-likelihood, every step weighted equally, by gradient ascent,
differentiating through a fixed number of soft value iterations.

Everything here is pure JAX: jittable, differentiable and vmappable (over seeds, demonstration
batches or hyper-parameters).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct


@struct.dataclass
class SoftPolicy:
    """The solution of the discounted soft Bellman equations (see `soft_value_iteration`)."""

    q: jax.Array
    """[S, A] soft action values Q(s, a)."""
    v: jax.Array
    """[S] soft state values V(s) = logsumexp_a Q(s, a)."""
    policy: jax.Array
    """[S, A] pi(a | s) = exp(Q(s, a) - V(s)); each row sums to 1."""


@struct.dataclass
class Trajectories:
    """A batch of state-action sequences; `mask` marks the steps that count as demonstrations."""

    states: jax.Array
    """[N, T] int32, s_t."""
    actions: jax.Array
    """[N, T] int32, a_t, taken in s_t."""
    mask: jax.Array
    """[N, T] bool, False for steps that are not demonstrations (taken from an absorbing terminal state)."""

    @property
    def num_trajectories(self) -> int:
        return self.states.shape[0]

    @property
    def horizon(self) -> int:
        return self.states.shape[1]

    def num_steps(self) -> jax.Array:
        """[] int, the number of valid (unmasked) steps."""
        return self.mask.sum()


@struct.dataclass
class IRLResult:
    """What `maxent_irl` recovers."""

    theta: jax.Array
    """[d] reward weights."""
    reward: jax.Array
    """[S, A, S] (or [S, A] for [S, A, d] features) R_theta = features . theta."""
    policy: jax.Array
    """[S, A] the soft-optimal policy of R_theta (the fitted model of the demonstrator)."""
    log_likelihood: jax.Array
    """[] mean log pi(a_t | s_t) per valid demonstrated action under `policy` (nats, no l2 term)."""
    history: jax.Array
    """[steps] the mean log-likelihood per action before each optimisation step (a learning curve)."""


# ----------------------------------------------------------------------------- soft planning


def expected_reward(transitions: jax.Array, reward: jax.Array) -> jax.Array:
    """r(s, a) [S, A] = sum_s' P(s' | s, a) R(s, a, s') for reward [S, A, S]; [S, A] passes through."""
    if reward.ndim == 3:
        return jnp.einsum("sat,sat->sa", transitions, reward)
    return reward


def soft_q(transitions: jax.Array, reward_sa: jax.Array, discount, value: jax.Array) -> jax.Array:
    """One soft Bellman backup: Q [S, A] = r(s, a) + discount sum_s' P(s' | s, a) V(s')."""
    return reward_sa + discount * (transitions @ value)


@functools.partial(jax.jit, static_argnames="iterations")
def soft_value_iteration(transitions: jax.Array, reward: jax.Array, discount, iterations: int) -> SoftPolicy:
    """Discounted, stationary soft value iteration from V = 0 for a fixed number of sweeps.

        Q(s, a) = sum_s' P(s' | s, a) [R(s, a, s') + discount V(s')]
        V(s)    = log sum_a exp Q(s, a)
        pi(a|s) = exp(Q(s, a) - V(s))

    The backup is a discount-contraction, so after k sweeps the error in V is at most
    discount^k times the first one's (use k >> 1 / (1 - discount)); a fixed count rather than a
    tolerance keeps the function differentiable and vmappable. `transitions` [S, A, S];
    `reward` [S, A, S] or [S, A]; `discount` a scalar in [0, 1) (may be traced); `iterations`
    static. Returns the Q, V and pi of the last sweep.
    """
    reward_sa = expected_reward(transitions, reward)

    def sweep(value, _):
        return jax.nn.logsumexp(soft_q(transitions, reward_sa, discount, value), axis=-1), None

    value, _ = jax.lax.scan(sweep, jnp.zeros(transitions.shape[0], reward_sa.dtype), None, length=iterations)
    q = soft_q(transitions, reward_sa, discount, value)
    return SoftPolicy(q=q, v=jax.nn.logsumexp(q, axis=-1), policy=jax.nn.softmax(q, axis=-1))


# ----------------------------------------------------------------------------- demonstrations


@functools.partial(jax.jit, static_argnames=("horizon", "num"))
def _sample(key, transitions, policy, initial, terminal, horizon: int, num: int) -> Trajectories:
    keys = jax.random.split(key, num)
    states, actions = jax.vmap(_rollout, in_axes=(0, None, None, None, None))(keys, transitions, policy, initial,
                                                                                horizon)
    return Trajectories(states=states, actions=actions, mask=states != terminal)


def _rollout(key, transitions, policy, initial, horizon: int) -> tuple[jax.Array, jax.Array]:
    """One trajectory: states [T] and actions [T] (log(0) = -inf is a valid categorical logit)."""
    start_key, step_key = jax.random.split(key)
    start = jax.random.categorical(start_key, jnp.log(initial)).astype(jnp.int32)

    def step(state, step_key):
        action_key, next_key = jax.random.split(step_key)
        action = jax.random.categorical(action_key, jnp.log(policy[state])).astype(jnp.int32)
        next_state = jax.random.categorical(next_key, jnp.log(transitions[state, action])).astype(jnp.int32)
        return next_state, (state, action)

    _, (states, actions) = jax.lax.scan(step, start, jax.random.split(step_key, horizon))
    return states, actions


def sample_trajectories(key, transitions, policy, initial, horizon: int, num: int,
                        terminal: int | None = None) -> Trajectories:
    """`num` trajectories of `horizon` steps of `policy` [S, A] in `transitions` [S, A, S] from
    s_0 ~ `initial` [S]. Steps taken from the absorbing state `terminal` (if given) are masked
    out: an episode that has ended demonstrates nothing. Pure JAX; `horizon` and `num` are
    static, everything else may be traced.
    """
    # -1 matches no state, so "no terminal" is the same traced computation as a terminal index.
    terminal = -1 if terminal is None else terminal
    return _sample(key, jnp.asarray(transitions), jnp.asarray(policy), jnp.asarray(initial),
                   jnp.asarray(terminal, jnp.int32), horizon, num)


# ----------------------------------------------------------------------------- inverse RL


def log_likelihood(policy: jax.Array, trajectories: Trajectories) -> jax.Array:
    """[] mean log pi(a_t | s_t) over the valid steps of `trajectories` for `policy` [S, A] (nan if none)."""
    return _mean_log_prob(jnp.log(policy), trajectories)


def _mean_log_prob(log_policy: jax.Array, trajectories: Trajectories) -> jax.Array:
    log_pi = log_policy[trajectories.states, trajectories.actions]
    valid = trajectories.mask
    # where, not multiply: a masked step may have log pi = -inf, and 0 * -inf is nan.
    return jnp.where(valid, log_pi, 0.0).sum() / valid.sum()


def _objective(theta, features_sa, transitions, trajectories, discount, l2, iterations: int):
    """Negative of (mean log-likelihood of the demonstrated actions - l2 |theta|^2), and the likelihood."""
    soft = soft_value_iteration(transitions, features_sa @ theta, discount, iterations)
    # log pi = Q - V directly: log(softmax) underflows to -inf (and a nan gradient) for sharp policies.
    fit = _mean_log_prob(soft.q - soft.v[:, None], trajectories)
    return -(fit - l2 * theta @ theta), fit


@functools.partial(jax.jit, static_argnames=("steps", "iterations"))
def _maxent_irl(transitions, features, trajectories, discount, learning_rate, l2, steps: int,
                iterations: int) -> IRLResult:
    """The jitted core of `maxent_irl`: adam on theta for `steps` steps, one lax.scan."""
    # The likelihood depends on R only through r(s, a) = E_s'[R(s, a, s')], so the soft
    # backups use expected features [S, A, d]: one einsum here instead of one per sweep.
    features_sa = jnp.einsum("sat,satk->sak", transitions, features) if features.ndim == 4 else features
    optimiser = optax.adam(learning_rate)
    theta = jnp.zeros(features.shape[-1], features_sa.dtype)
    grad_fn = jax.value_and_grad(_objective, has_aux=True)

    def update(carry, _):
        theta, opt_state = carry
        (_, fit), grad = grad_fn(theta, features_sa, transitions, trajectories, discount, l2, iterations)
        updates, opt_state = optimiser.update(grad, opt_state, theta)
        return (optax.apply_updates(theta, updates), opt_state), fit

    (theta, _), history = jax.lax.scan(update, (theta, optimiser.init(theta)), None, length=steps)
    soft = soft_value_iteration(transitions, features_sa @ theta, discount, iterations)
    return IRLResult(theta=theta, reward=features @ theta, policy=soft.policy,
                     log_likelihood=_mean_log_prob(soft.q - soft.v[:, None], trajectories), history=history)


def maxent_irl(transitions, features, initial, trajectories: Trajectories, discount, *, steps: int = 400,
               learning_rate=0.05, l2=1e-4, iterations: int = 150) -> IRLResult:
    """Maximum causal entropy IRL: the theta whose soft-optimal policy best explains the demos.

        theta* = argmax_theta  mean_{valid t} log pi_theta(a_t | s_t) - l2 |theta|^2
        pi_theta = softmax Q_theta,  Q_theta from `soft_value_iteration` of R_theta = features . theta

    the likelihood form of maximum causal entropy IRL (its Lagrange dual, up to weighting the
    steps of a trajectory equally rather than by discount^t; both are consistent for a
    demonstrator that is soft-optimal for some theta). Solved by `steps` steps of adam from
    theta = 0 (the uniform policy), differentiating through `iterations` soft Bellman sweeps.

    Args:
        transitions: [S, A, S] P(s' | s, a).
        features: [S, A, S, d] phi(s, a, s') or [S, A, d] phi(s, a).
        initial: [S] start distribution. The likelihood of a trajectory factors into
            initial(s_0) prod P(s_t+1 | s_t, a_t) prod pi(a_t | s_t), and only the last factor
            depends on theta, so `initial` is validated but does not enter the fit.
        trajectories: the demonstrations (`Trajectories`, [N, T]); masked steps are ignored.
        discount: in [0, 1).
        steps: adam steps (the defaults converge in ~100-200 on small MDPs; `history` shows it).
        learning_rate: adam step size (may be traced, e.g. vmapped over).
        l2: weight of |theta|^2 (may be traced); it keeps theta finite when the demonstrations
            are nearly deterministic. It is weighed against the *mean* log-likelihood per
            action, so a feature that matters at few demonstrated steps (an object the agent
            rarely comes near) is shrunk most: on a small ObjectWorld level l2 = 1e-3 already
            shrinks such a weight by a third, hence the default 1e-4.
        iterations: soft value iteration sweeps (use iterations >> 1 / (1 - discount)).

    The recovered reward is identified only up to potential shaping and positive scale (and
    only within the span of the features): a shaped reward explains the demonstrations as
    well, and its scale is pinned only by the assumed Boltzmann temperature of 1. Compare it with the truth by EPIC (`innerlab.irl.reward_distance`),
    which is invariant to exactly those changes, not by comparing theta entrywise.

    Validation (shapes, probabilities, discount, non-empty demonstrations) runs in Python
    before the jitted core; value checks are skipped for traced arguments, so the function
    can be vmapped over demonstration batches, seeds or hyper-parameters (an all-masked batch
    under vmap gives nan).

    Raises:
        ValueError: on inconsistent shapes, transition rows or `initial` that are not
            distributions, a discount outside [0, 1), a negative l2, or no valid step.
    """
    transitions, features, initial = jnp.asarray(transitions), jnp.asarray(features), jnp.asarray(initial)
    _check_inputs(transitions, features, initial, trajectories, discount, l2, steps, iterations)
    return _maxent_irl(transitions, features, trajectories, discount, learning_rate, l2, steps, iterations)


def _concrete(*values) -> bool:
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(values))


def _check_inputs(transitions, features, initial, trajectories, discount, l2, steps, iterations) -> None:
    if transitions.ndim != 3 or transitions.shape[0] != transitions.shape[2]:
        raise ValueError(f"transitions must have shape [S, A, S], got {transitions.shape}")
    num_states, num_actions, _ = transitions.shape
    if features.shape[:-1] not in (transitions.shape, transitions.shape[:2]) or features.ndim not in (3, 4):
        raise ValueError(f"features must have shape [S, A, S, d] or [S, A, d] with (S, A) = "
                         f"{(num_states, num_actions)}, got {features.shape}")
    if features.shape[-1] < 1:
        raise ValueError("features must have at least one feature (d >= 1)")
    if initial.shape != (num_states,):
        raise ValueError(f"initial must have shape ({num_states},), got {initial.shape}")
    shapes = {jnp.shape(trajectories.states), jnp.shape(trajectories.actions), jnp.shape(trajectories.mask)}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"trajectories.states, actions and mask must share one shape [N, T], got {shapes}")
    if steps < 1 or iterations < 1:
        raise ValueError(f"steps and iterations must be >= 1, got {steps} and {iterations}")
    if _concrete(transitions):
        p = np.asarray(transitions, np.float64)
        if (p < 0).any() or not np.allclose(p.sum(-1), 1.0, atol=1e-5):
            raise ValueError("transitions must be probabilities: non-negative, each [s, a] row summing to 1")
    if _concrete(initial):
        p = np.asarray(initial, np.float64)
        if (p < 0).any() or not np.isclose(p.sum(), 1.0, atol=1e-5):
            raise ValueError(f"initial must be a distribution over the {num_states} states")
    if _concrete(features) and not np.isfinite(np.asarray(features)).all():
        raise ValueError("features has non-finite values")
    if _concrete(discount) and not 0.0 <= float(discount) < 1.0:
        raise ValueError(f"discount must be in [0, 1) (the soft values diverge at 1), got {discount}")
    if _concrete(l2) and float(l2) < 0.0:
        raise ValueError(f"l2 must be >= 0, got {l2}")
    if _concrete(trajectories):
        states, actions = np.asarray(trajectories.states), np.asarray(trajectories.actions)
        mask = np.asarray(trajectories.mask, bool)
        if not mask.any():
            raise ValueError("trajectories have no valid (unmasked) step to learn from")
        if (states[mask] < 0).any() or (states[mask] >= num_states).any():
            raise ValueError(f"trajectories.states must lie in [0, {num_states})")
        if (actions[mask] < 0).any() or (actions[mask] >= num_actions).any():
            raise ValueError(f"trajectories.actions must lie in [0, {num_actions})")
