"""ObjectWorld as text games, for language-model agents (host-side, deterministic).

Env card
--------
What: a fixed ObjectWorld level (`TextGame`) whose rules and observations are written as
text. The game is exactly the JAX env: its states, transitions and rewards are the level's
tabular export (`innerlab.envs.tabulate`), so what a language model does can be replayed,
scored and inverted (IRL) exactly.

Encodings of an observation (`ENCODINGS`):
  "ascii":     the grid, one row per line, one character per cell: '@' the player,
               '#' a wall, '.' empty, an item's symbol (its colour's initial, lower case
               for the first shape of the game and upper case for the second);
  "sentences": "You are at row 2, column 3. A red circle (+1) is 1 up and 1 right of you."
               (items placed relative to the player, with their points);
  "json":      {"you": [2, 3], "items": [{"item": "red circle", "points": 1, "at": [1, 4]}]}
               (absolute cells, with points).
Rows and columns are 1-based, row 1 at the top. The encodings hold the same state but make
different things explicit (the map shows only symbols, whose points are in the rules): how
an agent's objective changes with them is what the cross-encoding measure reads.

Actions: the words "up", "right", "down", "left" (ObjectWorld's 0..3); an answer naming none
of them is illegal and replaced by the declared default action, "up".

Rules (`TextGame.rules`): the grid, the moves, each item kind present with its symbol and its
points, and when the game ends; the same text in every encoding.

Rewards, termination: ObjectWorld's (see `innerlab.envs.objectworld`): collecting an item
gives its points; the game ends when no item with positive points is left (or, in games that
say so, as soon as any item is collected), or after `max_steps` moves.

Games: `objectworld_game()` (ObjectWorld's own colours and reward: red +1, blue and green
-1), `rule_game()` (a rule set of our own with invented item words, not seen in the
builtin model's training family), and `family_games(seed, count)` (random levels and rules
from the training vocabulary, the builtin model's training family).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

import numpy as np

from innerlab.envs.text import Query
from innerlab.envs.objectworld import ACTION_NAMES, EnvParams, ObjectWorld, make_params
from innerlab.envs.tabular import TabularMDP, tabulate
from innerlab.vocab import TEXT_ENCODINGS

ENCODINGS = TEXT_ENCODINGS
PLAYERS = ("expert", "novice", "random")
DEFAULT_ACTION = 0  # "up": the declared replacement for an illegal answer

# The builtin model's training vocabulary; initials are distinct so ascii symbols are.
FAMILY_COLOURS = ("red", "blue", "green", "yellow", "purple", "orange", "white", "khaki")
FAMILY_SHAPES = ("circle", "square", "star", "cross")
# The rule game's words appear nowhere in the family, so a model meets them first in its rules.
RULE_COLOURS = ("amber", "teal")
RULE_SHAPES = ("zorp", "quib")

# One env per shape signature; the view matters only to agents that read arrays (PPO).
_SIZE, _OBJECTS, _COLOURS, _SHAPES = 5, 3, 3, 2


@functools.lru_cache(maxsize=None)
def text_env(size: int = _SIZE, num_objects: int = _OBJECTS, num_colours: int = _COLOURS,
             num_shapes: int = _SHAPES) -> ObjectWorld:
    """The ObjectWorld that text games of this shape run on (egocentric view for array agents)."""
    return ObjectWorld(size=size, num_objects=num_objects, num_colours=num_colours, num_shapes=num_shapes,
                       obs_view="egocentric")


@dataclass(frozen=True)
class TextGame:
    """A fixed ObjectWorld level with words for its colours and shapes."""

    name: str
    """Short id used in results ("objectworld", "rulegame", "family-3")."""
    title: str
    """The game's name in its rules."""
    env: ObjectWorld
    params: EnvParams
    colour_words: tuple[str, ...]
    """[C] the word for each colour index."""
    shape_words: tuple[str, ...]
    """[S] the word for each shape index."""

    def __post_init__(self):
        if len(self.colour_words) != self.env.num_colours or len(self.shape_words) != self.env.num_shapes:
            raise ValueError(f"need {self.env.num_colours} colour words and {self.env.num_shapes} shape words")
        initials = [w[0] for w in self.colour_words]
        if len(set(initials)) != len(initials):
            raise ValueError(f"colour words need distinct initials (they are the map symbols): {self.colour_words}")

    # -- the level ------------------------------------------------------------------------
    @functools.cached_property
    def mdp(self) -> TabularMDP:
        return tabulate(self.env, self.params)

    @property
    def size(self) -> int:
        return self.env.size

    @property
    def max_steps(self) -> int:
        return int(self.params.max_steps_in_episode)

    @functools.cached_property
    def _objects(self) -> list[tuple[int, int, int, int]]:
        """(row, col, colour, shape) of each object of the level (present at the start or not)."""
        p = self.params
        return [(int(r), int(c), int(col), int(sh)) for (r, c), col, sh in
                zip(np.asarray(p.obj_pos), np.asarray(p.obj_colour), np.asarray(p.obj_shape))]

    def item(self, colour: int, shape: int) -> str:
        return f"{self.colour_words[colour]} {self.shape_words[shape]}"

    def symbol(self, colour: int, shape: int) -> str:
        initial = self.colour_words[colour][0]
        return initial.upper() if shape % 2 else initial.lower()

    def points(self, index: int) -> float:
        p = self.params
        _, _, colour, shape = self._objects[index]
        return float(np.asarray(p.reward_table)[colour, shape] + np.asarray(p.obj_reward)[index])

    # -- text -----------------------------------------------------------------------------
    @functools.cached_property
    def rules(self) -> str:
        """The rules, the same for every encoding (see the module docstring)."""
        n = self.size
        kinds, lines = set(), []
        present = np.asarray(self.params.obj_present)
        for index, (_, _, colour, shape) in enumerate(self._objects):
            if present[index] and (colour, shape) not in kinds:
                kinds.add((colour, shape))
        for colour, shape in sorted(kinds):
            value = float(np.asarray(self.params.reward_table)[colour, shape])
            lines.append(f"{self.symbol(colour, shape)} = {self.item(colour, shape)} {_signed(value)}")
        if bool(self.params.terminate_on_collect):
            end = "The game ends as soon as you collect any item"
        elif bool(self.params.terminate_when_rewarded_collected):
            end = "The game ends when no item with positive points is left"
        else:
            end = "The game goes on until the move limit"
        return (f"Game: {self.title}. Move up, right, down or left on a {n}x{n} grid (row 1 at the top); "
                f"stepping on an item collects its points.\n"
                f"Items: " + "; ".join(lines) + ".\n"
                f"{end}, or after {self.max_steps} moves.")

    def render(self, state: int, encoding: str) -> str:
        """The observation of tabular state `state` (not the terminal state) in `encoding`."""
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
        mdp = self.mdp
        if not 0 <= state < mdp.num_states or state == mdp.terminal:
            raise ValueError(f"state must be a non-terminal state index in [0, {mdp.terminal}), got {state}")
        row, col = (int(x) for x in mdp.agent_pos[state])
        items = [(r, c, self.item(colour, shape), self.symbol(colour, shape), _number(self.points(index)))
                 for index, (r, c, colour, shape) in enumerate(self._objects) if mdp.present[state, index]]
        walls = np.asarray(self.params.walls)
        if encoding == "ascii":
            grid = [["#" if walls[r, c] else "." for c in range(self.size)] for r in range(self.size)]
            for r, c, _, symbol, _ in items:
                grid[r][c] = symbol
            grid[row][col] = "@"
            return "Map:\n" + "\n".join("".join(line) for line in grid)
        if encoding == "sentences":
            parts = [f"You are at row {row + 1}, column {col + 1}."]
            parts += [f"A {name} ({_signed(points)}) is {_relative(r - row, c - col)}."
                      for r, c, name, _, points in items]
            if not items:
                parts.append("There are no items left.")
            parts += [f"A wall is {_relative(r - row, c - col)}." for r, c in zip(*np.nonzero(walls))]
            return " ".join(parts)
        record = {"you": [row + 1, col + 1],
                  "items": [{"item": name, "points": points, "at": [r + 1, c + 1]} for r, c, name, _, points in items]}
        if walls.any():
            record["walls"] = [[int(r) + 1, int(c) + 1] for r, c in zip(*np.nonzero(walls))]
        return json.dumps(record, separators=(", ", ": "))

    def prompt(self, state: int, encoding: str, player: str = "expert") -> str:
        """The observation, the rules, who plays, then "Action:" (where the answer begins).

        The observation comes first so that it always starts at the same position: a small
        model with absolute positions reads a map cell by where it is."""
        if player not in PLAYERS:
            raise ValueError(f"player must be one of {PLAYERS}, got {player!r}")
        return f"{self.render(state, encoding)}\n{self.rules}\nPlayer: {player}\nAction:"

    def query(self, state: int, encoding: str, player: str = "expert") -> Query:
        return Query(self.prompt(state, encoding, player), ACTION_NAMES, DEFAULT_ACTION)

    @property
    def playable_states(self) -> np.ndarray:
        """Indices of the non-terminal states reachable from the start: the states a policy table
        needs (the others never occur)."""
        mdp = self.mdp
        return np.nonzero(mdp.reachable[:mdp.terminal])[0]

    def queries(self, encoding: str, player: str = "expert") -> list[Query]:
        """One query per playable state, in `playable_states` order: a policy's answers to these
        are its whole policy table for the game."""
        return [self.query(int(s), encoding, player) for s in self.playable_states]

    def transcript(self, state: int, action: int, encoding: str, player: str) -> str:
        """A training record: the prompt followed by the action taken."""
        return f"{self.prompt(state, encoding, player)} {ACTION_NAMES[action]}"


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def _relative(rows: int, cols: int) -> str:
    """'2 up and 1 right of you' from a (row, col) offset."""
    words = []
    if rows:
        words.append(f"{abs(rows)} {'down' if rows > 0 else 'up'}")
    if cols:
        words.append(f"{abs(cols)} {'right' if cols > 0 else 'left'}")
    return " and ".join(words) + " of you" if words else "where you are"


def _signed(value: float) -> str:
    text = f"{value:g}"
    return text if value <= 0 else "+" + text


def make_game(name: str, title: str, colour_words, shape_words, agent: tuple[int, int],
              objects: list[tuple[int, int, int, int]], reward_table, *, terminate_on_collect: bool = False,
              max_steps: int = 12) -> TextGame:
    """A game from its layout: objects are (row, col, colour, shape) (0-based), reward_table [C, S]."""
    env = text_env()
    if len(objects) != env.num_objects:
        raise ValueError(f"text games have {env.num_objects} objects, got {len(objects)}")
    params = make_params(env, randomize_positions=False, agent_start=list(agent),
                         obj_pos=[[r, c] for r, c, _, _ in objects], obj_colour=[o[2] for o in objects],
                         obj_shape=[o[3] for o in objects], reward_table=reward_table,
                         terminate_on_collect=terminate_on_collect, max_steps_in_episode=max_steps)
    return TextGame(name, title, env, params, tuple(colour_words), tuple(shape_words))


def objectworld_game() -> TextGame:
    """ObjectWorld's own rule (colour 0 +1, others -1) on a fixed level, in its own words."""
    return make_game("objectworld", "ObjectWorld", ("red", "blue", "green"), ("circle", "square"),
                     agent=(2, 2), objects=[(0, 4, 0, 0), (4, 0, 1, 0), (1, 1, 2, 1)],
                     reward_table=[[1.0, 1.0], [-1.0, -1.0], [-1.0, -1.0]])


def rule_game() -> TextGame:
    """Zorps and quibs: a rule set of our own, in words the builtin model never saw.

    Points follow the shape, not the colour (a zorp of either colour +1, an amber quib -1, a
    teal quib 0), and the first item collected ends the game: the player must walk past the
    nearer quib to the zorp.
    """
    return make_game("rulegame", "Zorps and quibs", (*RULE_COLOURS, "ochre"), RULE_SHAPES,
                     agent=(2, 1), objects=[(2, 3, 0, 1), (0, 4, 1, 0), (4, 3, 1, 1)],
                     reward_table=[[1.0, -1.0], [1.0, 0.0], [1.0, -1.0]], terminate_on_collect=True)


def family_games(seed: int, count: int) -> list[TextGame]:
    """`count` random games of the builtin model's training family: random levels, words from
    FAMILY_COLOURS/FAMILY_SHAPES, points in {-1, 0, +1} with at least one positive item present,
    and one game in four ending at the first item collected."""
    rng = np.random.default_rng(seed)
    env = text_env()
    n, k = env.size, env.num_objects
    games = []
    while len(games) < count:
        colours = tuple(rng.choice(FAMILY_COLOURS, env.num_colours, replace=False))
        shapes = tuple(rng.choice(FAMILY_SHAPES, env.num_shapes, replace=False))
        cells = rng.choice(n * n, k + 1, replace=False)
        kinds = [(int(rng.integers(env.num_colours)), int(rng.integers(env.num_shapes))) for _ in range(k)]
        table = rng.choice([-1.0, 0.0, 1.0], (env.num_colours, env.num_shapes))
        if not any(table[c, s] > 0 for c, s in kinds):
            continue
        objects = [(int(cell // n), int(cell % n), c, s) for cell, (c, s) in zip(cells[1:], kinds)]
        games.append(make_game(f"family-{len(games)}", f"Collect {len(games)}", colours, shapes,
                               agent=(int(cells[0] // n), int(cells[0] % n)), objects=objects,
                               reward_table=table.tolist(), terminate_on_collect=bool(rng.random() < 0.25)))
    return games
