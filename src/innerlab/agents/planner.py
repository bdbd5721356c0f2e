"""A planner with a known model: Monte-Carlo tree search (mctx) over the true environment.

    policy = make_planner_policy(env, num_simulations, max_depth, cross_episodes)
    action = policy(key, env_state, env_params)                     # [N] int32
    stats = plan_rollout(env, env_params, key, num_envs, num_steps, num_simulations, max_depth,
                         cross_episodes)                            # means over ended episodes

What it is for: the cross-episodic objectives experiment asks whether an optimiser uses a
side channel that pays only in the *next* episode (InvestWorld's invest action). A learner's
answer mixes what its objective rewards with how well it optimises. A planner that searches
the true env takes learning out: two planners with the same model and the same search
budget differ only in their horizon, so what separates them is the objective alone.

The two horizons (`cross_episodes`):

- True, crossing: the model is `env.step` with its auto-reset, and every edge has discount
  `discount`, so a search path runs on into the next episode and sees the bonus paid on its
  first step. Such a planner should invest.
- False, episode-bounded: the edge on which the root's episode ends (terminated or
  truncated) has discount 0, and every reward after it on the same path is set to 0, so
  nothing paid after the end reaches the root. It should not invest when the bonus comes
  next episode, and should when the bonus comes at the end of the same episode.

The planner is naive: prior logits are uniform and every leaf is worth 0, so all it knows
is the rewards along the paths it expands within `max_depth` edges. Nothing is learned.

How mctx 0.0.71 backs up (`mctx._src.search.backward`): the value carried from a node to its
parent is `reward + discount * value`, and Q(s, a) = r(s, a) + discount(s, a) * V(child), so
a discount of 0 on the ending edge hides everything below it from every node above it.
The rewards below are zeroed as well, so that node values past the end are exactly 0 and
nothing leaks into the statistics that action selection reads there either.

Choices (measured on a 3 x 3 InvestWorld with one object and episodes of exactly 4 steps,
collecting not ending them; 64 envs x 40 steps, 100 simulations, max_depth 5; see
tests/test_planner.py):

- `mctx.muzero_policy`, no Dirichlet noise, temperature 0 (act on the most visited root
  action, ties broken by the key), PUCT constant `pb_c_init` = 5 instead of MuZero's 1.25.
  With a zero leaf value the first visit of "invest" sees only its cost (-0.2); the bonus is
  one or more edges deeper. With 1.25 the search seldom went back: the crossing planner
  invested in 0 % (64 simulations) to 33 % (200) of episodes. With 5 it invested in 97 %,
  and the bounded planner still collected the object (own return 0.98 of at most 1).
  Gumbel MuZero (`gumbel_muzero_policy`, all 5 actions considered) did worse: with
  gumbel_scale 0 the crossing planner invested in 72 % and the bounded one collected less
  (own return 0.92); with gumbel_scale 1 the noise made the bounded planner invest in 8 %.
  Sequential halving gives each root action num_simulations / (3 * 5) visits before
  halving, too few to reach a bonus 4-5 edges deep.
- One model key per search and env (`SearchNode.model_key`): every node steps the env with
  the same key, so every path that crosses into the next episode meets the same next layout
  (common random numbers). With a fresh key per expansion, the next episode's object (+1)
  turned up in some branches and not others, noise that hid the bonus's 0.4: the crossing
  planner invested in 63 % of episodes instead of 97 %. The bounded planner never reads the
  next episode, so this matters to the crossing one only. (ObjectWorld moves are
  deterministic; only resets draw from the key.)

Limits: mctx backs up means, not maxima, and leaves are worth 0, so a branch whose good path
is deep is valued below that path until the search concentrates on it. Where an immediate
reward ends the episode (ObjectWorld with terminate_when_rewarded_collected), its edge has an
exact value, and a better but longer alternative looks worse than it is: with same-episode
pay, invest-then-collect (1.4) against collect (1.0), the bounded planner invested in only
3 % of episodes at 100 simulations (root Q of invest 0.7-0.9 against 1.0 even at 400).
(The crossing planner's 2 % there is right, not a limit: investing lengthens an episode of
about 2.2 steps by one, which lowers the reward per step, 1.4 / 3.2 < 1 / 2.2.)
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import mctx
from flax import struct

PB_C_INIT = 5.0
"""PUCT exploration constant c_1 of `mctx.muzero_policy` (see the module docstring)."""


@struct.dataclass
class SearchNode:
    """The embedding of a batch of search nodes (every leaf has leading axis [B])."""

    env_state: Any
    """The env state [B, ...]; past an episode's end, the next episode's state (the env
    auto-resets)."""
    episode_over: jax.Array
    """[B] bool: an edge on the path from the root ended the root's episode (only ever set
    by the episode-bounded model)."""
    model_key: jax.Array
    """[B] keys: the env randomness of this search, the same at every node of a tree."""


def make_recurrent_fn(env, cross_episodes: bool, discount: float = 1.0):
    """The true env as an mctx `recurrent_fn(env_params, key, action, node) -> (output, node)`.

    action: [B] int32; node: `SearchNode` [B, ...]; output: `mctx.RecurrentFnOutput` with
    reward [B], discount [B], prior_logits [B, A] (zeros: a uniform prior) and value [B]
    (zeros: a leaf is worth nothing beyond the rewards on its path). mctx's `key` is not
    used: the env steps with `node.model_key`.

    Crossing (`cross_episodes=True`): reward_t = r_t and discount_t = `discount`.
    Bounded: with over_t = "an earlier edge on the path ended the episode" and
    ends_t = terminated_t or truncated_t,
        reward_t = r_t * (1 - over_t),   discount_t = discount * (1 - over_t) * (1 - ends_t),
    so the return backed up to the root, sum_t reward_t * prod_{u<t} discount_u, stops at
    the end of the root's episode, the ending step's reward included.
    """
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))
    num_actions = env.num_actions

    def recurrent_fn(env_params, key, action, node: SearchNode):
        del key  # one key per tree: see the module docstring
        batch = action.shape[0]
        _, env_state, reward, terminated, truncated, _ = step(node.model_key, node.env_state, action, env_params)
        reward = reward.astype(jnp.float32)
        edge_discount = jnp.full((batch,), discount, jnp.float32)
        over = node.episode_over
        if not cross_episodes:
            ends = terminated | truncated
            reward = jnp.where(over, 0.0, reward)
            edge_discount = jnp.where(over | ends, 0.0, edge_discount)
            over = over | ends
        output = mctx.RecurrentFnOutput(reward=reward, discount=edge_discount,
                                        prior_logits=jnp.zeros((batch, num_actions), jnp.float32),
                                        value=jnp.zeros((batch,), jnp.float32))
        return output, node.replace(env_state=env_state, episode_over=over)

    return recurrent_fn


def make_planner_search(env, num_simulations: int, max_depth: int, cross_episodes: bool, discount: float = 1.0,
                        *, pb_c_init: float = PB_C_INIT):
    """-> search(key, env_state, env_params) -> `mctx.PolicyOutput` for a batch of N env states.

    env_state: leaves with leading axis N; env_params: shared by the batch. The output's
    `action` [N] is the most visited root action (ties broken by `key`), `action_weights`
    [N, A] the root visit distribution, `search_tree.summary()` the root value [N] and
    Q-values [N, A] (0 for unvisited actions).
    """
    recurrent_fn = make_recurrent_fn(env, cross_episodes, discount)
    num_actions = env.num_actions

    def search(key, env_state, env_params):
        batch = jax.tree.leaves(env_state)[0].shape[0]
        k_search, k_model = jax.random.split(key)
        root = mctx.RootFnOutput(
            prior_logits=jnp.zeros((batch, num_actions), jnp.float32), value=jnp.zeros((batch,), jnp.float32),
            embedding=SearchNode(env_state=env_state, episode_over=jnp.zeros((batch,), bool),
                                 model_key=jax.random.split(k_model, batch)))
        return mctx.muzero_policy(env_params, k_search, root, recurrent_fn, num_simulations, max_depth=max_depth,
                                  dirichlet_fraction=0.0, temperature=0.0, pb_c_init=pb_c_init)

    return search


def make_planner_policy(env, num_simulations: int, max_depth: int, cross_episodes: bool, discount: float = 1.0):
    """-> policy(key, env_state, env_params) -> action [N] int32, for a batch of N env states
    (every leaf of `env_state` has leading axis N; `env_params` is shared).

    MCTS with the true env as model (`make_planner_search`); `cross_episodes` picks the
    horizon (see the module docstring). The same key gives the same actions.
    """
    search = make_planner_search(env, num_simulations, max_depth, cross_episodes, discount)

    def policy(key, env_state, env_params):
        return search(key, env_state, env_params).action.astype(jnp.int32)

    return policy


def plan_rollout(env, env_params, key, num_envs: int, num_steps: int, num_simulations: int, max_depth: int,
                 cross_episodes: bool, episode_info: tuple[str, ...] = ("exploited", "own_return", "cross_return"),
                 discount: float = 1.0) -> dict:
    """Reset `num_envs` envs and act with the planner for `num_steps` steps (one `lax.scan`).

    Jittable with env, num_envs, num_steps, num_simulations, max_depth, cross_episodes,
    episode_info and discount static (env_params traced). Returns float32 scalars:
      k for k in `episode_info`: the mean of info[k] on the steps that ended an episode;
      "episode_return": the mean over ended episodes of the reward summed within the episode
        (a bonus paid in on its first step included);
      "episodes": the number of episodes that ended.
    Episodes still running after `num_steps` are not counted.
    """
    policy = make_planner_policy(env, num_simulations, max_depth, cross_episodes, discount)
    step_env = jax.vmap(env.step, in_axes=(0, 0, 0, None))
    key, k_reset = jax.random.split(key)
    _, env_state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_reset, num_envs), env_params)
    names = (*episode_info, "episode_return")
    zeros = jnp.zeros((num_envs,), jnp.float32)

    def body(loop, _):
        key, env_state, running, totals, episodes = loop
        key, k_plan, k_env = jax.random.split(key, 3)
        action = policy(k_plan, env_state, env_params)
        _, env_state, reward, terminated, truncated, info = step_env(
            jax.random.split(k_env, num_envs), env_state, action, env_params)
        done = terminated | truncated
        running = running + reward
        ended = {**{k: info[k].astype(jnp.float32) for k in episode_info}, "episode_return": running}
        totals = {k: totals[k] + jnp.where(done, ended[k], 0.0) for k in names}
        running = jnp.where(done, 0.0, running)
        return (key, env_state, running, totals, episodes + done), None

    init = (key, env_state, zeros, {k: zeros for k in names}, jnp.zeros((num_envs,), jnp.int32))
    (_, _, _, totals, episodes), _ = jax.lax.scan(body, init, None, length=num_steps)
    n = episodes.sum()
    out = {k: totals[k].sum() / jnp.maximum(n, 1) for k in names}
    out["episodes"] = n.astype(jnp.float32)
    return out
