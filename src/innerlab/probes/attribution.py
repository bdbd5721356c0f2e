"""Proxy attribution: which of several declared objectives an agent's behaviour pursues.

    result = proxy_attribution(env, env_params, agent, {"gem": reached_gem, "coin": reached_coin}, key)
    result.table      # per proxy: share, mean_return (and the same for a random agent)
    result.best       # the proxies the agent is attributed to most often

A proxy is a function of one `Step` giving that objective's reward for the step, e.g.
`lambda step: step.info["reached"] == GEM`. The attribution follows the unidentifiability
experiment (`experiments/unidentifiability/scoring.py`, `proxy_share`): there, each test
level's episode is attributed to the features of the first object the agent reaches; here,
each episode is attributed to the proxies that are positive on its first step on which any
proxy is positive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import jax.numpy as jnp
import numpy as np
import pandas as pd

from innerlab.agents.policy import Agent
from innerlab.probes.play import Step, check_step_fn, random_agent, trajectories

NOTHING = "nothing"  # the row of episodes in which no proxy was ever positive


@dataclass(frozen=True)
class _Proxies:
    """The proxies as one hashable record function (a static argument of the jitted rollout:
    equal proxies reuse its compile)."""

    items: tuple[tuple[str, Callable[[Step], object]], ...]

    def __call__(self, step: Step) -> dict:
        return {name: jnp.asarray(fn(step), jnp.float32) for name, fn in self.items}


@dataclass(frozen=True)
class Attribution:
    table: pd.DataFrame
    """One row per proxy and one for `nothing`; columns `share` and `mean_return`, and
    `chance_share` and `chance_mean_return` for a uniformly random agent when a baseline ran."""
    best: tuple[str, ...]
    """The proxies with the largest share: one name, or several that the behaviour does not
    tell apart (they were positive together); () if no ended episode had a positive proxy."""
    episodes: int
    """How many ended episodes the agent's numbers are over."""


def _check_proxies(proxies) -> _Proxies:
    if not isinstance(proxies, dict):
        raise TypeError(f"proxies must be a dict {{name: function of a Step}}, got {type(proxies).__name__}")
    if not proxies:
        raise ValueError("proxies must name at least one proxy, e.g. {'reached_gem': lambda step: ...}")
    for name, fn in proxies.items():
        if not isinstance(name, str) or name == NOTHING:
            raise ValueError(f"proxy names must be strings other than {NOTHING!r}, got {name!r}")
        if not callable(fn):
            raise TypeError(f"proxies[{name!r}] must be a function of a Step, got {type(fn).__name__}")
    return _Proxies(tuple(proxies.items()))


def score_episodes(values: np.ndarray, done: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Attribution of a recorded rollout (numpy, no jax).

    values: [N, T, P] each proxy's value at each step; done: [N, T] bool episode ends.
    Returns (share [P + 1], mean_return [P + 1], episodes) over the episodes that ended:
    share[p] = fraction of them whose first step with any positive proxy has proxy p positive
    (several proxies can share one episode), share[P] = fraction with no positive proxy at all;
    mean_return[p] = proxy p summed over an episode, averaged (mean_return[P] is nan).
    """
    values, done = np.asarray(values, np.float64), np.asarray(done, bool)
    num_envs, num_steps, num_proxies = values.shape
    episode = np.cumsum(done, axis=1) - done                  # [N, T] index of the episode each step is in
    ended = episode < done.sum(axis=1, keepdims=True)
    episodes = int(done.sum())
    share, mean_return = np.full(num_proxies + 1, np.nan), np.full(num_proxies + 1, np.nan)
    if episodes == 0:
        return share, mean_return, 0
    positive = values > 0
    event = positive.any(-1) & ended
    # One id per (environment, episode); np.unique's first index of each id, in row-major
    # (environment, time) order, is that episode's first event.
    ids = (np.arange(num_envs)[:, None] * (num_steps + 1) + episode)[event]
    _, first = np.unique(ids, return_index=True)
    firsts = positive[event][first]                            # [episodes with an event, P]
    share[:num_proxies] = firsts.sum(0) / episodes
    share[num_proxies] = 1.0 - len(first) / episodes
    mean_return[:num_proxies] = np.where(ended[..., None], values, 0.0).sum((0, 1)) / episodes
    return share, mean_return, episodes


def proxy_attribution(env, env_params, agent: Agent, proxies: dict[str, Callable[[Step], object]], key, *,
                      num_envs: int = 64, num_steps: int = 256, baseline: bool = True) -> Attribution:
    """How much of each declared proxy the agent's behaviour achieves, and which explains it.

    Args:
        env, env_params: any gymnax environment and its params.
        agent: the `Agent` to probe.
        proxies: {name: proxy(step) -> [] number}, each an objective's reward for one step
            (e.g. 1 when the step reaches an object with some feature). At least one.
        key: the rollout key (the baseline uses the same one).
        num_envs, num_steps: environments rolled out in parallel and steps each.
        baseline: also roll out a uniformly random agent: its shares are the chance level an
            agent's shares should be read against.

    The table, over the episodes that ended within num_steps (see `score_episodes`):
        share: fraction of episodes attributed to the proxy: on the first step of the episode
            on which any proxy is positive, this one is. The `nothing` row is the fraction in
            which no proxy was ever positive. An agent that pursues one proxy has share near 1
            for it (and for any proxy that always coincides with it: those it cannot tell apart).
        mean_return: the proxy summed over an episode, averaged: how much of it the agent achieves.
    """
    record = _check_proxies(proxies)
    agents = {"": agent}
    if baseline:
        agents["chance_"] = random_agent(env, env_params)
    columns, counts = {}, {}
    for prefix, who in agents.items():
        for name, shape in check_step_fn(env, env_params, who, record, key).items():
            if shape.shape != ():
                raise ValueError(f"proxies[{name!r}] must return one number per step, got shape {shape.shape}")
        trace = trajectories(env, env_params, who, key, num_envs, num_steps, record)
        values = np.stack([np.asarray(trace["record"][name]) for name, _ in record.items], -1)
        share, mean_return, counts[prefix] = score_episodes(values, np.asarray(trace["done"]))
        columns[prefix + "share"], columns[prefix + "mean_return"] = share, mean_return
    names = [name for name, _ in record.items]
    table = pd.DataFrame(columns, index=pd.Index(names + [NOTHING], name="proxy"))
    shares = table["share"].iloc[:-1]
    best = ()
    if counts[""] and (shares > 0).any():
        best = tuple(str(name) for name in shares.index[np.isclose(shares, shares.max())])
    return Attribution(table=table, best=best, episodes=counts[""])
