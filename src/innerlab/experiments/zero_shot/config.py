"""Zero-shot objectives: config, presets and conditions (no jax; see the package doc).

The PPO comparison agent keeps its own `ppo_*` fields rather than composing `PPOFields`: this
config also sets IRL (`discount`, `irl_lr`, `irl_steps`) and the builtin language model
(`lm_lr`, `lm_steps`), so unprefixed `lr`, `gamma` or `total_steps` would be ambiguous in
`--help`, and the names stay those of saved config.json files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from innerlab.experiments.base import Condition
from innerlab.experiments.errors import ConfigError
from innerlab.experiments.fields import TRACED, Gt, Min, NonEmpty, OneOf, PosInt, PPOFields, Satisfies, SeedFields
from innerlab.experiments.headlines import Headline
from innerlab.vocab import CHESS_OPPONENTS, TEXT_ENCODINGS

AGENTS = ("lm", "ppo", "oracle", "random")
"""`lm` is the language model named by `Config.lm`; its condition is named by its backend kind."""
BACKENDS = ("builtin", "hf", "openai")
"""Kinds of language model (`backend_kind`)."""
GAMES = ("objectworld", "rulegame")
ENCODINGS = TEXT_ENCODINGS
"""Text encodings of an observation (innerlab.vocab, which innerlab.envs.textworld also uses)."""
OPPONENTS = CHESS_OPPONENTS
"""Chess opponents (innerlab.vocab; the keys of innerlab.envs.chess_text.OPPONENTS)."""
SWEPT_FIELDS = ("agent", "lm")
HEADLINES = (
    Headline("EPIC to the truth", "epic_to_true", by=("agent", "env")),
)

_BACKEND_FORMS = "builtin | hf:<name or path> | openai:<model>@<http(s) url>"


def _backend_or_none(spec: str) -> str | None:
    if spec == "builtin":
        return "builtin"
    if re.match(r"^hf:.+", spec or ""):
        return "hf"
    if re.match(r"^openai:[^@]+@https?://.+", spec or ""):
        return "openai"
    return None


def backend_kind(spec: str) -> str:
    """'builtin', 'hf' or 'openai' from a backend spec (ConfigError otherwise)."""
    kind = _backend_or_none(spec)
    if kind is None:
        raise ConfigError("lm", f"{spec!r}; allowed: {_BACKEND_FORMS}")
    return kind


def _is_backend(spec: str) -> bool:
    return _backend_or_none(spec) is not None


def _open_unit(value: float) -> bool:
    return 0 < value < 1


@dataclass(frozen=True)
class Config(PPOFields, SeedFields):
    num_seeds: int = 3
    """Seeds per agent: the builtin model's and PPO's training seeds; for hf/openai (one fixed
    model) only the demonstrations' sampling differs between seeds."""
    lm: Annotated[str, Satisfies(_is_backend, _BACKEND_FORMS)] = "builtin"
    """The language model: builtin | hf:<name or path> | openai:<model>@<base_url> (key from $OPENAI_API_KEY)."""
    agents: Annotated[tuple[str, ...], OneOf(AGENTS), NonEmpty(), TRACED] = AGENTS
    """Which agents run: lm (the `lm` model) | ppo | oracle | random."""
    games: Annotated[tuple[str, ...], OneOf(GAMES), NonEmpty(), TRACED] = GAMES
    """Tabular text games to play: objectworld | rulegame."""
    encodings: Annotated[tuple[str, ...], OneOf(ENCODINGS), NonEmpty(), TRACED] = ENCODINGS
    """Text encodings the games are shown in: ascii | sentences | json."""
    # --- demonstrations and IRL ---
    demos: PosInt = 256
    """Trajectories sampled from each policy table, each from a random reachable state (IRL
    learns from the first part)."""
    heldout_fraction: Annotated[float, Satisfies(_open_unit, "0 < fraction < 1")] = 0.25
    """Fraction of the trajectories held out for held-out action prediction."""
    discount: Annotated[float, Satisfies(_open_unit, "0 < discount < 1")] = 0.9
    """Discount of IRL's soft value iteration and of EPIC."""
    irl_steps: PosInt = 300
    """Adam steps of maximum causal entropy IRL."""
    irl_lr: Annotated[float, Gt(0)] = 0.2
    """Adam step size of IRL; 0.05 had not converged in 300 steps on the weakly identified
    weights of items the agent avoids (the rule game's amber quib)."""
    irl_l2: Annotated[float, Min(0)] = 0.0
    """L2 penalty on IRL's weights. Zero by default: items an agent rarely meets carry little
    likelihood, so any penalty shrinks their weights towards 0 (1e-4 moved the oracle's EPIC
    to the truth from 0.03 to 0.11)."""
    oracle_beta: Annotated[float, Gt(0)] = 5.0
    """The oracle control acts soft-optimally for oracle_beta x the true reward."""
    # --- the builtin model ---
    family_games: PosInt = 48
    """Random games of the training family the builtin model's transcripts come from."""
    family_trajectories: PosInt = 6
    """Trajectories per family game, player (expert/novice/random) and encoding."""
    expert_beta: Annotated[float, Gt(0)] = 10.0
    """Skill of the transcripts' expert player: soft-optimal for expert_beta x the reward."""
    novice_beta: Annotated[float, Gt(0)] = 1.0
    """Skill of the transcripts' players: soft-optimal for beta x the reward (random: uniform)."""
    lm_width: PosInt = 64
    """Embedding and residual width of the builtin model."""
    lm_depth: PosInt = 2
    """Transformer blocks of the builtin model."""
    lm_heads: PosInt = 4
    """Attention heads of the builtin model (must divide lm_width)."""
    lm_max_len: PosInt = 256
    """Context of the builtin model in tokens (longer prompts are cut from the left)."""
    lm_steps: PosInt = 1500
    """Optimisation steps; 600 left the model acting like its marginal (no use of the prompt)."""
    lm_batch: PosInt = 32
    """Transcripts per optimisation step of the builtin model."""
    lm_lr: Annotated[float, Gt(0)] = 1e-2
    """Peak AdamW learning rate of the builtin model (warm-up, then cosine decay)."""
    lm_prompt_loss_weight: float = 0.1
    """Weight of the prompt's tokens in the builtin model's next-token loss (the move weighs 1).
    Predicting the prompt too (0.1) is what made the move learnable at all in a few minutes: at
    0 the model never used its prompt; at 1 the move is one target among ~150."""
    family_eval_games: PosInt = 8
    """Family games the builtin's skill-conditioning control is measured on."""
    # --- generating backends (openai) ---
    samples: PosInt = 1
    """Answers asked per state (the policy table is their empirical distribution)."""
    temperature: Annotated[float, Min(0)] = 0.0
    """Sampling temperature of a generating backend (0: greedy)."""
    timeout: Annotated[float, Gt(0)] = 30.0
    """Seconds a generating backend may take per request."""
    retries: Annotated[int, Min(0)] = 3
    """Retries of a failed request to a generating backend."""
    # --- PPO (the comparison agent; one agent per game, trained on its true reward). The shared
    # PPOFields, with this experiment's defaults and help: ---
    total_steps: int = 262_144
    """PPO agent's training environment steps per seed and game (rounded down to whole updates).
    131k left one seed in three on the rule game at the local optimum of ending the game on the
    harmless teal quib (return 0)."""
    num_envs: int = 64
    """PPO agent's parallel environments per seed."""
    rollout_len: int = 16
    """PPO agent's steps per environment per update."""
    lr: float = 1e-3
    """PPO agent's Adam learning rate (annealed linearly to 0); the builtin model's is lm_lr, IRL's irl_lr."""
    gamma: float = 0.95
    """PPO agent's discount factor (IRL's is `discount`)."""
    ppo_width: PosInt = 64
    """Hidden width of PPO's MLP."""
    ppo_depth: PosInt = 2
    """Hidden layers of PPO's MLP."""
    # --- chess ---
    chess_opponents: Annotated[tuple[str, ...], OneOf(OPPONENTS), TRACED] = OPPONENTS
    """Chess opponents: random | search (a depth-2 material search); may be empty."""
    chess_games: Annotated[int, Min(0)] = 2
    """Games per opponent and seed (colours alternate); 0 skips chess."""
    chess_max_plies: PosInt = 40
    """Plies before a game is adjudicated a draw."""
    progress_chunks: PosInt = 4
    """PPO and the builtin model train in this many jitted chunks (the last one may be shorter)
    so progress can be shown."""

    def cross_check(self) -> None:
        if self.lm_width % self.lm_heads:
            raise ConfigError("lm_heads", f"{self.lm_heads} must divide lm_width ({self.lm_width})")
        if round(self.demos * self.heldout_fraction) < 1 or round(self.demos * (1 - self.heldout_fraction)) < 1:
            raise ConfigError("demos", f"{self.demos} is too few to hold out heldout_fraction "
                              f"({self.heldout_fraction:g}) of them and keep some for IRL")


PRESETS = {
    # Seconds: every code path, tiny model and few demos (the controls need `quick`).
    "smoke": Config(num_seeds=2, encodings=("ascii", "json"), demos=16, irl_steps=40, family_games=4,
                    family_trajectories=1, lm_width=16, lm_depth=1, lm_heads=2, lm_max_len=192, lm_steps=10,
                    lm_batch=8, family_eval_games=1, total_steps=2048, num_envs=16, rollout_len=8,
                    chess_opponents=("random",), chess_games=1, chess_max_plies=6, progress_chunks=2),
    # Minutes on a 2-core laptop with the builtin model.
    "quick": Config(),
    # Publication scale: more seeds, a larger family and model, more demos and chess.
    "paper": Config(num_seeds=16, demos=256, family_games=256, family_trajectories=8, lm_width=128,
                    lm_depth=4, lm_steps=4000, lm_batch=64, total_steps=524_288, chess_games=8,
                    chess_max_plies=120),
}


def conditions(config: Config) -> list[Condition]:
    """One condition per agent, named by what acts: the `lm` agent by its backend kind."""
    out = []
    for agent in AGENTS:
        if agent not in config.agents:
            continue
        name, lm = (backend_kind(config.lm), config.lm) if agent == "lm" else (agent, agent)
        out.append(Condition(f"agent-{name}", {"agent": name, "lm": lm}))
    return out


def ppo_updates(config: Config) -> int:
    """PPO updates per seed and game: total_steps rounded down to whole updates."""
    return config.updates()


def env_steps(config: Config, fields: dict) -> int:
    """Environment steps per seed that the condition's RL training does: the PPO agent's, summed
    over the games it trains on (one agent per game, each total_steps rounded down to whole
    updates). 0 for every other agent: the builtin model learns from text transcripts by
    next-token prediction (its optimisation steps are the `train_steps` metric), and hf,
    openai, the oracle and the random policy are not trained."""
    if fields["agent"] != "ppo":
        return 0
    return len(config.games) * ppo_updates(config) * config.num_envs * config.rollout_len
