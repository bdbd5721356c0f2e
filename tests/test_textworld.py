"""ObjectWorld as text games: golden renders, hand-worked transitions, the family, bad input."""

import numpy as np
import pytest

from innerlab.envs.textworld import (ENCODINGS, FAMILY_COLOURS, FAMILY_SHAPES, RULE_COLOURS, RULE_SHAPES,
                                     family_games, objectworld_game, rule_game)

RULES = ("Game: ObjectWorld. Move up, right, down or left on a 5x5 grid (row 1 at the top); stepping on an item "
         "collects its points.\n"
         "Items: r = red circle +1; b = blue circle -1; G = green square -1.\n"
         "The game ends when no item with positive points is left, or after 12 moves.")
START = {
    "ascii": "Map:\n....r\n.G...\n..@..\n.....\nb....",
    "sentences": ("You are at row 3, column 3. A red circle (+1) is 2 up and 2 right of you. A blue circle (-1) is "
                  "2 down and 2 left of you. A green square (-1) is 1 up and 1 left of you."),
    "json": ('{"you": [3, 3], "items": [{"item": "red circle", "points": 1, "at": [1, 5]}, '
             '{"item": "blue circle", "points": -1, "at": [5, 1]}, {"item": "green square", "points": -1, '
             '"at": [2, 2]}]}'),
}
UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3


@pytest.fixture(scope="module")
def world():
    return objectworld_game()


def start(game):
    return int(game.mdp.initial.argmax())


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_golden_start_render(world, encoding):
    assert world.render(start(world), encoding) == START[encoding]
    assert world.prompt(start(world), encoding) == f"{START[encoding]}\n{RULES}\nPlayer: expert\nAction:"


def test_hand_worked_path_collects_the_red_circle_and_ends(world):
    mdp, s = world.mdp, start(world)
    for action in (UP, UP, RIGHT):
        s = int(mdp.successor[s, action])
    assert world.render(s, "ascii") == "Map:\n...@r\n.G...\n.....\n.....\nb...."
    assert "A red circle (+1) is 1 right of you." in world.render(s, "sentences")
    assert mdp.state_action_reward[s, RIGHT] == 1.0
    assert mdp.successor[s, RIGHT] == mdp.terminal  # no positive item left: the game ends
    # Walking into the top edge does nothing.
    assert mdp.successor[s, UP] == s


def test_collecting_a_negative_item_scores_and_removes_it(world):
    mdp = world.mdp
    below = int(mdp.successor[start(world), LEFT])  # (row 3, col 2), just below the green square
    assert mdp.state_action_reward[start(world), LEFT] == 0.0
    assert mdp.state_action_reward[below, UP] == -1.0
    gone = int(mdp.successor[below, UP])
    assert gone != mdp.terminal  # the red circle is still there: the game goes on
    assert "green square" not in world.render(gone, "sentences")
    assert world.render(gone, "json").startswith('{"you": [2, 2]')


def test_rule_game_ends_at_the_first_item():
    game = rule_game()
    mdp, s = game.mdp, start(game)
    assert "A = amber quib -1" in game.rules and "t = teal zorp +1" in game.rules
    assert "as soon as you collect any item" in game.rules
    s = int(mdp.successor[s, RIGHT])  # (row 3, col 3); the amber quib is at (row 3, col 4)
    assert mdp.state_action_reward[s, RIGHT] == -1.0
    assert mdp.successor[s, RIGHT] == mdp.terminal


def test_queries_cover_the_playable_states(world):
    queries = world.queries("json")
    assert len(queries) == len(world.playable_states) > 0
    assert all(q.prompt.endswith("\nAction:") and q.actions == ("up", "right", "down", "left") and q.default == 0
               for q in queries)
    assert len({q.prompt for q in queries}) == len(queries)  # every state reads differently
    assert world.mdp.reachable[world.playable_states].all()
    assert start(world) in set(world.playable_states.tolist())


def test_transcript_is_prompt_then_move(world):
    text = world.transcript(start(world), RIGHT, "ascii", "novice")
    assert text == world.prompt(start(world), "ascii", "novice") + " right"


def test_family_is_deterministic_and_disjoint_from_the_rule_game():
    a, b = family_games(3, 6), family_games(3, 6)
    assert [g.rules for g in a] == [g.rules for g in b]
    assert [g.rules for g in family_games(4, 6)] != [g.rules for g in a]
    for g in a:
        assert set(g.colour_words) <= set(FAMILY_COLOURS) and set(g.shape_words) <= set(FAMILY_SHAPES)
        assert max(g.points(k) for k in range(g.env.num_objects)) > 0  # something is worth playing for
        text = " ".join(g.prompt(int(s), e) for s in g.playable_states[:5] for e in ENCODINGS)
        assert not any(w in text for w in RULE_COLOURS + RULE_SHAPES)


def test_bad_input(world):
    with pytest.raises(ValueError, match="encoding"):
        world.render(start(world), "yaml")
    with pytest.raises(ValueError, match="non-terminal"):
        world.render(world.mdp.terminal, "ascii")
    with pytest.raises(ValueError, match="player"):
        world.prompt(start(world), "ascii", player="grandmaster")
    assert np.isfinite(world.mdp.state_action_reward).all()
