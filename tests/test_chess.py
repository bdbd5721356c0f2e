"""Text chess for language-model agents: golden renders, known-answer search, whole games."""

import ast
import inspect

import chess
import numpy as np
import pytest

from innerlab.agents.lm.base import Choice, Query, sampled_choice
from innerlab.agents.lm.play import GameResult, play_chess
from innerlab.envs import chess_text
from innerlab.envs.chess_text import MATE, best_moves, make_opponent, material, query, render, search_opponent


class UniformPolicy:
    """Every legal move equally likely: a random mover behind the LM interface."""

    name = "uniform"

    def choose(self, queries):
        return [Choice(probs=np.full(len(q.actions), 1 / len(q.actions))) for q in queries]


class GarbagePolicy:
    """A generating backend whose answers never name a legal move."""

    name = "garbage"

    def __init__(self):
        self.asked = []

    def choose(self, queries):
        self.asked.extend(queries)
        return [sampled_choice(["I resign.", "the knight, probably"], q) for q in queries]


def board_after(*sans):
    board = chess.Board()
    for san in sans:
        board.push_san(san)
    return board


# --- rendering and queries (golden) ------------------------------------------------------

INITIAL = """\
8 r n b q k b n r
7 p p p p p p p p
6 . . . . . . . .
5 . . . . . . . .
4 . . . . . . . .
3 . . . . . . . .
2 P P P P P P P P
1 R N B Q K B N R
  a b c d e f g h
To move: White"""

AFTER_E4_E5_NF3 = """\
8 r n b q k b n r
7 p p p p . p p p
6 . . . . . . . .
5 . . . . p . . .
4 . . . . P . . .
3 . . . . . N . .
2 P P P P . P P P
1 R N B Q K B . R
  a b c d e f g h
To move: Black
Last move: Nf3"""


def test_render_golden():
    assert render(chess.Board()) == INITIAL
    assert render(board_after("e4", "e5", "Nf3")) == AFTER_E4_E5_NF3
    assert render(board_after("e4", "e5", "Nf3"), "fen") == "rnbqkbnr/pppp1ppp/8/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R b KQkq - 1 2"


def test_query_initial_position():
    asked = query(chess.Board())
    assert isinstance(asked, Query)
    assert asked.actions == ("Na3", "Nc3", "Nf3", "Nh3", "a3", "a4", "b3", "b4", "c3", "c4",
                             "d3", "d4", "e3", "e4", "f3", "f4", "g3", "g4", "h3", "h4")
    assert asked.default == 0
    assert asked.prompt == (chess_text.RULES + "\n\nYou play White.\n" + INITIAL
                            + "\nLegal moves: " + ", ".join(asked.actions) + "\nAction:")
    assert asked.prompt.endswith("Action:")
    black = query(board_after("e4"), "fen")
    assert "You play Black.\n" + board_after("e4").fen() + "\nLegal moves: " in black.prompt
    assert len(black.actions) == 20


def test_envs_do_not_import_agents():
    tree = ast.parse(inspect.getsource(chess_text))
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    imported += [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert imported and not any(name.startswith("innerlab.agents") for name in imported)


# --- the search opponent (known answers) -------------------------------------------------

def test_search_finds_mate_in_one():
    board = chess.Board("6k1/5ppp/8/8/8/8/8/R5K1 w - - 0 1")  # back rank: Ra8#
    moves, value = best_moves(board)
    assert [board.san(m) for m in moves] == ["Ra8#"] and value == MATE - 1
    for seed in range(3):
        assert search_opponent(board, np.random.default_rng(seed)) == chess.Move.from_uci("a1a8")
    assert board.fen() == "6k1/5ppp/8/8/8/8/8/R5K1 w - - 0 1"  # the caller's board is untouched


def test_search_takes_hanging_queen_and_avoids_being_mated():
    board = chess.Board("4k3/8/8/3q4/8/8/3R4/4K3 w - - 0 1")
    assert search_opponent(board, np.random.default_rng(0)) == chess.Move.from_uci("d2d5")
    # Black to move must stop Ra8#: by giving the king air or stepping to f8 (Kh8 still loses).
    board = chess.Board("6k1/5ppp/8/8/8/8/8/R5K1 b - - 0 1")
    moves, value = best_moves(board)
    assert value > -MATE // 2
    assert all(san in {"Kf8", "f6", "f5", "g6", "g5", "h6", "h5"} for san in map(board.san, moves))


def plain_minimax(board, depth, ply=0):
    """The search's value without pruning or move ordering, for a parity check."""
    if depth == 0:
        if board.is_check() and not any(board.generate_legal_moves()):
            return -(MATE - ply)
        return material(board, board.turn)
    moves = list(board.legal_moves)
    if not moves:
        return -(MATE - ply) if board.is_check() else 0
    if board.is_insufficient_material():
        return 0
    values = []
    for move in moves:
        board.push(move)
        values.append(-plain_minimax(board, depth - 1, ply + 1))
        board.pop()
    return max(values)


def test_alpha_beta_ties_match_plain_minimax():
    rng = np.random.default_rng(3)
    for _ in range(3):  # positions along three random games
        board = chess.Board()
        for ply in range(40):
            if ply % 3 == 2:
                expected = {}
                for move in board.legal_moves:
                    board.push(move)
                    expected[move] = -plain_minimax(board, 1, 1)
                    board.pop()
                top = max(expected.values())
                moves, value = best_moves(board)
                assert value == top and set(moves) == {m for m, v in expected.items() if v == top}
            board.push(make_opponent("random")(board, rng))
            if board.is_game_over():
                break


# --- whole games ----------------------------------------------------------------------------

def policy_moves(result):
    return result.moves[0::2] if result.colour == "white" else result.moves[1::2]


def check_results(results, games, max_plies):
    assert len(results) == games and all(isinstance(r, GameResult) for r in results)
    assert [r.colour for r in results] == ["white", "black"] * (games // 2) + ["white"] * (games % 2)
    for r in results:
        assert r.score in {0.0, 0.5, 1.0}
        assert r.outcome == {0.0: "loss", 0.5: "draw", 1.0: "win"}[r.score]
        assert r.plies == len(r.moves) <= max_plies
        assert r.truncated == (r.termination == "max_plies") and (not r.truncated or r.plies == max_plies)
        board = board_after(*r.moves)  # the record replays as legal chess
        if r.truncated:  # adjudicated on material: 3 points ahead wins
            lead = material(board, chess.WHITE if r.colour == "white" else chess.BLACK)
            assert r.score == (1.0 if lead >= 3 else 0.0 if lead <= -3 else 0.5)
        outcome = board.outcome(claim_draw=False)
        assert (outcome is None) == r.truncated
        if r.termination == "checkmate":
            # the side that gave mate moved last: the policy wins iff it moved last
            policy_moved_last = (r.plies % 2 == 1) == (r.colour == "white")
            assert r.score == (1.0 if policy_moved_last else 0.0)


def test_search_beats_a_random_policy():
    results = play_chess(UniformPolicy(), "search", games=6, seed=0, max_plies=60)
    check_results(results, 6, 60)
    assert np.mean([r.score for r in results]) < 0.5
    assert sum(r.termination == "checkmate" and r.outcome == "loss" for r in results) >= 3
    assert all(r.illegal == 0 and r.answers == len(policy_moves(r)) for r in results)


def test_short_games_are_adjudicated_on_material():
    """40 plies rarely reach mate, but the search still wins material from a random mover."""
    adjudicated = play_chess(UniformPolicy(), "search", games=4, seed=3, max_plies=30)
    check_results(adjudicated, 4, 30)
    assert np.mean([r.score for r in adjudicated]) < 0.5
    drawn = play_chess(UniformPolicy(), "search", games=4, seed=3, max_plies=30, adjudicate=None)
    assert [r.moves for r in drawn] == [r.moves for r in adjudicated]
    assert all(r.score == 0.5 for r in drawn if r.truncated)


def test_random_vs_random_terminates_or_truncates():
    results = play_chess(UniformPolicy(), "random", games=4, seed=1, max_plies=40, encoding="fen")
    check_results(results, 4, 40)


def test_illegal_answers_fall_back_to_default_and_are_counted():
    policy = GarbagePolicy()
    results = play_chess(policy, "random", games=2, seed=0, max_plies=12)
    check_results(results, 2, 12)
    for r in results:
        assert r.illegal == 2 * len(policy_moves(r)) and r.answers == 2 * len(policy_moves(r)) > 0
    # every policy move was the default, the first legal move in SAN order
    white = results[0]
    board = chess.Board()
    for index, san in enumerate(white.moves):
        if index % 2 == 0:
            assert san == query(board).actions[0]
        board.push_san(san)
    assert len(policy.asked) == sum(len(policy_moves(r)) for r in results)


def test_argmax_takes_the_first_of_ties():
    results = play_chess(UniformPolicy(), "random", games=1, seed=0, max_plies=1, sample=False)
    assert results[0].moves == ("Na3",) and results[0].truncated


def test_deterministic_given_seed_and_independent_of_batching():
    first = play_chess(UniformPolicy(), "search", games=2, seed=5, max_plies=16)
    again = play_chess(UniformPolicy(), "search", games=2, seed=5, max_plies=16)
    other = play_chess(UniformPolicy(), "search", games=2, seed=6, max_plies=16)
    assert first == again
    assert [r.moves for r in first] != [r.moves for r in other]
    wider = play_chess(UniformPolicy(), "search", games=3, seed=5, max_plies=16)
    assert wider[:2] == first


# --- bad input ------------------------------------------------------------------------------

def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match=r"unknown opponent 'stockfish'.*\['random', 'search'\]"):
        make_opponent("stockfish")
    with pytest.raises(ValueError, match="unknown opponent"):
        play_chess(UniformPolicy(), "stockfish", games=1, seed=0)
    with pytest.raises(ValueError, match=r"unknown encoding 'unicode'.*ascii.*fen"):
        render(chess.Board(), "unicode")
    with pytest.raises(ValueError, match="unknown encoding"):
        query(chess.Board(), "unicode")
    with pytest.raises(ValueError, match="unknown encoding"):
        play_chess(UniformPolicy(), "random", games=1, seed=0, encoding="unicode")
    with pytest.raises(ValueError, match="max_plies"):
        play_chess(UniformPolicy(), "random", games=1, seed=0, max_plies=0)
    with pytest.raises(ValueError, match="White's move, not Black's"):
        query(chess.Board(), lm_colour=chess.BLACK)
    with pytest.raises(ValueError, match="game is over"):
        query(board_after("f3", "e5", "g4", "Qh4#"))

    class WrongLength(UniformPolicy):
        def choose(self, queries):
            return [Choice(probs=np.ones(2) / 2) for _ in queries]

    with pytest.raises(ValueError, match="20 finite non-negative probabilities"):
        play_chess(WrongLength(), "random", games=1, seed=0)
