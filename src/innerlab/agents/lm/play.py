"""Play whole games of text chess (`innerlab.envs.chess_text`) with a language-model policy.

    results = play_chess(make_policy("hf:gpt2"), opponent="search", games=10, seed=0)
    np.mean([r.score for r in results])   # the policy's mean score: win 1, draw 0.5, loss 0

The policy plays White in even-numbered games and Black in odd ones. The games are played
side by side: each round, the opponent moves in every game where it is to move, then the
policy answers every game in progress with one `choose` call (one query per game), so a
batching backend sees up to `games` prompts at once. Each game draws from its own numpy
Generators seeded from (seed, game index), one for the policy's sampling and one for the
opponent's tie-breaking, so a game's moves depend only on the seed, its index and the policy,
not on how the games are batched; with a deterministic policy the run is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import chess
import numpy as np

from innerlab.agents.lm.base import Choice, LMPolicy
from innerlab.envs.chess_text import ENCODINGS, make_opponent, material, query, result_score

OUTCOMES = {1.0: "win", 0.5: "draw", 0.0: "loss"}


@dataclass(frozen=True)
class GameResult:
    """One finished game, from the policy's side."""

    score: float
    """1 win, 0.5 draw, 0 loss; a game reaching max_plies is adjudicated on material (see play_chess)."""
    outcome: str
    """"win", "draw" or "loss"."""
    truncated: bool
    """The game reached max_plies without an outcome and was adjudicated."""
    plies: int
    """Half-moves played, both sides."""
    illegal: int
    """The policy's answers that named no legal move (the default move was counted instead)."""
    answers: int
    """The policy's answers in all (Choice.answers summed over its moves)."""
    moves: tuple[str, ...]
    """The game's moves in SAN, both sides, from the initial position."""
    colour: str
    """"white" or "black": the policy's side."""
    termination: str
    """How it ended: python-chess's Termination name in lower case ("checkmate", "stalemate",
    "insufficient_material", "seventyfive_moves", "fivefold_repetition") or "max_plies"."""


def pick_action(choice: Choice, n_actions: int, rng: np.random.Generator, sample: bool) -> int:
    """The index a Choice picks: sampled from its probs, or the argmax (ties -> first)."""
    probs = np.asarray(choice.probs, np.float64)
    if probs.shape != (n_actions,) or not np.all(np.isfinite(probs)) or np.any(probs < 0) or probs.sum() <= 0:
        raise ValueError(f"a Choice needs {n_actions} finite non-negative probabilities with a positive sum, "
                         f"got {probs!r}")
    if sample:
        return int(rng.choice(n_actions, p=probs / probs.sum()))
    return int(np.argmax(probs))


def play_chess(policy: LMPolicy, opponent: str, games: int, seed: int, max_plies: int = 80,
               encoding: str = "ascii", sample: bool = True, adjudicate: int | None = 3) -> list[GameResult]:
    """Play `games` games of chess between `policy` and the opponent `opponent` names.

    Args:
      policy: any LMPolicy; asked only on its own turn, with `chess_text.query`'s prompt.
      opponent: a key of `chess_text.OPPONENTS` ("random", "search").
      games: how many games; the policy is White in games 0, 2, ... and Black in 1, 3, ...
      seed: a non-negative int; game g uses Generators seeded with [seed, g, 0] (policy
        sampling) and [seed, g, 1] (opponent).
      max_plies: half-moves after which an unfinished game is adjudicated (truncated).
      adjudicate: a truncated game is won by the side ahead by at least this much material
        (P 1, N 3, B 3, R 5, Q 9) and drawn otherwise; None makes every truncated game a draw.
        Short games rarely end in mate, so without it a strong and a weak player both "draw"
        and the score cannot tell them apart.
      encoding: the position's text encoding, one of `chess_text.ENCODINGS`.
      sample: sample each move from the Choice's probs; else take the argmax (ties -> first).

    Returns: one GameResult per game, in game order.
    """
    move_opponent = make_opponent(opponent)
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown encoding {encoding!r}: use one of {ENCODINGS}")
    if not isinstance(games, int) or games < 0:
        raise ValueError(f"games must be a non-negative int, got {games!r}")
    if not isinstance(max_plies, int) or max_plies < 1:
        raise ValueError(f"max_plies must be a positive int, got {max_plies!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")

    boards = [chess.Board() for _ in range(games)]
    colours = [chess.WHITE if game % 2 == 0 else chess.BLACK for game in range(games)]
    policy_rngs = [np.random.default_rng([seed, game, 0]) for game in range(games)]
    opponent_rngs = [np.random.default_rng([seed, game, 1]) for game in range(games)]
    moves: list[list[str]] = [[] for _ in range(games)]
    illegal = [0] * games
    answers = [0] * games

    def in_progress(game: int) -> bool:
        board = boards[game]
        return len(board.move_stack) < max_plies and board.outcome(claim_draw=False) is None

    def push(game: int, move: chess.Move) -> None:
        moves[game].append(boards[game].san(move))
        boards[game].push(move)

    while True:
        for game in range(games):
            if boards[game].turn != colours[game] and in_progress(game):
                push(game, move_opponent(boards[game], opponent_rngs[game]))
        waiting = [game for game in range(games) if in_progress(game)]
        if not waiting:
            break
        queries = [query(boards[game], encoding, colours[game]) for game in waiting]
        choices = policy.choose(queries)
        if len(choices) != len(queries):
            raise ValueError(f"policy {policy.name!r} answered {len(choices)} choices to {len(queries)} queries")
        for game, asked, choice in zip(waiting, queries, choices):
            index = pick_action(choice, len(asked.actions), policy_rngs[game], sample)
            illegal[game] += int(choice.illegal)
            answers[game] += int(choice.answers)
            push(game, boards[game].parse_san(asked.actions[index]))

    results = []
    for game, board in enumerate(boards):
        outcome = board.outcome(claim_draw=False)
        score = result_score(outcome, colours[game])
        if outcome is None and adjudicate is not None:
            lead = material(board, colours[game])
            score = 1.0 if lead >= adjudicate else 0.0 if lead <= -adjudicate else 0.5
        results.append(GameResult(
            score=score, outcome=OUTCOMES[score], truncated=outcome is None, plies=len(board.move_stack),
            illegal=illegal[game], answers=answers[game], moves=tuple(moves[game]),
            colour="white" if colours[game] == chess.WHITE else "black",
            termination="max_plies" if outcome is None else outcome.termination.name.lower()))
    return results


__all__ = ["GameResult", "OUTCOMES", "pick_action", "play_chess"]
