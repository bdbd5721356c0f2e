"""The zero-shot experiment's work: policy tables, demonstrations, IRL, measures, chess.

Every agent is reduced to a policy table [S, A] over a game's enumerated states (a language
model answers one query per reachable state; PPO's network is read at every state), so the
rest is exact and shared: expected return by dynamic programming, demonstrations sampled in
JAX, one jitted IRL per (encoding, seed) (compiled once per game's shapes). Text, and hence
the language model, stays host-side.

Seeds: every random stream is keyed by `_stable(name, seed, ...)`, a hash of readable parts
(not `training.seed_keys`' fold_in streams), so each game, encoding and agent has its own key
whatever else the run contains.

Measured training length: the PPO condition reports `env_steps` per seed, read from each
trained agent's update counter and summed over the games (one agent per game); the builtin
model reports `train_steps`, the optimisation steps its training ran (and no `env_steps`: it
learns from transcripts, not by acting). Both use env "train", encoding "all".
"""

from __future__ import annotations

import functools
import itertools
import re
import zlib
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from innerlab.envs.objectworld import ACTION_NAMES
from innerlab.envs.textworld import TextGame, family_games, objectworld_game, rule_game, text_env
from innerlab.experiments.fields import structure_key
from innerlab.experiments.outputs import log_chunk, save_agents
from innerlab.experiments.training import ChunkedRun, compile_chunked, return_status, run_chunked
from innerlab.experiments.zero_shot.config import ENCODINGS
from innerlab.irl import fit, heldout_accuracy, maxent_irl, reward_distance, sample_trajectories, \
    soft_value_iteration, split

GAME_MAKERS = {"objectworld": objectworld_game, "rulegame": rule_game}  # the code behind config.GAMES (a test checks)
FAMILY_SEED = 12345  # the builtin model's training family is fixed; seeds vary the model, not its data


@functools.lru_cache(maxsize=None)
def game(name: str) -> TextGame:
    return GAME_MAKERS[name]()


def _stable(*parts) -> int:
    """A platform-independent integer from strings (Python's hash() is salted per process)."""
    return zlib.crc32("/".join(map(str, parts)).encode())


def _stable_keys(*parts, seeds) -> jax.Array:
    """[S] keys, one per seed: key(_stable(*parts, seed))."""
    return jax.vmap(jax.random.key)(jnp.asarray([_stable(*parts, s) for s in seeds], jnp.uint32))


# -- tables and returns ------------------------------------------------------------------
def irl_features(g: TextGame) -> np.ndarray:
    """[S, A, S, K]: which item a transition collects (one-hot); the true reward is in their span.

    No per-move feature: in these games the episode ends when the positive items are gone, so
    "a cost per move" and "a reward for the positive item" make the same behaviour (rush to it)
    and IRL could not tell them apart; with items only, the objective is which items are wanted."""
    return g.mdp.features


def item_names(g: TextGame) -> list[str]:
    """[K] the item each IRL feature is about."""
    return [g.item(int(c), int(s)) for c, s in zip(np.asarray(g.params.obj_colour), np.asarray(g.params.obj_shape))]


def soft_optimal_table(g: TextGame, beta: float, discount: float) -> np.ndarray:
    """[S, A] the soft-optimal policy of beta x the true reward."""
    mdp = g.mdp
    out = soft_value_iteration(jnp.asarray(mdp.transitions, jnp.float32), jnp.asarray(beta * mdp.reward, jnp.float32),
                               discount, 200)
    return np.asarray(out.policy, np.float64)


def uniform_table(g: TextGame) -> np.ndarray:
    mdp = g.mdp
    return np.full((mdp.num_states, mdp.num_actions), 1.0 / mdp.num_actions)


def expected_return(g: TextGame, table: np.ndarray) -> float:
    """Exact expected undiscounted return of a policy table over the game's move limit."""
    mdp = g.mdp
    reward = mdp.state_action_reward
    dist, total = mdp.initial.copy(), 0.0
    for _ in range(g.max_steps):
        joint = dist[:, None] * table
        total += float((joint * reward).sum())
        dist = np.einsum("sa,sat->t", joint, mdp.transitions)
    return total


def lm_table(policy, g: TextGame, encoding: str, player: str = "expert") -> tuple[np.ndarray, int, int]:
    """A language model's policy table on `g` in `encoding`: (table [S, A], illegal answers, answers).
    Unreachable states keep the uniform row (they never occur)."""
    table = uniform_table(g)
    choices = policy.choose(g.queries(encoding, player))
    for state, choice in zip(g.playable_states, choices):
        table[state] = choice.probs
    return table, sum(c.illegal for c in choices), sum(c.answers for c in choices)


# -- demonstrations, IRL, measures ----------------------------------------------------------
def measure(config, g: TextGame, tables: dict[str, np.ndarray], seeds, agent: str) -> list[dict[str, Any]]:
    """Rows of every measure for one game: tables maps encoding -> [n_seeds, S, A]."""
    mdp = g.mdp
    features = irl_features(g)
    transitions = jnp.asarray(mdp.transitions, jnp.float32)
    rows, rewards = [], {}
    playable = np.zeros(mdp.num_states)
    playable[g.playable_states] = 1.0
    # Demonstrations start at every playable state, not only the level's start: the policy table
    # is known everywhere, and behaviour near every item (e.g. stepping around a bad one) is
    # what identifies the items' weights.
    starts = jnp.asarray(playable / playable.sum(), jnp.float32)
    true_points = [g.points(k) for k in range(len(item_names(g)))]
    for encoding, table in tables.items():
        for i, seed in enumerate(seeds):
            key = jax.random.key(_stable("demos", seed, g.name, encoding, agent))
            trajectories = sample_trajectories(key, transitions, jnp.asarray(table[i], jnp.float32),
                                               starts, g.max_steps, config.demos,
                                               terminal=mdp.terminal)
            train, test = split(trajectories, config.heldout_fraction)
            result = maxent_irl(mdp.transitions, features, mdp.initial, train, config.discount,
                                steps=config.irl_steps, learning_rate=config.irl_lr, l2=config.irl_l2)
            reward = np.asarray(result.reward, np.float64)
            rewards[(encoding, i)] = reward
            base = {"seed": seed, "env": g.name, "encoding": encoding}
            theta = np.asarray(result.theta, np.float64)
            scale = max(np.abs(theta).max(), 1e-12)
            rows += [
                {**base, "metric": "episode_return", "value": expected_return(g, table[i])},
                {**base, "metric": "epic_to_true", "value": reward_distance(reward, mdp.reward, mdp.transitions,
                                                                            config.discount, state_dist=playable)},
                {**base, "metric": "fit", "value": float(fit(result.policy, train))},
                {**base, "metric": "heldout_accuracy", "value": float(heldout_accuracy(result.policy, test))},
            ]
            # The recovered objective itself: each item's weight relative to the largest, next to
            # the truth, so a report can say "it values the red circle and ignores the rest".
            for k, (name, points) in enumerate(zip(item_names(g), true_points)):
                rows.append({**base, "metric": "irl_weight", "value": float(theta[k] / scale), "item": name,
                             "true_points": points})
    for a, b in itertools.combinations(tables, 2):
        for i, seed in enumerate(seeds):
            rows.append({"seed": seed, "env": g.name, "encoding": f"{a}|{b}", "metric": "cross_encoding_epic",
                         "value": reward_distance(rewards[(a, i)], rewards[(b, i)], mdp.transitions, config.discount,
                                                  state_dist=playable)})
    return rows


# -- the builtin model ----------------------------------------------------------------------
def skill_tables(g: TextGame, config) -> dict[str, np.ndarray]:
    """The transcripts' players on one family game: expert and novice are soft-optimal for
    expert_beta / novice_beta x the reward, random is uniform."""
    return {"expert": soft_optimal_table(g, config.expert_beta, config.discount),
            "novice": soft_optimal_table(g, config.novice_beta, config.discount),
            "random": uniform_table(g)}


def family_transcripts(config) -> list[tuple[str, str]]:
    """Text transcripts of mixed-skill play in the training family: one record per move, each
    the prompt the player saw ("Player: <skill>", the observation in one of the encodings)
    and the move it made, as a (prompt, " move") pair. The order is shuffled deterministically."""
    texts = []
    for g in family_games(FAMILY_SEED, config.family_games):
        mdp = g.mdp
        for player, table in skill_tables(g, config).items():
            for encoding in ENCODINGS:
                key = jax.random.key(_stable("family", g.name, player, encoding))
                traj = sample_trajectories(key, jnp.asarray(mdp.transitions, jnp.float32),
                                           jnp.asarray(table, jnp.float32), jnp.asarray(mdp.initial, jnp.float32),
                                           g.max_steps, config.family_trajectories, terminal=mdp.terminal)
                states, actions, mask = (np.asarray(x) for x in (traj.states, traj.actions, traj.mask))
                texts += [(g.prompt(int(s), encoding, player), " " + ACTION_NAMES[int(a)])
                          for s, a, m in zip(states.ravel(), actions.ravel(), mask.ravel()) if m]
    order = np.random.default_rng(FAMILY_SEED).permutation(len(texts))
    return [texts[i] for i in order]


def train_builtin(config, seeds, progress=None) -> tuple[list, np.ndarray, int]:
    """Train the builtin model for each seed (vmapped): (one BuiltinPolicy per seed, losses
    [S, steps run], number of transcripts). `builtin.train` runs every one of lm_steps, the
    last chunk shorter if progress_chunks does not divide them."""
    from innerlab.agents.lm import builtin

    texts = family_transcripts(config)
    tokenizer = builtin.Tokenizer.from_texts([prompt + answer for prompt, answer in texts])
    model_config = builtin.BuiltinConfig(width=config.lm_width, depth=config.lm_depth, heads=config.lm_heads,
                                         max_len=config.lm_max_len, steps=config.lm_steps,
                                         batch_size=config.lm_batch, learning_rate=config.lm_lr,
                                         warmup_steps=min(50, config.lm_steps // 10),
                                         prompt_loss_weight=config.lm_prompt_loss_weight)
    keys = _stable_keys("builtin", seeds=seeds)

    def on_chunk(step, loss):
        if progress is not None:
            progress(step / config.lm_steps, f"builtin model step {step}/{config.lm_steps}, loss {loss:.3f}")

    params, losses = builtin.train(texts, tokenizer, model_config, keys,
                                   chunk=max(config.lm_steps // config.progress_chunks, 1), on_chunk=on_chunk,
                                   on_losses=lambda chunk: log_chunk({"loss": chunk}, prefix="lm"))
    save_agents("builtin-lm", params, kind="builtin_lm",
                meta={"tokenizer": tokenizer.to_json(), "model": model_config.to_json()})
    policies = [builtin.BuiltinPolicy.for_seed(params, i, tokenizer, model_config) for i in range(len(seeds))]
    return policies, np.asarray(losses), len(texts)


def family_control_rows(config, policies, seeds) -> list[dict[str, Any]]:
    """The builtin model's own control, on games of its training family: prompted "Player:
    expert", does it (a) give more probability to the expert's best move and (b) score more
    than when prompted "Player: random"? It should, if it learned to predict skilled play; that
    is what its zero-shot use relies on. (a) is the sensitive test, per state; (b) is the
    downstream one, over whole games."""
    rows = []
    games = family_games(FAMILY_SEED, config.family_games)[: config.family_eval_games]
    experts = [soft_optimal_table(g, config.expert_beta, config.discount) for g in games]
    for i, seed in enumerate(seeds):
        for player in ("expert", "random"):
            returns, agree = [], []
            for g, expert in zip(games, experts):
                table = lm_table(policies[i], g, "ascii", player)[0]
                returns.append(expected_return(g, table))
                states = g.playable_states
                best = expert[states].argmax(-1)
                agree.append(table[states, best].mean())
            rows.append({"seed": seed, "env": "family", "encoding": "ascii", "metric": f"family_return_{player}",
                         "value": float(np.mean(returns))})
            rows.append({"seed": seed, "env": "family", "encoding": "ascii", "metric": f"family_best_move_{player}",
                         "value": float(np.mean(agree))})
        rows.append({"seed": seed, "env": "family", "encoding": "ascii", "metric": "family_return_oracle",
                     "value": float(np.mean([expected_return(g, t) for g, t in zip(games, experts)]))})
    return rows


# -- PPO ----------------------------------------------------------------------------------
class PPOCompiled(NamedTuple):
    """PPO on the text games' env, compiled for one structure (see `_ppo_compiled`)."""

    env: Any
    ppo: Any              # PPOConfig
    training: ChunkedRun  # init(keys [S], hparams, game params) / chunks of updates
    table: Callable       # (params [S], states, game params) -> [S, states, A] action probabilities
    network_spec: tuple   # (NetworkConfig, obs_dim, num_actions): what rebuilds the network


@functools.lru_cache(maxsize=4)
def _ppo_compiled(structure) -> PPOCompiled:
    """Compiled once per structure (`structure_key(config)`: the learning rate and entropy
    coefficient are traced HParams values, and every game runs on the same env)."""
    from innerlab.agents import NetworkConfig, PPOConfig, make_network, make_train

    env = text_env()  # every text game runs on this one env; levels differ only in params
    obs_dim = env.observation_space(None).shape[0]
    net_config = NetworkConfig(arch="mlp", width=structure.ppo_width, depth=structure.ppo_depth)
    network = make_network(net_config, obs_dim, env.num_actions)
    ppo = PPOConfig(total_steps=structure.total_steps, **structure.ppo_kwargs())
    trainer = make_train(ppo, env, network)
    training = compile_chunked(trainer.init, trainer.run, ppo.num_updates, structure.progress_chunks)

    def table(params, states, env_params):
        obs = jax.vmap(env.get_obs, in_axes=(0, None))(states, env_params)
        carry, first = network.initial_carry(), jnp.array(True)
        logits = jax.vmap(lambda o: network.apply(params, carry, o, first)[1])(obs)
        return jax.nn.softmax(logits, axis=-1)

    return PPOCompiled(env, ppo, training, jax.jit(jax.vmap(table, in_axes=(0, None, None))),
                       (net_config, obs_dim, env.num_actions))


def ppo_tables(config, g: TextGame, seeds, progress=None) -> tuple[np.ndarray, np.ndarray]:
    """PPO agents trained on g's true reward (vmapped seeds): (policy tables [S, states, A],
    env steps each seed's training did [S], from its update counter)."""
    from innerlab.agents import HParams
    from innerlab.envs import state_batch

    compiled = _ppo_compiled(structure_key(config))
    hparams = HParams(lr=jnp.float32(config.lr), ent_coef=jnp.float32(config.ent_coef))
    state = compiled.training.init(_stable_keys("ppo", g.name, seeds=seeds), hparams, g.params)
    name = "ppo-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", g.name)
    state, _ = run_chunked(compiled.training, state, g.params, progress, status=return_status, prefix=name)
    save_agents(name, state.params, network=compiled.network_spec, meta={"game": g.name})
    steps = np.asarray(state.update, np.int64) * compiled.ppo.steps_per_update  # counted inside the jitted loop
    mdp = g.mdp
    probs = np.asarray(compiled.table(state.params, state_batch(compiled.env, g.params, mdp), g.params), np.float64)
    out = np.full((len(seeds), mdp.num_states, mdp.num_actions), 1.0 / mdp.num_actions)
    out[:, : mdp.terminal] = probs / probs.sum(-1, keepdims=True)
    return out, steps


# -- chess --------------------------------------------------------------------------------
def chess_rows(config, policy, seeds, same_policy_each_seed) -> list[dict[str, Any]]:
    """Mean score and illegal-answer rate of `policy` (a list per seed, or one) against each opponent."""
    from innerlab.agents.lm.play import play_chess

    rows = []
    if config.chess_games == 0:
        return rows
    for i, seed in enumerate(seeds):
        pol = policy if same_policy_each_seed else policy[i]
        for opponent in config.chess_opponents:
            results = play_chess(pol, opponent, config.chess_games, seed=_stable("chess", seed, opponent) % 2**31,
                                 max_plies=config.chess_max_plies)
            answers = sum(r.answers for r in results)
            base = {"seed": seed, "env": f"chess-{opponent}", "encoding": "ascii"}
            rows += [{**base, "metric": "episode_return", "value": float(np.mean([r.score for r in results]))},
                     {**base, "metric": "illegal_rate",
                      "value": sum(r.illegal for r in results) / answers if answers else 0.0}]
    return rows


class UniformPolicy:
    """The random control as a language-model policy (for chess): uniform over legal actions."""

    name = "random"

    def choose(self, queries):
        from innerlab.agents.lm.base import Choice

        return [Choice(probs=np.full(len(q.actions), 1.0 / len(q.actions))) for q in queries]


# -- one condition -----------------------------------------------------------------------------
def _train_rows(seeds, metric: str, values) -> list[dict[str, Any]]:
    return [{"seed": s, "env": "train", "encoding": "all", "metric": metric, "value": float(v)}
            for s, v in zip(seeds, values)]


def run_job(config, condition, seeds, progress=None) -> list[dict[str, Any]]:
    """One agent (condition.fields["agent"]) on every configured game and chess, for `seeds`."""
    fields = condition.fields
    agent, backend = fields["agent"], fields["lm"]
    seeds = tuple(seeds)
    report = progress or (lambda fraction, status: None)
    games = [game(name) for name in config.games]
    rows: list[dict[str, Any]] = []
    if agent in ("oracle", "random"):
        for g in games:
            one = soft_optimal_table(g, config.oracle_beta, config.discount) if agent == "oracle" else uniform_table(g)
            tables = {e: np.broadcast_to(one, (len(seeds), *one.shape)) for e in config.encodings}
            rows += measure(config, g, tables, seeds, agent)
            rows += [{"seed": s, "env": g.name, "encoding": e, "metric": "illegal_rate", "value": 0.0}
                     for s in seeds for e in config.encodings]
        if agent == "random":
            rows += chess_rows(config, UniformPolicy(), seeds, same_policy_each_seed=True)
        report(1.0, "done")
        return rows
    if agent == "ppo":
        env_steps = np.zeros(len(seeds), np.int64)
        for j, g in enumerate(games):
            def ppo_progress(fraction, status, j=j, g=g):
                report((j + 0.8 * fraction) / len(games), f"PPO on {g.name}: {status}")
            table, steps = ppo_tables(config, g, seeds, ppo_progress)
            env_steps += steps
            # PPO reads arrays, not text: its one table is measured under each encoding label with
            # fresh demonstrations, like the oracle, so its cross-encoding EPIC is a sampling floor.
            rows += measure(config, g, {e: table for e in config.encodings}, seeds, agent)
        rows += _train_rows(seeds, "env_steps", env_steps)
        report(1.0, "done")
        return rows
    # A language model.
    if agent == "builtin":
        policies, losses, count = train_builtin(config, seeds, lambda f, s: report(0.6 * f, s))
        rows += [{"seed": s, "env": "family", "encoding": "all", "metric": "lm_final_loss",
                  "value": float(losses[i, -max(1, losses.shape[1] // 10):].mean())} for i, s in enumerate(seeds)]
        # Each scanned optimisation step emits one loss: the count is what training ran.
        rows += _train_rows(seeds, "train_steps", [losses.shape[1]] * len(seeds))
        rows += family_control_rows(config, policies, seeds)
        per_seed = True
    else:
        from innerlab.agents.lm import make_policy

        options = {}
        if agent == "openai":
            options = dict(samples=config.samples, temperature=config.temperature, timeout=config.timeout,
                           retries=config.retries)
        # One fixed model: its table is read once and every seed resamples demonstrations from it.
        policies, per_seed = make_policy(backend, **options), False
    for j, g in enumerate(games):
        report(0.6 + 0.3 * j / len(games), f"{backend} plays {g.name}")
        tables, illegal_rows = {}, []
        for encoding in config.encodings:
            per = []
            for i, seed in enumerate(seeds):
                if per_seed or i == 0:
                    table, illegal, answers = lm_table(policies[i] if per_seed else policies, g, encoding)
                per.append(table)
                illegal_rows.append({"seed": seed, "env": g.name, "encoding": encoding, "metric": "illegal_rate",
                                     "value": illegal / answers if answers else 0.0})
            tables[encoding] = np.stack(per)
        rows += measure(config, g, tables, seeds, agent) + illegal_rows
    report(0.9, f"{backend} plays chess")
    rows += chess_rows(config, policies, seeds, same_policy_each_seed=not per_seed)
    report(1.0, "done")
    return rows
