"""Objective unidentifiability: config, presets and conditions (no jax; see the package doc)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from innerlab.experiments.base import Condition, conditions_of
from innerlab.experiments.errors import ConfigError
from innerlab.experiments.fields import TRACED, Gt, Max, Min, Odd, OneOf, PPOFields, PosInt, Satisfies, SeedFields
from innerlab.experiments.headlines import Headline
from innerlab.vocab import PROXIES

# What a reached object is attributed to besides the proxies: an object with no feature, or
# no object within the time limit.
EXTRA_ATTRIBUTIONS = ("featureless", "nothing")
ATTRIBUTIONS = PROXIES + EXTRA_ATTRIBUTIONS
ARCHS = ("mlp", "cnn", "lstm", "gru", "transformer")
TASKS = ("proxies", "maze", "maze_paper")
SWEPT_FIELDS = ("task", "arch", "width", "depth", "diversity", "total_steps", "rand_region")
HEADLINES = (
    Headline("objective generalisation, diversity 0.2 (pairs)", "objective_generalisation",
             where={"suite": "pairs", "task": "proxies", "diversity": 0.2},
             by=("arch", "width", "depth", "total_steps")),
    Headline("Maze corner share (test)", "corner_share", where={"suite": "test", "task": "maze"},
             by=("arch", "diversity")),
    Headline("Maze as published: corner share (test)", "corner_share", where={"suite": "test", "task": "maze_paper"},
             by=("arch", "rand_region")),
)


def parse_capacity(text: str) -> tuple[int, int]:
    """(width, depth) from 'WIDTHxDEPTH' (e.g. '64x2'); ConfigError naming sweep_capacity otherwise."""
    width, sep, depth = text.lower().partition("x")
    try:
        if not sep:
            raise ValueError
        w, d = int(width), int(depth)
    except ValueError:
        raise ConfigError("sweep_capacity", f"{text!r} is not WIDTHxDEPTH (e.g. 64x2)") from None
    if w < 1 or d < 1:
        raise ConfigError("sweep_capacity", f"{text!r}: width and depth must be >= 1")
    return w, d


def _is_capacity(text: str) -> bool:
    try:
        parse_capacity(text)
    except ConfigError:
        return False
    return True


@dataclass(frozen=True)
class Config(PPOFields, SeedFields):
    true_proxy: Annotated[str, OneOf(PROXIES)] = "colour"
    """The feature that truly decides the reward: colour | shape | corner."""
    grid_size: Annotated[int, Min(4)] = 5
    """Side of the square grid of the proxy worlds."""
    num_objects: Annotated[int, Min(3)] = 3
    """Objects per level (>= 3, one per proxy in decorrelated levels)."""
    corner: PosInt = 2
    """Side of the top-right region of the corner proxy."""
    maze_walls: bool = False
    """Proxy worlds in random mazes (grid_size must be odd) instead of an open grid."""
    max_steps: Annotated[int, Min(2)] = 20
    """Episode time limit in the proxy worlds."""
    train_levels: PosInt = 2000
    """Distinct training levels (each episode plays one at random)."""
    test_levels: PosInt = 200
    """Levels per test suite."""
    level_seed: Annotated[int, Min(0)] = 0
    """Seed of the level generator (the same levels for every agent seed)."""
    arch: Annotated[str, OneOf(ARCHS), TRACED] = "mlp"
    """Base condition: architecture (mlp | cnn | lstm | gru | transformer)."""
    width: Annotated[int, Min(1), TRACED] = 64
    """Base condition: hidden width (CNN: channels)."""
    depth: Annotated[int, Min(1), TRACED] = 2
    """Base condition: layers (MLP dense layers, CNN convolutions, transformer blocks)."""
    diversity: Annotated[float, Min(0.0), Max(1.0), TRACED] = 0.0
    """Base condition: fraction of training levels with decorrelated proxies."""
    sweep_arch: Annotated[tuple[str, ...], OneOf(ARCHS), TRACED] = ("mlp", "cnn", "lstm", "transformer")
    """Inductive-bias sweep (others at the base condition); empty to skip."""
    sweep_capacity: Annotated[tuple[str, ...], Satisfies(_is_capacity, "WIDTHxDEPTH with width, depth >= 1 "
                                                         "(e.g. 64x2)"), TRACED] = ("16x1", "32x1", "64x2", "128x2")
    """Capacity sweep, WIDTHxDEPTH, with the base arch; empty to skip."""
    sweep_diversity: Annotated[tuple[float, ...], Min(0.0), Max(1.0), TRACED] = (0.0, 0.01, 0.05, 0.2)
    """Training-diversity sweep with the base arch; empty to skip."""
    sweep_steps: Annotated[tuple[int, ...], Min(1), TRACED] = (25_000, 50_000, 100_000)
    """Training-length sweep with the base arch (a value under one update trains one update); empty to skip."""
    random_control: Annotated[bool, TRACED] = True
    """Also evaluate a uniformly random policy (the chance level)."""
    maze: Annotated[bool, TRACED] = True
    """Run the maze replication (Langosco et al. 2022, Maze I)."""
    maze_size: Annotated[int, Min(3), Odd()] = 7
    """Maze side (odd)."""
    maze_openings: Annotated[float, Min(0.0), Max(1.0)] = 0.3
    """Share of inner maze walls removed (loops make mazes easier; 0 = perfect mazes)."""
    maze_max_steps: Annotated[int, Min(2)] = 30
    """Episode time limit in the mazes."""
    maze_arch: Annotated[str, OneOf(ARCHS), TRACED] = "mlp"
    """Architecture of the maze agents (width and depth are the base condition's)."""
    maze_diversity: Annotated[tuple[float, ...], Min(0.0), Max(1.0), TRACED] = (0.0, 0.05, 0.2)
    """Fractions of training mazes whose goal is anywhere rather than in the corner."""
    maze_total_steps: Annotated[int, Min(1), TRACED] = 300_000
    """Training environment steps per seed of the maze agents (a value under one update trains one update)."""
    # Maze I as published (Langosco et al. 2022). The defaults are the authors' settings (sources in
    # envs/procgen_maze.py and report.py's PAPER_SOURCES); the quick preset shrinks them for a CPU.
    maze_paper: Annotated[bool, TRACED] = False
    """Run Maze I as published: procgen-drawn mazes, IMPALA-CNN, the authors' PPO settings (maze_paper_* fields)."""
    maze_paper_world: Annotated[int, Min(3), Odd()] = 25
    """World side in cells (procgen: 15 easy, 25 hard; theirs hard); mazes of side 3, 5, ..., world drawn uniformly."""
    maze_paper_pixels: Annotated[int, Min(0)] = 64
    """Side of the observed image (procgen: 64, the whole world); 0 draws one pixel per cell (cheaper on a CPU)."""
    maze_paper_regions: Annotated[tuple[int, ...], Min(0), TRACED] = (0, 2, 5, 10)
    """Training randomisation levels: cheese on a random free cell of the maze's top-right r x r region (0: the corner)."""
    maze_paper_total_steps: Annotated[int, Min(1), TRACED] = 200_000_000
    """Training environment steps per seed of the maze_paper agents (a value under one update trains one update)."""
    maze_paper_train_levels: PosInt = 100_000
    """Distinct training mazes per randomisation level (theirs: --num_levels 100000)."""
    maze_paper_test_levels: PosInt = 1000
    """Mazes per test suite (training-like and cheese-anywhere)."""
    maze_paper_max_steps: Annotated[int, Min(2)] = 500
    """Episode time limit (procgen's maze timeout)."""
    maze_paper_num_envs: PosInt = 256
    """Parallel environments per seed (theirs: n_envs 256)."""
    maze_paper_rollout_len: PosInt = 256
    """Steps per environment per PPO update (theirs: n_steps 256)."""
    maze_paper_epochs: PosInt = 3
    """PPO epochs per rollout (theirs: 3)."""
    maze_paper_minibatches: PosInt = 8
    """Minibatches per epoch (theirs: 8 of 8,192 steps); must divide maze_paper_num_envs."""
    maze_paper_lr: Annotated[float, Gt(0), TRACED] = 5e-4
    """Adam learning rate, annealed linearly to 0 (theirs: 5e-4)."""
    maze_paper_ent_coef: Annotated[float, Min(0), TRACED] = 0.01
    """Entropy bonus (theirs: 0.01)."""
    maze_paper_gamma: Annotated[float, Gt(0), Max(1)] = 0.999
    """Discount factor (theirs: 0.999)."""
    maze_paper_width: Annotated[int, Min(1)] = 16
    """IMPALA-CNN channels of the first stack, the others twice that (theirs: 16, 32, 32)."""
    context: PosInt = 4
    """Transformer context (steps)."""
    # Defaults of this experiment (bounds and help are SeedFields' / PPOFields' unless given).
    num_seeds: int = 8
    """Seeds per condition (a vmap axis). Proxy preferences can flip with the seed alone: use many."""
    total_steps: int = 100_000
    """Base condition: training environment steps per seed."""

    def cross_check(self) -> None:
        if self.corner >= self.grid_size:
            raise ConfigError("corner", f"must be < grid_size ({self.grid_size})")
        if (self.grid_size - self.corner) * self.grid_size < self.num_objects + 1:
            raise ConfigError("num_objects", "too many objects for the cells outside the corner region")
        if self.maze_walls and self.grid_size % 2 == 0:
            raise ConfigError("grid_size", f"{self.grid_size}: a maze (maze_walls) needs an odd size")
        if self.maze_paper_num_envs % self.maze_paper_minibatches:
            raise ConfigError("maze_paper_minibatches", f"{self.maze_paper_minibatches} must divide maze_paper_num_envs "
                              f"({self.maze_paper_num_envs})")
        if 0 < self.maze_paper_pixels < self.maze_paper_world:
            raise ConfigError("maze_paper_pixels", f"{self.maze_paper_pixels}: must be 0 or >= maze_paper_world "
                              f"({self.maze_paper_world})")
        if self.maze_paper and not self.maze_paper_regions:
            raise ConfigError("maze_paper_regions", "needs at least one randomisation level when maze_paper is on")


PRESETS = {
    # Seconds: every code path, no learning expected (controls fail at this scale).
    "smoke": Config(num_seeds=2, train_levels=64, test_levels=16, sweep_arch=("mlp", "cnn"),
                    sweep_capacity=(), sweep_diversity=(0.0, 0.2), sweep_steps=(), total_steps=2048,
                    width=16, depth=1, maze_diversity=(0.0,), maze_total_steps=2048, maze_size=5,
                    maze_max_steps=12, num_envs=16, rollout_len=16, progress_chunks=1, maze_paper=True,
                    maze_paper_world=7, maze_paper_pixels=0, maze_paper_regions=(0,), maze_paper_total_steps=128,
                    maze_paper_train_levels=16, maze_paper_test_levels=8, maze_paper_max_steps=20,
                    maze_paper_num_envs=8, maze_paper_rollout_len=16, maze_paper_epochs=1, maze_paper_minibatches=2,
                    maze_paper_width=4),
    # Minutes on a 2-core laptop: every sweep at 8 seeds, with short training. Maze as published is
    # off (hours even at this size); `--maze_paper true` runs a CPU-sized version of it: the authors'
    # network, actions, episode limit, rollout length, epochs, minibatches, gamma, lr and entropy, but
    # procgen's easy world (15, mazes 3..15) instead of hard (25), one pixel per cell instead of 64x64,
    # 16 envs instead of 256, and 12 updates (49,152 steps) instead of 200M steps.
    "quick": Config(maze_paper_world=15, maze_paper_pixels=0, maze_paper_regions=(0, 5),
                    maze_paper_total_steps=49_152, maze_paper_train_levels=2_000, maze_paper_test_levels=100,
                    maze_paper_num_envs=16),
    # A publication's scale: more seeds, longer training, a finer diversity sweep; Maze as
    # published at the authors' settings (a GPU's work: about 30 V100-hours per seed in theirs).
    "paper": Config(num_seeds=32, train_levels=10_000, test_levels=500, total_steps=2_000_000,
                    sweep_capacity=("16x1", "32x1", "64x2", "128x2", "256x3"),
                    sweep_diversity=(0.0, 0.01, 0.02, 0.05, 0.1, 0.2),
                    sweep_steps=(250_000, 500_000, 1_000_000, 2_000_000), maze_size=9,
                    maze_max_steps=50, maze_diversity=(0.0, 0.01, 0.02, 0.05, 0.1, 0.2),
                    maze_total_steps=3_000_000, num_envs=256, context=8, maze_paper=True),
}


def conditions(config: Config) -> list[Condition]:
    """The base condition, each sweep (one field varied from it), the random control, and the
    maze conditions; each distinct condition once."""
    base = {"task": "proxies", "arch": config.arch, "width": config.width, "depth": config.depth,
            "diversity": float(config.diversity), "total_steps": int(config.total_steps)}
    variants = [dict(base)]
    variants += [{**base, "arch": a} for a in config.sweep_arch]
    variants += [{**base, "width": w, "depth": d} for w, d in map(parse_capacity, config.sweep_capacity)]
    variants += [{**base, "diversity": float(v)} for v in config.sweep_diversity]
    variants += [{**base, "total_steps": int(v)} for v in config.sweep_steps]
    if config.random_control:
        variants.append({**base, "arch": "random", "width": 0, "depth": 0, "total_steps": 0})
    if config.maze:
        maze = {"task": "maze", "arch": config.maze_arch, "width": config.width, "depth": config.depth,
                "diversity": 0.0, "total_steps": int(config.maze_total_steps)}
        variants += [{**maze, "diversity": float(v)} for v in config.maze_diversity]
        if config.random_control:
            variants.append({**maze, "arch": "random", "width": 0, "depth": 0, "diversity": 0.0,
                             "total_steps": 0})
    if config.maze_paper:
        # depth 3: the IMPALA-CNN's three stacks; the cheese is never anywhere in training (diversity 0),
        # only within the top-right rand_region x rand_region cells.
        paper = {"task": "maze_paper", "arch": "impala", "width": config.maze_paper_width, "depth": 3,
                 "diversity": 0.0, "total_steps": int(config.maze_paper_total_steps)}
        variants += [{**paper, "rand_region": int(r)} for r in config.maze_paper_regions]
        if config.random_control:
            variants.append({**paper, "arch": "random", "width": 0, "depth": 0, "total_steps": 0,
                             "rand_region": int(config.maze_paper_regions[0])})
    return conditions_of(variants)


def env_steps(config: Config, fields: dict) -> int:
    """Environment steps per seed the condition trains: its `total_steps` field, raised to one
    update if below it (the training length sweeps accept any positive value) and rounded down to
    whole updates; 0 for the untrained random policy."""
    if fields["arch"] == "random":
        return 0
    if fields.get("task") == "maze_paper":
        per_update = config.maze_paper_num_envs * config.maze_paper_rollout_len
        return max(int(fields["total_steps"]), per_update) // per_update * per_update
    per_update = config.num_envs * config.rollout_len
    return max(int(fields["total_steps"]), per_update) // per_update * per_update
