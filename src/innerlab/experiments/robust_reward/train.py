"""Training, adversarial reward training and exact evaluation for the robust-reward experiment
(the JAX part, imported lazily).

One job = one training condition x a batch of seeds:
1. train the MuZero agent (agents/muzero.py) on the condition's training levels, vmapped over
   seeds, in jitted chunks for progress (exactly the configured updates: whole chunks and one
   shorter tail, see experiments/training.py);
2. "before": read its reward heads at every (state, action) of fixed evaluation levels
   (tabular export, envs/tabular.py) and compare with the true reward (EPIC, regret);
3. for each adversary (none / random / input / latent), from the same trained parameters:
   `rounds` rounds of (adversary picks inputs; reward heads fine-tuned on the agent's own
   replay plus everything picked so far), vmapped over seeds; "after": the same comparison.
   This phase is one `lax.scan` over exactly `rounds` rounds (not chunked) and steps no env.

Compiled functions are cached per structure (shape-setting config); the training colours,
the novel colour's reward and learning rates are traced, so the two training conditions
share every compile.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from innerlab.agents.muzero import MuZero, MuZeroConfig, make_muzero
from innerlab.envs import ObjectWorld, make_params, state_batch, tabulate
from innerlab.experiments.fields import structure_key
from innerlab.experiments.outputs import save_agents
from innerlab.experiments.robust_reward.config import ADVERSARIES
from innerlab.experiments.training import ChunkedRun, compile_chunked, return_status, run_chunked, seed_keys
from innerlab.rewards import epic_distance
from innerlab.rewards.adversary import (agreement_loss, build, disagreement, input_adversary, labelled_loss,
                                        latent_adversary, random_inputs)
from innerlab.rewards.regret import regret

# fold_in numbers 0..3 of each seed's key: agent init and training, return evaluation, visit
# counts, adversarial training. Only ever append.
STREAMS = ("init", "eval", "visit", "adapt")


# --- levels --------------------------------------------------------------------------------------

def make_env(config) -> ObjectWorld:
    return ObjectWorld(size=config.grid_size, num_objects=config.num_objects, num_colours=3, obs_view="egocentric")


def colours(config, kind: str) -> list[int]:
    """Object colours: half good (0), the rest bad: colour 1 (training), one of them colour 2 in
    `covered` training, all of them colour 2 off distribution."""
    k = config.num_objects
    good = (k + 1) // 2
    bad = k - good
    if kind == "novel":
        return [0] * good + [1] * bad
    if kind == "covered":
        return [0] * good + [1] * (bad - 1) + [2] if bad > 1 else [0] * good + [2] * bad
    return [0] * good + [2] * bad  # offdist


def reward_table(config) -> list[list[float]]:
    return [[1.0], [-1.0], [float(config.novel_reward)]]


def training_params(config, env, training: str):
    return make_params(env, max_steps_in_episode=config.max_steps, reward_table=reward_table(config),
                       obj_colour=colours(config, training))


def offdist_params(config, env):
    return make_params(env, max_steps_in_episode=config.max_steps, reward_table=reward_table(config),
                       obj_colour=colours(config, "offdist"))


def fixed_levels(config, env, base, count: int, salt: int) -> list:
    """`count` fixed levels from the distribution `base` (random positions), the same for every
    seed and condition: agent and object cells drawn with a fixed key."""
    out = []
    for i in range(count):
        _, state = env.reset(jax.random.key(10_000 * salt + i), base)
        out.append(base.replace(randomize_positions=jnp.bool_(False), agent_start=state.agent_pos,
                                obj_pos=state.obj_pos))
    return out


class Level:
    """An evaluation level: its params, exact tabular MDP, observations of every non-terminal
    state [S - 1, D], the reachable states and the state-index lookup for visit counts."""

    def __init__(self, env, params):
        self.params = params
        self.mdp = tabulate(env, params)
        self.obs = np.asarray(jax.vmap(env.get_obs, (0, None))(state_batch(env, params, self.mdp), params))
        self.true = self.mdp.state_action_reward                       # [S, A]
        self.reachable = _reachable(self.mdp)                           # [S] bool
        self.index_table = self.mdp.index_table(env.size)


def _reachable(mdp) -> np.ndarray:
    seen = mdp.initial > 0
    frontier = seen.copy()
    while frontier.any():
        nxt = (mdp.transitions[frontier].sum((0, 1)) > 0) & ~seen
        seen |= nxt
        frontier = nxt
    return seen


# --- compiled pieces ------------------------------------------------------------------------------

def muzero_config(structure) -> MuZeroConfig:
    return MuZeroConfig(num_envs=structure.num_envs, rollout_len=structure.rollout_len,
                        total_steps=structure.total_steps, buffer_len=structure.buffer_len,
                        num_simulations=structure.num_simulations, latent_dim=structure.latent_dim,
                        width=structure.width, ensemble=structure.ensemble, sgd_steps=structure.sgd_steps,
                        lr=structure.lr)


class CompiledAgent(NamedTuple):
    """The agent and its jitted pieces, every one vmapped over seeds."""

    env: ObjectWorld
    agent: MuZero
    training: ChunkedRun
    """init(keys [S], env params) -> MuZeroState [S]; run_chunked trains exactly num_updates."""
    evaluate: Callable
    """(params [S], keys [S], env params, epsilon) -> [S] mean return of ended episodes."""
    tabular_heads: Callable
    """(params [S], obs [N, D]) -> [S, N, A, E] every head's reward at every observation and action."""
    visit_counts: Callable
    """(params [S], keys [S], env params, index table) -> [S, S_max, A] (state, action) visit counts."""


@functools.lru_cache(maxsize=4)
def _compiled_agent(structure) -> CompiledAgent:
    env = make_env(structure)
    agent = make_muzero(muzero_config(structure), env)
    training = compile_chunked(agent.init, agent.run, agent.config.num_updates, structure.progress_chunks,
                               init_axes=(0, None))

    def returns(params, key, env_params, epsilon):
        return agent.evaluate(params, key, env_params, structure.eval_envs, structure.eval_steps, epsilon)

    evaluate = jax.jit(jax.vmap(returns, in_axes=(0, 0, None, None)))

    def heads(params, obs):
        """[S, A, E] every head's reward at every observation [S, D] and action."""
        actions = jnp.arange(env.num_actions)
        return jax.vmap(lambda o: jax.vmap(lambda a: agent.reward_heads(params, o, a))(actions))(obs)

    tabular_heads = jax.jit(jax.vmap(heads, in_axes=(0, None)))

    def visits(params, key, env_params, index_table):
        """[S_max, A] counts of (state, action) taken by the agent's training-time policy (Gumbel
        search, exploration explore_end) in `visit_episodes` episodes of one fixed level."""
        num_envs = structure.visit_envs
        k_reset, k_run = jax.random.split(key)
        obs, state = jax.vmap(env.reset, (0, None))(jax.random.split(k_reset, num_envs), env_params)
        k = env.num_objects
        bits = 2 ** jnp.arange(k)

        def one_step(carry, _):
            key, obs, state, counts = carry
            key, k_act, k_step = jax.random.split(key, 3)
            action, _ = agent.act(params, k_act, obs, agent.config.explore_end)
            present_bits = (state.obj_present * bits).sum(-1)
            index = index_table[state.agent_pos[:, 0], state.agent_pos[:, 1], present_bits]
            counts = counts.at[jnp.maximum(index, 0), action].add((index >= 0).astype(jnp.float32))
            obs, state, _, _, _, _ = jax.vmap(env.step, (0, 0, 0, None))(
                jax.random.split(k_step, num_envs), state, action, env_params)
            return (key, obs, state, counts), None

        size = max_states(structure)
        counts = jnp.zeros((size, env.num_actions))
        (_, _, _, counts), _ = jax.lax.scan(one_step, (k_run, obs, state, counts), None, structure.visit_steps)
        return counts

    visit_counts = jax.jit(jax.vmap(visits, in_axes=(0, 0, None, None)))
    return CompiledAgent(env, agent, training, evaluate, tabular_heads, visit_counts)


def max_states(structure) -> int:
    """An upper bound on a level's state count: cells x presence masks + terminal."""
    return structure.grid_size ** 2 * 2 ** structure.num_objects + 1


@functools.lru_cache(maxsize=4)
def _compiled_adapt(structure):
    """adapt(params, key, replay, base_params, kind, finetune_lr, latent_step_size, latent_radius)
    -> (params, stats [rounds], params after each round [rounds, ...]), vmapped over seeds:
    `rounds` rounds of (pick inputs, fine-tune the reward heads). `kind` is
    the adversary's index in ADVERSARIES, traced (one compile serves all four; the branches
    are `lax.cond`s on an unbatched index, so only the chosen one runs)."""
    compiled = _compiled_agent(structure)
    env, agent = compiled.env, compiled.agent
    queries, rounds = structure.queries, structure.rounds
    total = queries * rounds
    obs_dim = env.observation_space(None).shape[0]
    none, random, input_, latent_ = (ADVERSARIES.index(a) for a in ("none", "random", "input", "latent"))

    def heads_obs(params, obs, action):        # [B, D], [B] -> [B, E]
        return jax.vmap(agent.reward_heads, (None, 0, 0))(params, obs, action)

    def heads_latent(params, latent, action):  # [B, L], [B] -> [B, E]
        return jax.vmap(agent.latent_reward_heads, (None, 0, 0))(params, latent, action)

    def adapt(params, key, replay, base, kind, finetune_lr, latent_step_size, latent_radius):
        optimizer = optax.adam(finetune_lr)
        data = dict(obs=jnp.zeros((total, obs_dim)), action=jnp.zeros((total,), jnp.int32),
                    reward=jnp.zeros((total,)), weight=jnp.zeros((total,)),
                    latent=jnp.zeros((total, structure.latent_dim)))
        replay_size = replay["reward"].shape[0]
        labelled = ((kind == random) | (kind == input_)).astype(jnp.float32)
        pseudo = (kind == latent_).astype(jnp.float32)

        def loss(params, data, batch):
            own = labelled_loss(heads_obs(params, batch["obs"], batch["action"]), batch["reward"])
            extra = labelled_loss(heads_obs(params, data["obs"], data["action"]), data["reward"],
                                  labelled * data["weight"])
            agree = agreement_loss(heads_latent(params, data["latent"], data["action"]), pseudo * data["weight"])
            return own + extra + agree

        def sgd(carry, key):
            params, opt_state, data = carry
            index = jax.random.randint(key, (structure.finetune_batch,), 0, replay_size)
            batch = jax.tree.map(lambda x: x[index], replay)
            grads = jax.grad(loss)(params, data, batch)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state, data), None

        def round_(carry, inputs):
            params, opt_state, data = carry
            r, key = inputs
            k_pick, k_sgd = jax.random.split(key)
            slot = r * queries + jnp.arange(queries)
            score = lambda obs, action: disagreement(heads_obs(params, obs, action))
            picked = jax.lax.cond(
                kind == input_,
                lambda k: input_adversary(score, env, base, k, queries, structure.pool, structure.search_rounds)[0],
                lambda k: random_inputs(env, base, k, queries), k_pick)
            obs, reward = build(env, base, picked)
            latent_score = lambda z, a: disagreement(heads_latent(params, z, a))
            start = jax.vmap(agent.represent, (None, 0))(params, obs)
            latent = jax.lax.cond(kind == latent_,
                                  lambda z: latent_adversary(latent_score, z, picked.action, structure.latent_steps,
                                                             latent_step_size, latent_radius),
                                  lambda z: z, start)
            stats = {"query_disagreement": jnp.where(kind == latent_, latent_score(latent, picked.action).mean(),
                                                     score(obs, picked.action).mean()),
                     "query_reward_rate": (reward != 0).mean()}
            data = dict(obs=data["obs"].at[slot].set(obs), action=data["action"].at[slot].set(picked.action),
                        reward=data["reward"].at[slot].set(reward), latent=data["latent"].at[slot].set(latent),
                        weight=data["weight"].at[slot].set(jnp.where(kind == none, 0.0, 1.0)))
            (params, opt_state, data), _ = jax.lax.scan(sgd, (params, opt_state, data),
                                                        jax.random.split(k_sgd, structure.finetune_steps))
            return (params, opt_state, data), (stats, params)

        carry = (params, optimizer.init(params), data)
        (params, _, _), (stats, per_round) = jax.lax.scan(round_, carry,
                                                          (jnp.arange(rounds), jax.random.split(key, rounds)))
        return params, stats, per_round

    return jax.jit(jax.vmap(adapt, in_axes=(0, 0, 0, None, None, None, None, None)))


# --- the job ---------------------------------------------------------------------------------------

def learned_tables(tabular_heads, params, level: Level) -> np.ndarray:
    """[seeds, S, A] float64 ensemble-mean reward per (state, action); 0 in the terminal state."""
    heads = np.asarray(tabular_heads(params, jnp.asarray(level.obs)), np.float64)  # [seeds, S-1, A, E]
    mean = heads.mean(-1)
    return np.concatenate([mean, np.zeros((mean.shape[0], 1, mean.shape[2]))], axis=1)


def _broadcast(reward_sa: np.ndarray) -> np.ndarray:
    """[S, A] -> [S, A, S]: in a deterministic MDP R(s, a, s') = R(s, a)."""
    return np.broadcast_to(reward_sa[:, :, None], (*reward_sa.shape, reward_sa.shape[0]))


def _reachable_coverage(level: Level) -> np.ndarray:
    """[S, A, S] the transitions of every reachable non-terminal state under uniform actions."""
    coverage = (level.reachable[:, None, None] * level.mdp.transitions).astype(np.float64)
    coverage[level.mdp.terminal] = 0.0
    return coverage


def compare_epic(config, level: Level, learned: np.ndarray) -> float:
    """EPIC between the level's true reward and `learned` [S, A] over its reachable states
    (canonicalised uniformly over them; compared on their transitions under uniform actions)."""
    return epic_distance(_broadcast(level.true), _broadcast(learned), config.discount,
                         state_dist=level.reachable.astype(np.float64), coverage=_reachable_coverage(level))


def compare(config, level: Level, learned: np.ndarray, visits: np.ndarray | None) -> dict[str, float]:
    """EPIC over the level's reachable states (and over the agent's visits if given) and regret
    of planning with `learned` [S, A] in the true model."""
    mdp = level.mdp
    state_dist = level.reachable.astype(np.float64)
    out = {"all": compare_epic(config, level, learned),
           "regret": regret(mdp.transitions, level.true, learned, mdp.initial, config.max_steps)}
    if visits is not None:
        coverage = visits[:, :, None] * mdp.transitions
        coverage[mdp.terminal] = 0.0
        out["visited"] = (epic_distance(_broadcast(level.true), _broadcast(learned), config.discount,
                                        state_dist=state_dist, coverage=coverage) if coverage.sum() > 0 else np.nan)
    return out


def error_map(config, level: Level, learned: np.ndarray) -> np.ndarray:
    """[N, N] max over actions of |learned - true| with every object of the level present, per
    agent cell (nan where the agent cannot stand)."""
    n = config.grid_size
    out = np.full((n, n), np.nan)
    start_present = level.mdp.present[np.argmax(level.mdp.initial)]
    full = (level.mdp.present == start_present).all(-1)
    for s in np.flatnonzero(full[:-1]):
        r, c = level.mdp.agent_pos[s]
        out[r, c] = np.abs(learned[s] - level.true[s]).max()
    return out


@functools.lru_cache(maxsize=8)
def _levels(structure, training: str, novel_reward: float) -> tuple[list[Level], list[Level]]:
    config = dataclasses.replace(structure, novel_reward=novel_reward)
    env = make_env(structure)
    base = training_params(config, env, training)
    off = offdist_params(config, env)
    return ([Level(env, p) for p in fixed_levels(config, env, base, structure.eval_levels, salt=1)],
            [Level(env, p) for p in fixed_levels(config, env, off, structure.eval_levels, salt=2)])


def run_job(config, condition, seeds: tuple[int, ...], progress=None) -> list[dict]:
    """Train the agent on one training condition for `seeds`, compare its reward with the truth,
    adversarially train it (every adversary) and compare again; tidy rows."""
    structure = structure_key(config)
    training = condition.fields["training"]
    compiled = _compiled_agent(structure)
    env, agent, evaluate, tabular_heads = compiled.env, compiled.agent, compiled.evaluate, compiled.tabular_heads
    params = training_params(config, env, training)
    off = offdist_params(config, env)
    keys = seed_keys(seeds, STREAMS)
    k_eval, k_visit, k_adapt = keys["eval"], keys["visit"], keys["adapt"]

    rows: list[dict] = []

    def add(metric, values, **extra):
        rows.extend({**extra, "seed": int(seed), "metric": metric, "value": float(values[s])}
                    for s, seed in enumerate(seeds))

    state = compiled.training.init(keys["init"], params)
    state, metrics = run_chunked(compiled.training, state, params, progress, return_status, fraction=(0.0, 0.6))
    muzero_meta = {"muzero": dataclasses.asdict(agent.config)}
    save_agents("agent", state.params, kind="muzero", meta=muzero_meta)
    curve_all = metrics["episode_return"]  # [S, U]
    steps_per_update = agent.config.steps_per_update
    edges = np.linspace(0, curve_all.shape[1], min(config.curve_points, curve_all.shape[1]) + 1).astype(int)
    with np.errstate(all="ignore"):
        for a, b in zip(edges[:-1], edges[1:]):
            add("training_return", np.nanmean(curve_all[:, a:b], axis=1), stage="curve", env_steps=int(b * steps_per_update))
    # Env steps of the agent's training (pre-fill not counted), from the update counter of the
    # jitted loop; also in the env_steps column, as on every row measured after training.
    measured = np.asarray(state.updates) * steps_per_update  # [S]
    rows.extend({"stage": "train", "adversary": "none", "env_steps": int(measured[s]), "seed": int(seed),
                 "metric": "env_steps", "value": float(measured[s])} for s, seed in enumerate(seeds))

    total_steps = int(curve_all.shape[1] * steps_per_update)
    for support, level_params in (("all", params), ("offdist", off)):
        add("episode_return", np.asarray(evaluate(state.params, k_eval, level_params, 0.0)), stage="before",
            adversary="none", support=support, env_steps=total_steps)
        add("random_return", np.asarray(evaluate(state.params, k_eval, level_params, 1.0)), stage="before",
            adversary="none", support=support, env_steps=total_steps)

    train_levels, off_levels = _levels(structure, training, float(config.novel_reward))
    visits = [np.asarray(compiled.visit_counts(state.params, k_visit, lv.params, jnp.asarray(lv.index_table)),
                         np.float64) for lv in train_levels]  # each [seeds, S_max, A]

    def evaluate_reward(stage, adversary, model_params):
        train_tables = [learned_tables(tabular_heads, model_params, lv) for lv in train_levels]
        off_tables = [learned_tables(tabular_heads, model_params, lv) for lv in off_levels]
        # [seeds, levels] per (metric, support); a level's nan (no visits) is skipped in the mean.
        on = [[compare(config, lv, table[s], visits[j][s, :lv.mdp.num_states])
               for j, (lv, table) in enumerate(zip(train_levels, train_tables))] for s in range(len(seeds))]
        off = [[compare(config, lv, table[s], None) for lv, table in zip(off_levels, off_tables)]
               for s in range(len(seeds))]
        results = {("epic", "visited"): (on, "visited"), ("epic", "all"): (on, "all"),
                   ("regret", "all"): (on, "regret"), ("epic", "offdist"): (off, "all"),
                   ("regret", "offdist"): (off, "regret")}
        for (metric, support), (per_level, key) in results.items():
            values = np.array([[res[key] for res in levels] for levels in per_level])
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-nan seed: a legitimate nan
                add(metric, np.nanmean(values, axis=1), stage=stage, adversary=adversary, support=support,
                    env_steps=total_steps)
        for name, lv, table in (("train", train_levels[0], train_tables[0]), ("offdist", off_levels[0], off_tables[0])):
            maps = np.stack([error_map(config, lv, table[s]) for s in range(len(seeds))])  # [seeds, N, N]
            for r in range(config.grid_size):
                for c in range(config.grid_size):
                    add("reward_error", maps[:, r, c], stage=stage, adversary=adversary, level=name, cell_row=r,
                        cell_col=c, env_steps=total_steps)
            if stage == "before" and adversary == "none":  # the level's objects, for the figure
                for (r, c), colour in zip(np.asarray(lv.params.obj_pos), np.asarray(lv.params.obj_colour)):
                    add("level_object_colour", [float(colour)] * len(seeds), stage="level", adversary="none",
                        level=name, cell_row=int(r), cell_col=int(c), env_steps=0)

    # Measurement control: the true reward against a potential-shaped, rescaled, shifted copy
    # of itself (EPIC must be ~0) and planning with a rescaled copy (regret must be 0).
    rng = np.random.default_rng(0)
    lv = train_levels[0]
    potential = rng.normal(size=lv.mdp.num_states)
    shaped = (2.0 * _broadcast(lv.true) + 0.5 + config.discount * potential[None, None, :]
              - potential[:, None, None])
    control = epic_distance(_broadcast(lv.true), shaped, config.discount, state_dist=lv.reachable.astype(float),
                            coverage=_reachable_coverage(lv))
    add("control_epic", [control] * len(seeds), stage="control", adversary="none", support="all", env_steps=0)
    add("control_regret", [regret(lv.mdp.transitions, lv.true, 2.0 * lv.true, lv.mdp.initial, config.max_steps)]
        * len(seeds), stage="control", adversary="none", support="all", env_steps=0)

    def curve_point(model_params) -> dict[str, list[float]]:
        """Per support (all, offdist): EPIC per seed, averaged over the levels."""
        out = {}
        for support, levels in (("all", train_levels), ("offdist", off_levels)):
            tables = [learned_tables(tabular_heads, model_params, lv) for lv in levels]
            out[support] = [np.mean([compare_epic(config, lv, table[s]) for lv, table in zip(levels, tables)])
                            for s in range(len(seeds))]
        return out

    def add_curve(adversary, queries, point):
        for support, values in point.items():
            add("epic", values, stage="curve", adversary=adversary, support=support, queries=queries,
                env_steps=total_steps)

    before_rows = len(rows)
    evaluate_reward("before", "none", state.params)
    before = rows[before_rows:]
    buffer = state.buffer
    replay = {"obs": buffer.obs.reshape(len(seeds), -1, buffer.obs.shape[-1]),
              "action": buffer.action.reshape(len(seeds), -1), "reward": buffer.reward.reshape(len(seeds), -1)}
    adversaries = [a for a in ADVERSARIES if a in config.adversaries]
    start_point = curve_point(state.params)  # 0 inputs picked: the trained agent, for every adversary
    for i, adversary in enumerate(adversaries):
        if adversary != "none":  # "before" is the same trained agent for every adversary
            rows.extend({**row, "adversary": adversary} for row in before if row["metric"] != "level_object_colour")
        adapted, stats, per_round = _compiled_adapt(structure)(
            state.params, k_adapt, replay, params, jnp.int32(ADVERSARIES.index(adversary)), config.finetune_lr,
            config.latent_step_size, config.latent_radius)
        for r in range(config.rounds):
            add_curve(adversary, (r + 1) * config.queries,
                      curve_point(jax.tree.map(lambda x, r=r: x[:, r], per_round)))
        add_curve(adversary, 0, start_point)
        for name, values in stats.items():
            add(name, np.asarray(values).mean(axis=1), stage="after", adversary=adversary, support="queries",
                env_steps=total_steps)
        evaluate_reward("after", adversary, adapted)
        save_agents(f"agent-after-{adversary}", adapted, kind="muzero", meta={**muzero_meta, "adversary": adversary})
        if progress is not None:
            progress(0.6 + 0.4 * (i + 1) / len(adversaries), f"adversary {adversary} done")
    return rows
