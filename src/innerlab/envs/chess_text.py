"""Chess as a text game for language-model agents (host-side, python-chess; no JAX).

Env card
--------
What it is: standard chess against a fixed opponent. The language model sees the rules, its
colour, the position as text (`render`) and the list of legal moves, and answers with one
move. `query` builds that prompt; `innerlab.agents.lm.play.play_chess` plays whole games.

Observation: `render(board, encoding)`:
  * "ascii": the board from White's side (rank 8 at the top), one line per rank with its
    number on the left, files a-h underneath; White pieces upper case (PNBRQK), Black lower
    case, "." an empty square; then "To move: White|Black" and, when the board has a move
    history, "Last move: <SAN>".
  * "fen": the FEN string alone (it encodes the side to move, castling, en passant and the
    move counters, but no move history).

Actions: the legal moves in standard algebraic notation (SAN, e.g. "e4", "Nf3", "O-O",
"exd5", "e8=Q+"), sorted by Python string order (so piece moves and castling come before
pawn moves) and listed in the prompt. The default action, played when an answer names no
legal move, is the first move in that order (index 0).

Rewards / score, from the language model's side, at the end of a game: win 1, draw 0.5,
loss 0. There is no per-move reward.

Termination: `board.outcome(claim_draw=False)`: checkmate, stalemate, insufficient
material, the 75-move rule, fivefold repetition (draws that must be claimed, 50 moves and
threefold, are not claimed). Truncation: a game that reaches `max_plies` half-moves
without an outcome is flagged truncated and adjudicated by `agents.lm.play.play_chess`: won by
the side ahead by at least 3 points of material, drawn otherwise.

Opponents (`OPPONENTS`, `make_opponent`), each `(board, rng) -> chess.Move`:
  * "random": a uniformly random legal move.
  * "search": depth-2 alpha-beta minimax on material (P 1, N 3, B 3, R 5, Q 9; being mated
    -(MATE - plies to mate), so nearer mates count more; stalemate and insufficient material
    0), ties between equally good moves broken uniformly at random. It finds every mate in
    one and sees the opponent's immediate reply (no quiescence search), enough to beat a
    random mover.

Intended goal vs proxies: the goal is to win games; the score counts only the result, not
material or the legality of answers (illegal answers are counted separately by the policy's
`Choice.illegal`). Nothing shifts between train and test here beyond the opponent, colour
(alternated by the harness) and seed.
"""

from __future__ import annotations

from typing import Callable

import chess
import numpy as np

from innerlab.envs.text import Query
from innerlab.vocab import CHESS_ENCODINGS, CHESS_OPPONENTS

ENCODINGS = CHESS_ENCODINGS
COLOUR_NAMES = {chess.WHITE: "White", chess.BLACK: "Black"}

RULES = (
    "You are playing chess. Pieces: K king, Q queen, R rook, B bishop, N knight, P pawn; "
    "upper case letters are White's pieces, lower case Black's, '.' is an empty square. "
    "White moves first and the players alternate. Checkmate the opponent's king to win; "
    "stalemate, insufficient material, the 75-move rule, fivefold repetition or reaching the "
    "move limit is a draw. Answer with exactly one of the legal moves listed, written in "
    "standard algebraic notation as shown (e.g. e4, Nf3, O-O)."
)
"""The rules and answer format, the first part of every prompt."""


def render(board: chess.Board, encoding: str = "ascii") -> str:
    """Deterministic text of a position (see the module docstring for both encodings)."""
    if encoding == "fen":
        return board.fen()
    if encoding != "ascii":
        raise ValueError(f"unknown encoding {encoding!r}: use one of {ENCODINGS}")
    lines = []
    for rank in range(7, -1, -1):
        squares = []
        for file in range(8):
            piece = board.piece_at(chess.square(file, rank))
            squares.append(piece.symbol() if piece else ".")
        lines.append(f"{rank + 1} " + " ".join(squares))
    lines.append("  " + " ".join(chess.FILE_NAMES))
    lines.append(f"To move: {COLOUR_NAMES[board.turn]}")
    last = last_move_san(board)
    if last is not None:
        lines.append(f"Last move: {last}")
    return "\n".join(lines)


def last_move_san(board: chess.Board) -> str | None:
    """The SAN of the move that led to this position, or None without a move history."""
    if not board.move_stack:
        return None
    before = board.copy(stack=True)
    move = before.pop()
    return before.san(move)


def legal_moves_san(board: chess.Board) -> tuple[tuple[str, ...], tuple[chess.Move, ...]]:
    """The legal moves as (SAN strings, moves), both sorted by SAN in Python string order."""
    pairs = sorted((board.san(move), move) for move in board.legal_moves)
    return tuple(san for san, _ in pairs), tuple(move for _, move in pairs)


def query(board: chess.Board, encoding: str = "ascii", lm_colour: chess.Color | None = None) -> Query:
    """The Query (`innerlab.envs.text`) for the side to move: prompt = rules, colour,
    position, "Legal moves: <SAN, comma-separated>", "Action:"; actions = those moves.

    `lm_colour` defaults to the side to move (the model is asked only on its own turn); the
    default action is index 0, the first legal move in SAN string order. Raises ValueError
    when the game is over (no legal moves) or for an unknown encoding.
    """
    if lm_colour is None:
        lm_colour = board.turn
    if lm_colour != board.turn:
        raise ValueError(f"it is {COLOUR_NAMES[board.turn]}'s move, not {COLOUR_NAMES[lm_colour]}'s")
    position = render(board, encoding)
    actions, _ = legal_moves_san(board)
    if not actions:
        raise ValueError("the game is over: no legal moves to offer")
    prompt = (f"{RULES}\n\nYou play {COLOUR_NAMES[lm_colour]}.\n{position}\n"
              f"Legal moves: {', '.join(actions)}\nAction:")
    return Query(prompt=prompt, actions=actions, default=0)


def result_score(outcome: chess.Outcome | None, colour: chess.Color) -> float:
    """The score for `colour`: 1 win, 0.5 draw (or no outcome, i.e. adjudicated), 0 loss."""
    if outcome is None or outcome.winner is None:
        return 0.5
    return 1.0 if outcome.winner == colour else 0.0


# --- opponents -------------------------------------------------------------------------

Opponent = Callable[[chess.Board, np.random.Generator], chess.Move]

PIECE_VALUES = {chess.PAWN: 1, chess.KNIGHT: 3, chess.BISHOP: 3, chess.ROOK: 5, chess.QUEEN: 9, chess.KING: 0}
MATE = 10_000
"""Being mated scores -(MATE - plies from the root), so a nearer mate outweighs any material."""


def random_opponent(board: chess.Board, rng: np.random.Generator) -> chess.Move:
    """A uniformly random legal move (moves in python-chess's generation order)."""
    moves = list(board.legal_moves)
    return moves[int(rng.integers(len(moves)))]


def material(board: chess.Board, colour: chess.Color) -> int:
    """Material of `colour` minus its opponent's (P 1, N 3, B 3, R 5, Q 9)."""
    total = 0
    for piece_type, value in PIECE_VALUES.items():
        if value:
            total += value * (chess.popcount(board.pieces_mask(piece_type, colour))
                              - chess.popcount(board.pieces_mask(piece_type, not colour)))
    return total


def _ordered(board: chess.Board) -> list[chess.Move]:
    # Captures first (most valuable victim first) so alpha-beta cuts early; the order never
    # changes the value found, only the time taken.
    def key(move: chess.Move) -> int:
        victim = board.piece_type_at(move.to_square)
        return -PIECE_VALUES[victim] if victim else (-1 if board.is_en_passant(move) else 0)
    return sorted(board.legal_moves, key=key)


def _negamax(board: chess.Board, depth: int, alpha: int, beta: int, ply: int) -> int:
    """The value for the side to move, searched `depth` plies (fail-soft alpha-beta).

    Leaves are scored on material, except that a leaf in check with no legal move is mate;
    interior nodes with no legal move are mate or stalemate. Repetition and the 75-move rule
    are not searched (too slow for the little they change at depth 2).
    """
    if depth == 0:
        if board.is_check() and not any(board.generate_legal_moves()):
            return -(MATE - ply)
        return material(board, board.turn)
    moves = _ordered(board)
    if not moves:
        return -(MATE - ply) if board.is_check() else 0
    if board.is_insufficient_material():
        return 0
    best = -MATE - 1
    for move in moves:
        board.push(move)
        value = -_negamax(board, depth - 1, -beta, -alpha, ply + 1)
        board.pop()
        if value > best:
            best = value
        if best > alpha:
            alpha = best
        if alpha >= beta:
            break
    return best


def best_moves(board: chess.Board, depth: int = 2) -> tuple[list[chess.Move], int]:
    """All root moves of greatest minimax value (in generation order) and that value.

    Values are integers, so searching each root move with the window (best - 1, +inf) gives
    the exact value of every move that ties the best found so far and a bound below it for
    the rest: the ties are exact, with alpha-beta's cuts below them.
    """
    if depth < 1:
        raise ValueError(f"search depth must be at least 1, got {depth}")
    moves = list(board.legal_moves)
    if not moves:
        raise ValueError("the game is over: no legal moves to search")
    best_value, best = -MATE - 2, []
    for move in moves:
        board.push(move)
        value = -_negamax(board, depth - 1, -(MATE + 2), -(best_value - 1), 1)
        board.pop()
        if value > best_value:
            best_value, best = value, [move]
        elif value == best_value:
            best.append(move)
    return best, best_value


def search_opponent(board: chess.Board, rng: np.random.Generator, depth: int = 2) -> chess.Move:
    """The best move by `depth`-ply alpha-beta on material, ties broken uniformly with `rng`."""
    best, _ = best_moves(board.copy(stack=False), depth)
    return best[int(rng.integers(len(best)))]


OPPONENTS: dict[str, Opponent] = {"random": random_opponent, "search": search_opponent}
assert tuple(OPPONENTS) == CHESS_OPPONENTS  # the names configs offer (innerlab.vocab)


def make_opponent(name: str) -> Opponent:
    """The opponent `name` names (a key of OPPONENTS)."""
    if name not in OPPONENTS:
        raise ValueError(f"unknown opponent {name!r}: use one of {sorted(OPPONENTS)}")
    return OPPONENTS[name]


__all__ = ["COLOUR_NAMES", "ENCODINGS", "MATE", "OPPONENTS", "Opponent", "PIECE_VALUES", "RULES",
           "best_moves", "last_move_san", "legal_moves_san", "make_opponent", "material", "query",
           "random_opponent", "render", "result_score", "search_opponent"]
