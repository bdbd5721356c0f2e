"""An agent as the probes see it: a policy function, its parameters and its starting carry.

    agent = Agent(policy, params, initial_carry)
    action, carry = agent.policy(agent.params, obs, carry, key)     # ONE environment, unbatched

Any agent fits: a network trained by innerlab (`network_agent`, or `innerlab.load_agent`), or a
user's own function (a hand-written rule, a flax or equinox model, a tabular policy). The carry
is whatever the policy threads from step to step (a recurrent state, a context buffer; None for
a memoryless policy). Whoever rolls the agent out puts `initial_carry` back at the start of
every episode, so a policy never needs to know where episodes begin.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp

# policy(params, obs, carry, key) -> (action, carry), for one environment (vmapped by callers).
PolicyFn = Callable[[Any, jax.Array, Any, jax.Array], tuple[jax.Array, Any]]


@dataclass(frozen=True)
class Agent:
    """A policy function with its parameters and the carry it starts each episode with."""

    policy: PolicyFn
    params: Any = None
    initial_carry: Any = None

    def act(self, obs, carry, key):
        """`policy(params, obs, carry, key)`."""
        return self.policy(self.params, obs, carry, key)


@functools.lru_cache(maxsize=64)
def network_policy(network) -> PolicyFn:
    """The policy of an innerlab `Network`, sampling actions from its logits as in training.

    Its carry is (network carry, is_first): the flag is True in `network_initial_carry` and
    False after the first step, so the network sees `is_first` exactly as it did in training.
    One function per network (cached): rollouts that take the policy as a static argument
    compile once for every seed's parameters."""
    def policy(params, obs, carry, key):
        net_carry, is_first = carry
        net_carry, logits, _ = network.apply(params, net_carry, obs, is_first)
        return jax.random.categorical(key, logits), (net_carry, jnp.zeros((), bool))
    return policy


def network_initial_carry(network):
    """The carry `network_policy` starts an episode with."""
    return network.initial_carry(), jnp.ones((), bool)


def network_agent(network, params) -> Agent:
    """An innerlab `Network` with trained `params` as an `Agent`."""
    return Agent(network_policy(network), params, network_initial_carry(network))
