"""Roll any agent out in any gymnax environment: the one jitted loop every probe is built on.

    trace = trajectories(env, env_params, agent, key, num_envs, num_steps, record)
    means = rollout(env, env_params, agent, key, num_envs, num_steps, step_stats)

`env` is a gymnax `Environment` (gymnax 1.0 `step`: auto-reset, terminated apart from
truncated); `agent` an `innerlab.agents.policy.Agent`. Each of `num_envs` environments plays
`num_steps` steps (one `lax.scan`, vmapped over the environments); the agent's carry goes back
to `agent.initial_carry` whenever an episode ends, so every episode starts from it.

What a probe looks at is a function of one `Step` (unbatched; the probes vmap it):
`record(step) -> pytree of arrays` for `trajectories`, `step_stats(step) -> {name: []}` for
`rollout`, and the proxies and swap rewards of the other probes. Pass the same function
object to repeated calls: it is a static argument of the jitted loop, so a new lambda each
call compiles again.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import spaces

from innerlab.agents.policy import Agent


@struct.dataclass
class Step:
    """One environment step as the probes see it (one environment, no batch axis)."""

    obs: Any
    """The observation the agent acted on."""
    state: Any
    """The environment state the action was taken in."""
    action: jax.Array
    """The action taken."""
    reward: jax.Array
    """[] the (true) reward the step returned."""
    terminated: jax.Array
    """[] bool, the episode ended in a terminal state."""
    truncated: jax.Array
    """[] bool, the episode hit its time limit."""
    info: dict
    """The step's `info`: what happened (events, objects reached). gymnax adds `terminated`,
    `truncated` and `final_observation`. The next state is not given: after the last step of an
    episode it is already the next episode's first, so events belong in `info`."""


def check_positive(**values: int) -> None:
    """ValueError naming the first argument that is not a positive int."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")


def check_agent(agent) -> None:
    if not isinstance(agent, Agent):
        raise TypeError(f"agent must be an innerlab.agents.policy.Agent(policy, params, initial_carry), "
                        f"got {type(agent).__name__}")
    if not callable(agent.policy):
        raise TypeError(f"agent.policy must be callable as policy(params, obs, carry, key) -> (action, carry), "
                        f"got {type(agent.policy).__name__}")


def check_env(env) -> None:
    if not (callable(getattr(env, "reset", None)) and callable(getattr(env, "step", None))):
        raise TypeError(f"env must be a gymnax Environment (reset(key, params), step(key, state, action, params)), "
                        f"got {type(env).__name__}")


def _reset_where(done, initial, carry):
    return jax.tree.map(lambda init, c: jnp.where(done, init, c), initial, carry)


def _play(env, policy, record, num_steps: int, agent_params, initial_carry, env_params, key):
    """One environment for `num_steps` steps: {"record": record(step) [T, ...], "done": [T]}."""
    k_reset, k_steps = jax.random.split(key)
    obs, state = env.reset(k_reset, env_params)

    def body(loop, step_key):
        obs, state, carry = loop
        k_act, k_env = jax.random.split(step_key)
        action, carry = policy(agent_params, obs, carry, k_act)
        next_obs, next_state, reward, terminated, truncated, info = env.step(k_env, state, action, env_params)
        step = Step(obs, state, action, reward, terminated, truncated, info)
        done = jnp.logical_or(terminated, truncated)
        return (next_obs, next_state, _reset_where(done, initial_carry, carry)), {"record": record(step), "done": done}

    _, trace = jax.lax.scan(body, (obs, state, initial_carry), jax.random.split(k_steps, num_steps))
    return trace


@functools.partial(jax.jit, static_argnames=("env", "policy", "record", "num_envs", "num_steps"))
def _trace(env, policy, record, num_envs: int, num_steps: int, agent_params, initial_carry, env_params, key):
    play = functools.partial(_play, env, policy, record, num_steps)
    keys = jax.random.split(key, num_envs)
    return jax.vmap(play, in_axes=(None, None, None, 0))(agent_params, initial_carry, env_params, keys)


def check_step_fn(env, env_params, agent, fn, key) -> Any:
    """The output shapes of `fn(step)` on this env and agent, found by tracing one step
    abstractly (nothing runs); turns a carry the policy does not return as it received it into
    a clear error instead of a lax.scan traceback."""
    check_env(env)
    check_agent(agent)
    obs, state = jax.eval_shape(env.reset, key, env_params)
    try:
        action, carry = jax.eval_shape(agent.policy, agent.params, obs, agent.initial_carry, key)
    except (TypeError, ValueError) as error:
        raise TypeError(f"agent.policy(params, obs, carry, key) must return (action, carry); calling it on the "
                        f"env's observation {obs} failed: {error}") from error
    want = jax.tree.map(lambda x: (jnp.shape(x), jnp.result_type(x)), agent.initial_carry)
    got = jax.tree.map(lambda x: (x.shape, x.dtype), carry)
    if jax.tree.structure(want) != jax.tree.structure(got) or jax.tree.leaves(want) != jax.tree.leaves(got):
        raise TypeError(f"agent.policy returned a carry {got} that does not match agent.initial_carry {want} "
                        f"(same structure, shapes and dtypes are needed to thread it from step to step)")
    outputs = jax.eval_shape(env.step, key, state, action, env_params)
    return jax.eval_shape(fn, Step(obs, state, action, *outputs[2:5], outputs[5]))


def trajectories(env, env_params, agent: Agent, key, num_envs: int, num_steps: int,
                 record: Callable[[Step], Any]) -> dict[str, Any]:
    """Play `agent` in `num_envs` environments for `num_steps` steps each and record every step.

    Returns {"record": record(step) with leaves [N, T, ...], "done": [N, T] bool} (JAX arrays;
    N = num_envs, T = num_steps). `done[n, t]` marks the last step of an episode; the step after
    it is the next episode's first (the env auto-resets, the carry is reset).
    """
    check_env(env)
    check_agent(agent)
    check_positive(num_envs=num_envs, num_steps=num_steps)
    if not callable(record):
        raise TypeError(f"record must be a function of a Step, got {type(record).__name__}")
    check_step_fn(env, env_params, agent, record, key)
    return _trace(env, agent.policy, record, int(num_envs), int(num_steps), agent.params, agent.initial_carry,
                  env_params, key)


def ended_mask(done) -> jax.Array:
    """[N, T] bool: the step belongs to an episode that ended within the trace (a done at or after it)."""
    return jnp.flip(jnp.cumsum(jnp.flip(done, axis=-1), axis=-1), axis=-1) > 0


@functools.partial(jax.jit, static_argnames=("env", "policy", "step_stats", "num_envs", "num_steps"))
def _rollout(env, policy, step_stats, num_envs: int, num_steps: int, agent_params, initial_carry, env_params, key):
    trace = _trace(env, policy, step_stats, num_envs, num_steps, agent_params, initial_carry, env_params, key)
    ended = ended_mask(trace["done"])
    episodes = trace["done"].sum()
    means = {name: jnp.where(ended, value, 0.0).sum() / episodes for name, value in trace["record"].items()}
    return means, episodes


def rollout(env, env_params, agent: Agent, key, num_envs: int, num_steps: int,
            step_stats: Callable[[Step], dict]) -> dict[str, float]:
    """Per-episode means of the statistics `step_stats(step) -> {name: [] number}`.

    Each statistic is summed within an episode and averaged over the episodes that ended within
    `num_steps` (those still running at the end are not counted; nan if none ended), as
    `innerlab.agents.evaluate` does for a network. The result also has `episodes`, the number
    of episodes averaged over.
    """
    check_env(env)
    check_agent(agent)
    check_positive(num_envs=num_envs, num_steps=num_steps)
    if not callable(step_stats):
        raise TypeError(f"step_stats must be a function of a Step returning {{name: number}}, "
                        f"got {type(step_stats).__name__}")
    check_scalars(check_step_fn(env, env_params, agent, step_stats, key), "step_stats", reserved=("episodes",))
    means, episodes = _rollout(env, agent.policy, step_stats, int(num_envs), int(num_steps), agent.params,
                               agent.initial_carry, env_params, key)
    out = {name: float(value) for name, value in means.items()}
    out["episodes"] = float(episodes)
    return out


def check_scalars(shapes, what: str, reserved: tuple[str, ...] = ()) -> None:
    """ValueError unless `shapes` (the eval_shape of `what`'s output) is a non-empty dict of scalars."""
    if not isinstance(shapes, dict) or not shapes:
        raise ValueError(f"{what} must return a non-empty dict {{name: [] number}}, got {shapes}")
    for name, shape in shapes.items():
        if not isinstance(name, str) or name in reserved or getattr(shape, "shape", None) != ():
            raise ValueError(f"{what} must return {{name: [] number}} with string names"
                             + (f" other than {reserved}" if reserved else "")
                             + f"; got {name!r}: {shape}")


def _uniform_discrete(num_actions, obs, carry, key):
    return jax.random.randint(key, (), 0, num_actions), carry


def random_agent(env, env_params) -> Agent:
    """An agent acting uniformly at random in `env`'s action space (the chance baseline)."""
    check_env(env)
    space = env.action_space(env_params)
    if isinstance(space, spaces.Discrete):
        # The action count is a parameter, not a closure: one policy function for every
        # discrete space, so repeated calls reuse their compiles.
        return Agent(_uniform_discrete, jnp.int32(space.n))
    # Other spaces sample themselves: a new closure per call, so each call compiles anew.
    return Agent(lambda params, obs, carry, key: (space.sample(key), carry))
