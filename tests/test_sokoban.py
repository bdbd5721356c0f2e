"""Sokoban: hand-worked transitions and rewards, deadlocks, the exact solver on levels solved by
hand, the generator (solvable, replayable in the JAX env, deterministic, disjoint cached
splits), text rendering, jit/vmap parity and bank resets, params checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from innerlab.envs.sokoban import MOVES, EnvState, Sokoban, bank_params, level_params, simple_deadlock, state_text
from innerlab.envs.sokoban_levels import LevelSet, generate, level_sets, live_cells, solve

UP, RIGHT, DOWN, LEFT, THINK = 0, 1, 2, 3, 4
SIZE = 7

# One env object per configuration for the hand-worked tests: gymnax jits `step` and `reset`
# with `self` static, and every bank below has one 7x7 level, so each compiles once.
ENV = Sokoban(size=SIZE, think_action=True)


def level(*rows: str, pad: str = "#") -> LevelSet:
    """A 7x7 level from its top rows (padded to 7 columns and rows with walls), not solved."""
    rows = [row.ljust(SIZE, pad) for row in rows] + [pad * SIZE] * (SIZE - len(rows))
    return LevelSet.from_text([rows], solve_levels=False)


def start(levels: LevelSet, **overrides):
    params = bank_params(ENV, levels, **overrides)
    obs, state = ENV.reset(jax.random.key(0), params)
    return params, state


def step(state, action, params):
    return ENV.step(jax.random.key(1), state, jnp.int32(action), params)


def cell(state) -> tuple[int, int]:
    return tuple(int(v) for v in np.asarray(state.player))


def box_cells(state) -> list[tuple[int, int]]:
    return [tuple(int(v) for v in rc) for rc in np.argwhere(np.asarray(state.boxes))]


# -- transitions -------------------------------------------------------------------------------

def test_walking_into_a_wall_stays_and_pays_the_step():
    params, state = start(level("#######",
                                "#@$ . #"))
    obs, state, reward, terminated, truncated, info = step(state, UP, params)
    assert cell(state) == (1, 1) and int(state.time) == 1
    assert float(reward) == pytest.approx(-0.1)
    assert not terminated and not truncated
    assert not info["pushed"] and int(info["push_from"]) == -1 and int(info["push_dir"]) == -1
    assert np.asarray(info["player_pos"]).tolist() == [1, 1] and not info["thought"]
    assert int(info["boxes_on_target"]) == 0 and not info["solved"]


def test_a_push_into_a_free_cell_moves_player_and_box():
    params, state = start(level("#######",
                                "#@$ . #"))
    obs, state, reward, terminated, _, info = step(state, RIGHT, params)
    assert cell(state) == (1, 2) and box_cells(state) == [(1, 3)]
    assert float(reward) == pytest.approx(-0.1) and not terminated
    assert bool(info["pushed"]) and int(info["push_from"]) == 1 * SIZE + 2 and int(info["push_dir"]) == RIGHT
    assert np.asarray(info["player_pos"]).tolist() == [1, 2]
    image = np.asarray(obs).reshape(ENV.image_shape)  # planes wall, target, box, player
    assert image[2, 1, 3] == 1 and image[2].sum() == 1 and image[3, 1, 2] == 1 and image[3].sum() == 1
    assert image[1, 1, 4] == 1 and image[0, 0].all()


@pytest.mark.parametrize("rows,action", [
    (("#######", "#  .  #", "#$@   #"), LEFT),   # a box against the wall
    (("#######", "#@$$..#"), RIGHT),              # a box against a box
])
def test_a_blocked_push_moves_nothing(rows, action):
    params, state = start(level(*rows))
    before = box_cells(state)
    obs, after, reward, terminated, _, info = step(state, action, params)
    assert cell(after) == cell(state) and box_cells(after) == before
    assert float(reward) == pytest.approx(-0.1) and not info["pushed"] and int(info["push_from"]) == -1


def test_push_onto_and_off_a_target_and_from_target_to_target():
    params, state = start(level("#######",
                                "#@$.  #",
                                "#  $ .#"))
    _, on, reward, terminated, _, info = step(state, RIGHT, params)
    assert float(reward) == pytest.approx(1.0 - 0.1) and int(info["boxes_on_target"]) == 1
    assert not terminated and not info["solved"]
    _, off, reward, _, _, info = step(on, RIGHT, params)  # on to the floor at (1, 4)
    assert box_cells(off) == [(1, 4), (2, 3)]
    assert float(reward) == pytest.approx(-1.0 - 0.1) and int(info["boxes_on_target"]) == 0

    params, state = start(level("#######",
                                "#@*.  #",
                                "#  $  #"))
    _, moved, reward, _, _, info = step(state, RIGHT, params)  # target (1, 2) to target (1, 3)
    assert box_cells(moved) == [(1, 3), (2, 3)] and bool(info["pushed"])
    assert float(reward) == pytest.approx(-0.1) and int(info["boxes_on_target"]) == 1


def test_solving_terminates_with_the_solve_bonus_and_auto_resets():
    params, state = start(level("#######",
                                "#@$.  #",
                                "#    *#"))
    obs, after, reward, terminated, truncated, info = step(state, RIGHT, params)
    assert float(reward) == pytest.approx(10.0 + 1.0 - 0.1)
    assert bool(terminated) and not truncated and bool(info["solved"]) and int(info["boxes_on_target"]) == 2
    # gymnax's step reset the env; the solved position is in final_observation.
    assert cell(after) == (1, 1) and int(after.time) == 0 and box_cells(after) == [(1, 2), (2, 5)]
    final = np.asarray(info["final_observation"]).reshape(ENV.image_shape)
    assert final[2, 1, 3] == 1 and final[3, 1, 2] == 1
    np.testing.assert_array_equal(obs, ENV.get_obs(state))


def test_rewards_are_params():
    params, state = start(level("#######",
                                "#@$.  #"), step_penalty=-0.5, box_on_reward=2.0, solve_reward=3.0)
    _, _, reward, terminated, _, _ = step(state, RIGHT, params)
    assert float(reward) == pytest.approx(-0.5 + 2.0 + 3.0) and bool(terminated)


def test_truncation_at_max_steps():
    params, state = start(level("#######",
                                "#@$ . #"), max_steps_in_episode=3)
    for t in range(3):
        _, state, reward, terminated, truncated, info = step(state, UP, params)
        assert not terminated and bool(truncated) == (t == 2)
    assert int(state.time) == 0  # auto-reset
    assert bool(info["truncated"]) and not info["terminated"]


def test_think_moves_nothing_advances_the_clock_and_costs():
    params, state = start(level("#######",
                                "#@$ . #"), think_cost=0.05)
    _, after, reward, terminated, _, info = step(state, THINK, params)
    assert cell(after) == (1, 1) and box_cells(after) == [(1, 2)] and int(after.time) == 1
    assert float(reward) == pytest.approx(-0.1 - 0.05)
    assert bool(info["thought"]) and not info["pushed"] and int(info["push_dir"]) == -1
    _, _, reward, _, _, info = step(after, RIGHT, params)  # a move pays no think cost
    assert float(reward) == pytest.approx(-0.1) and not info["thought"]


def test_spaces_and_views():
    plain = Sokoban(size=SIZE)
    assert plain.num_actions == 4 and ENV.num_actions == 5 and ENV.action_space().n == 5
    params, state = start(level("#######",
                                "#@$ . #"))
    assert ENV.observation_space().shape == ENV.get_obs(state).shape == (4 * SIZE * SIZE,)
    assert ENV.image_shape == (4, SIZE, SIZE)
    ego = Sokoban(size=SIZE, obs_view="egocentric")
    view = np.asarray(ego.get_obs(state)).reshape(ego.image_shape)
    assert ego.observation_space().shape == (3 * 13 * 13,)
    centre = SIZE - 1  # the player at (1, 1) is drawn at the centre
    assert view[2, centre, centre + 1] == 1 and view[1, centre, centre + 3] == 1  # box right, target 3 right
    assert view[0, centre - 1, centre] == 1 and view[0, 0, 0] == 1                 # wall above; beyond the grid
    with pytest.raises(ValueError, match="obs_view"):
        Sokoban(size=SIZE, obs_view="rgb")


# -- deadlocks and the solver --------------------------------------------------------------------

def test_a_push_into_a_corner_is_a_simple_deadlock_and_unsolvable():
    params, state = start(level("#######",
                                "# $@ .#",
                                "#     #"))
    assert not simple_deadlock(state.boxes, state.walls, state.targets)
    assert solve(np.asarray(state.walls), np.asarray(state.targets), np.asarray(state.boxes), cell(state)) is not None
    _, stuck, *_ = step(state, LEFT, params)
    assert box_cells(stuck) == [(1, 1)]
    assert bool(simple_deadlock(stuck.boxes, stuck.walls, stuck.targets))
    assert solve(np.asarray(stuck.walls), np.asarray(stuck.targets), np.asarray(stuck.boxes), cell(stuck)) is None
    # A box in a corner on its target is no deadlock; batches are checked per level.
    batch = np.stack([np.asarray(stuck.boxes), np.asarray(stuck.boxes)])
    targets = np.stack([np.asarray(stuck.targets), np.asarray(stuck.boxes)])
    assert simple_deadlock(batch, np.asarray(stuck.walls)[None], targets).tolist() == [True, False]
    assert not live_cells(np.asarray(stuck.walls), np.asarray(stuck.targets))[1, 1]


# Levels solved by hand (see each comment), with their optimal action lists.
HAND_SOLVED = [
    # A corridor: three pushes right.
    (["#######",
      "#@$  .#"], [RIGHT, RIGHT, RIGHT]),
    # The box is between the player and the wrong side: walk round it (5 moves) and push left.
    (["#######",
      "#     #",
      "#@.$  #",
      "#     #"], None),
    # Two boxes: push the top one (1), step left and down (2), push the bottom one (1) = 4;
    # the other order costs 1 + 1 + 2 + 1 = 5.
    (["#######",
      "#@$.  #",
      "# $.  #"], [RIGHT, LEFT, DOWN, RIGHT]),
]
HAND_LENGTHS = [3, 6, 4]


@pytest.fixture(scope="module")
def hand_levels() -> LevelSet:
    return LevelSet.from_text([rows + ["#" * SIZE] * (SIZE - len(rows)) for rows, _ in HAND_SOLVED])


def test_the_solver_finds_the_hand_worked_optimal_lengths(hand_levels):
    assert hand_levels.solution_length.tolist() == HAND_LENGTHS
    for i, (_, expected) in enumerate(HAND_SOLVED):
        actions = solve(*hand_levels.level(i))
        assert len(actions) == HAND_LENGTHS[i]
        if expected is not None:
            assert actions == expected
    # Round the box by the top or the bottom: both are optimal, either ends with the push left.
    assert solve(*hand_levels.level(1))[-1] == LEFT


def test_solver_edge_cases(hand_levels):
    walls, targets, boxes, player = hand_levels.level(0)
    assert solve(walls, targets, targets, player) == []                    # already solved
    assert solve(walls, targets, boxes, player, max_states=2) is None      # over budget
    # A grid without its wall ring gets one: the same corridor, cut to its inner rows.
    assert len(solve(walls[1:2, 1:-1], targets[1:2, 1:-1], boxes[1:2, 1:-1], (0, 0))) == 3


def rollout(env: Sokoban, levels: LevelSet, actions: np.ndarray) -> dict[str, np.ndarray]:
    """Play actions [T, L] in the JAX env, one env per level (a bank of one: the auto-reset
    restarts it), in one compiled scan. Returns [T, L, ...] terminated, reward and info."""
    bank = bank_params(env, levels, max_steps_in_episode=len(actions) + 1)
    per_level = jax.vmap(level_params, (None, 0))(bank, jnp.arange(len(levels)))

    @jax.jit
    def run(actions):
        keys = jax.random.split(jax.random.key(0), len(levels))
        _, state = jax.vmap(env.reset)(keys, per_level)

        def body(state, action):
            _, state, reward, terminated, _, info = jax.vmap(env.step)(keys, state, action, per_level)
            return state, {"terminated": terminated, "reward": reward, **info}

        return jax.lax.scan(body, state, actions)[1]

    return jax.tree.map(np.asarray, run(jnp.asarray(actions, jnp.int32)))


def replay(env: Sokoban, levels: LevelSet, solutions: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Each level's action list played in the JAX env (padded with UP after its end); [T, L]
    terminated and reward."""
    actions = np.full((max(len(s) for s in solutions), len(levels)), UP, np.int32)
    for i, solution in enumerate(solutions):
        actions[:len(solution), i] = solution
    trace = rollout(env, levels, actions)
    return trace["terminated"], trace["reward"]


def first_termination(terminated: np.ndarray) -> list[int]:
    """[L] the step count at which each env first terminated (-1 if never)."""
    return [int(np.argmax(column)) + 1 if column.any() else -1 for column in terminated.T]


def test_hand_solutions_replayed_in_the_env_solve_in_exactly_their_length(hand_levels):
    solutions = [solve(*hand_levels.level(i)) for i in range(len(hand_levels))]
    terminated, reward = replay(ENV, hand_levels, solutions)
    assert first_termination(terminated) == HAND_LENGTHS
    # Corridor: three steps, one box on: 3 * -0.1 + 1 + 10.
    assert reward[:3, 0].sum() == pytest.approx(-0.3 + 1.0 + 10.0)


# -- generator and level sets --------------------------------------------------------------------

@pytest.fixture(scope="module")
def generated() -> LevelSet:
    return generate(30, size=8, num_boxes=2, seed=0)


def test_generated_levels_are_solvable_distinct_and_replay_in_the_env(generated):
    assert len(generated) == 30 and generated.walls.shape == (30, 8, 8)
    assert (generated.boxes.sum((1, 2)) == 2).all() and (generated.targets.sum((1, 2)) == 2).all()
    assert (generated.walls[:, [0, -1]].all() and generated.walls[:, :, [0, -1]].all())  # the outer ring
    assert not (generated.boxes & generated.targets).any()  # reverse play left every box off every target
    assert len({generated.text(i) for i in range(30)}) == 30
    solutions = [solve(*generated.level(i)) for i in range(30)]
    assert [len(s) for s in solutions] == generated.solution_length.tolist()
    assert generated.solution_length.min() >= 3
    terminated, _ = replay(Sokoban(size=8), generated, solutions)
    assert first_termination(terminated) == generated.solution_length.tolist()


def reference_step(walls, targets, boxes, player, action):
    """Sokoban's rules written out plainly: (boxes, player, reward, solved, push_from)."""
    (dr, dc), (r, c) = MOVES[action], player
    ahead, beyond = (r + dr, c + dc), (r + 2 * dr, c + 2 * dc)
    boxes, push_from, before = boxes.copy(), -1, int((boxes & targets).sum())
    if boxes[ahead] and not walls[beyond] and not boxes[beyond]:
        boxes[ahead], boxes[beyond] = False, True
        player, push_from = ahead, ahead[0] * walls.shape[1] + ahead[1]
    elif not walls[ahead] and not boxes[ahead]:
        player = ahead
    after = int((boxes & targets).sum())
    solved = after == int(boxes.sum()) and after > before
    reward = -0.1 + (after > before) - (after < before) + 10.0 * solved
    return boxes, player, reward, solved, push_from


def test_random_play_matches_a_plain_python_reference(generated):
    steps = 60
    actions = np.random.default_rng(0).integers(0, 4, (steps, len(generated)))
    trace = rollout(Sokoban(size=8), generated, actions)
    assert trace["pushed"].sum() > 50  # the comparison covers many pushes
    for i in range(len(generated)):
        walls, targets, start_boxes, start_player = generated.level(i)
        boxes, player = start_boxes, start_player
        for t in range(steps):
            boxes, player, reward, solved, push_from = reference_step(walls, targets, boxes, player,
                                                                      actions[t, i])
            assert trace["reward"][t, i] == pytest.approx(reward, abs=1e-5)
            assert trace["player_pos"][t, i].tolist() == list(player)
            assert trace["push_from"][t, i] == push_from and trace["pushed"][t, i] == (push_from >= 0)
            assert trace["push_dir"][t, i] == (actions[t, i] if push_from >= 0 else -1)
            assert trace["boxes_on_target"][t, i] == (boxes & targets).sum()
            assert trace["solved"][t, i] == solved == trace["terminated"][t, i]
            if solved:
                boxes, player = start_boxes, start_player


def test_generation_is_deterministic_in_the_seed(generated):
    again = generate(30, size=8, num_boxes=2, seed=0)
    other = generate(30, size=8, num_boxes=2, seed=1)
    for field in ("walls", "targets", "boxes", "player", "solution_length"):
        np.testing.assert_array_equal(getattr(again, field), getattr(generated, field))
    assert not np.array_equal(other.boxes, generated.boxes)
    small = generate(5, size=6, num_boxes=1, seed=0)  # the smoke preset's size
    assert small.walls.shape == (5, 6, 6) and (small.solution_length >= 3).all()


@pytest.mark.slow  # spawning the worker processes takes seconds
def test_generation_does_not_depend_on_the_number_of_workers(generated):
    parallel = generate(30, size=8, num_boxes=2, seed=0, workers=2)
    for field in ("walls", "targets", "boxes", "player", "solution_length"):
        np.testing.assert_array_equal(getattr(parallel, field), getattr(generated, field))


def test_level_sets_are_disjoint_and_cached_atomically(tmp_path):
    counts = {"train": 20, "valid": 5, "test": 5}
    fresh = level_sets(8, 2, seed=3, counts=counts, cache_dir=tmp_path)
    assert {name: len(s) for name, s in fresh.items()} == counts
    texts = {name: {s.text(i) for i in range(len(s))} for name, s in fresh.items()}
    assert sum(len(t) for t in texts.values()) == 30  # no level twice, within or across splits
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].name.startswith("sokoban-8-2-3-train20-valid5-test5-")
    cached = level_sets(8, 2, seed=3, counts=counts, cache_dir=tmp_path)
    uncached = level_sets(8, 2, seed=3, counts=counts, cache_dir=None)
    for name in counts:
        for field in ("walls", "targets", "boxes", "player", "solution_length"):
            np.testing.assert_array_equal(getattr(cached[name], field), getattr(fresh[name], field))
            np.testing.assert_array_equal(getattr(uncached[name], field), getattr(fresh[name], field))
            assert getattr(cached[name], field).dtype == getattr(fresh[name], field).dtype


# -- text ---------------------------------------------------------------------------------------

def test_text_round_trip_and_golden():
    rows = ["#######",
            "#@$.  #",
            "# *+  #"]
    with pytest.raises(ValueError, match="exactly one player"):
        LevelSet.from_text([rows])
    rows = ["#######",
            "#@$.  #",
            "# *.$ #",
            "#######"]
    levels = LevelSet.from_text(["\n".join(rows)], solve_levels=False)
    assert levels.text(0) == "\n".join(rows)
    assert levels.solution_length.tolist() == [-1]
    assert levels.player.tolist() == [[1, 1]] and levels.boxes[0, 2, 2] and levels.targets[0, 2, 2]
    assert LevelSet.from_text([levels.text(0).split("\n")], solve_levels=False).text(0) == levels.text(0)
    with pytest.raises(ValueError, match="unknown level character"):
        LevelSet.from_text(["#@$x#"])
    with pytest.raises(ValueError, match="as many boxes"):
        LevelSet.from_text(["#@$$.#"])


def test_state_text_renders_the_player_on_a_target():
    params, state = start(level("#######",
                                "#@.$ .#",
                                "#   $ #"))
    _, state, *_ = step(state, RIGHT, params)
    assert state_text(state).split("\n")[1:3] == ["# +$ .#", "#   $ #"]


# -- batching, banks and params --------------------------------------------------------------------

def test_vmapped_steps_match_single_steps_and_resets_draw_from_the_bank(generated):
    env = Sokoban(size=8)
    params = bank_params(env, generated)
    batch = 16
    keys = jax.random.split(jax.random.key(7), batch)
    obs, state = jax.vmap(env.reset, (0, None))(keys, params)
    assert len(set(np.asarray(state.level).tolist())) > 4  # many levels drawn from the 30
    np.testing.assert_array_equal(np.asarray(state.boxes), generated.boxes[np.asarray(state.level)])
    step = jax.jit(jax.vmap(env.step, (0, 0, 0, None)))
    actions = jax.random.randint(jax.random.key(8), (5, batch), 0, 4)
    for t in range(5):
        singles = [env.step(keys[i], jax.tree.map(lambda x: x[i], state), actions[t, i], params)
                   for i in range(3)]
        obs, state, reward, terminated, truncated, info = step(keys, state, actions[t], params)
        for i, single in enumerate(singles):
            np.testing.assert_array_equal(single[0], obs[i])
            np.testing.assert_array_equal(single[1].boxes, state.boxes[i])
            assert float(single[2]) == float(reward[i])
            assert int(single[5]["push_from"]) == int(info["push_from"][i])
    assert info["push_from"].dtype == jnp.int32 and info["player_pos"].shape == (batch, 2)
    assert isinstance(state, EnvState)


def test_level_params_cuts_the_bank_to_one_level(generated):
    env = Sokoban(size=8)
    one = level_params(bank_params(env, generated), 4)
    assert one.walls.shape == (1, 8, 8)
    _, state = env.reset(jax.random.key(3), one)
    assert int(state.level) == 0 and np.array_equal(np.asarray(state.boxes), generated.boxes[4])


def test_bank_params_rejects_bad_levels(generated):
    env = Sokoban(size=8)
    with pytest.raises(ValueError, match="size-7"):
        bank_params(ENV, generated)
    with pytest.raises(ValueError, match="unknown or non-scalar"):
        bank_params(env, generated, walls=generated.walls)
    with pytest.raises(ValueError, match="max_steps_in_episode"):
        bank_params(env, generated, max_steps_in_episode=0)
    solved = LevelSet(generated.walls, generated.targets, generated.targets, generated.player,
                      generated.solution_length)
    with pytest.raises(ValueError, match="starts solved|on a wall or a box"):
        bank_params(env, solved)
    on_wall = generated.player.copy()
    on_wall[2] = [0, 0]
    with pytest.raises(ValueError, match="on a wall or a box"):
        bank_params(env, LevelSet(generated.walls, generated.targets, generated.boxes, on_wall,
                                  generated.solution_length))
    with pytest.raises(ValueError, match="size must be"):
        Sokoban(size=4)
