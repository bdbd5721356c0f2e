"""Reward side-channels: config, presets and conditions (no jax; see the package doc)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Annotated

from innerlab.experiments.base import Condition, condition_id
from innerlab.experiments.errors import ConfigError
from innerlab.vocab import CHANNEL_MODES, CHANNEL_TRANSFORMS, PERTURBATIONS
from innerlab.experiments.fields import TRACED, Max, Min, NonEmpty, OneOf, PPOFields, PosInt, SeedFields
from innerlab.experiments.headlines import Headline

CHANNELS, TRANSFORMS = CHANNEL_MODES, CHANNEL_TRANSFORMS
ARCHS = ("lstm", "gru", "transformer", "mlp")
OBS_VIEWS = ("egocentric", "flat")
SWEPT_FIELDS = ("channel", "p", "arch", "transform")
HEADLINES = (
    Headline("follow index (swap)", "follow_index", where={"perturbation": "swap"}, by=("channel", "p", "arch")),
)


@dataclass(frozen=True)
class Config(PPOFields, SeedFields):
    channel: Annotated[tuple[str, ...], OneOf(CHANNELS), NonEmpty(), TRACED] = CHANNELS
    """Reward channel modes to train: none | prev | next."""
    p: Annotated[tuple[float, ...], Min(0.0), Max(1.0), NonEmpty(), TRACED] = (0.0, 0.25, 1.0)
    """Fractions of training episodes in which the rewarded colour is drawn at random."""
    arch: Annotated[tuple[str, ...], OneOf(ARCHS), NonEmpty(), TRACED] = ("lstm", "transformer")
    """Agent architectures: lstm | gru | transformer | mlp."""
    transform: Annotated[tuple[str, ...], OneOf(TRANSFORMS), NonEmpty(), TRACED] = TRANSFORMS
    """Channel transforms: identity | mlp (a fixed random network of the reward)."""
    perturbation: Annotated[tuple[str, ...], OneOf(PERTURBATIONS), NonEmpty(), TRACED] = PERTURBATIONS
    """Test-time perturbations of the observed reward (none is always evaluated)."""
    noise_sigma: Annotated[float, Min(0.0), TRACED] = 1.0
    """Standard deviation of the `noise` perturbation."""
    random_control: Annotated[bool, TRACED] = True
    """Also evaluate a uniformly random policy (the chance level)."""
    obs_view: Annotated[str, OneOf(OBS_VIEWS)] = "egocentric"
    """Agent's view of the grid: egocentric (centred on the agent) | flat (absolute)."""
    grid_size: Annotated[int, Min(3)] = 4
    """Side of the square grid."""
    objects_per_colour: PosInt = 4
    """Objects of each of the two colours."""
    max_steps: PosInt = 20
    """Episode time limit (truncation)."""
    terminate_on_rewarded: Annotated[bool, TRACED] = True
    """End the episode when every truly rewarded object is collected (else only the time limit ends it)."""
    other_reward: Annotated[float, TRACED] = -0.5
    """Reward for collecting an object of the colour that is not rewarded this episode."""
    width: PosInt = 32
    """Hidden width of the agent."""
    context: PosInt = 8
    """Transformer context (steps)."""
    eval_envs: PosInt = 64
    """Evaluation environments per seed."""
    eval_steps: PosInt = 300
    """Evaluation steps per environment (episodes still running at the end are not counted)."""
    # PPO defaults of this experiment (bounds and help are PPOFields').
    total_steps: int = 1_000_000
    num_envs: int = 128
    rollout_len: int = 16
    lr: float = 3e-3
    ent_coef: float = 0.003
    progress_chunks: int = 10

    def cross_check(self) -> None:
        if 2 * self.objects_per_colour + 1 > self.grid_size ** 2:
            raise ConfigError("objects_per_colour", f"2 * objects_per_colour + 1 must fit in grid_size**2 "
                              f"= {self.grid_size ** 2} cells")


PRESETS = {
    # Seconds: the smallest grid that still exercises every code path (tests use it); its 3
    # chunks do not divide its 16 updates, so the shorter last chunk runs too.
    # Expect no learning here; controls are only meaningful from `quick` up.
    "smoke": Config(num_seeds=2, channel=("none", "prev"), p=(0.0, 1.0), arch=("lstm",),
                    transform=("identity",), perturbation=("none", "swap"), width=16,
                    total_steps=4096, num_envs=16, rollout_len=16, eval_envs=8, eval_steps=60,
                    progress_chunks=3),
    # Minutes on a 2-core laptop: channel x p for the LSTM with the identity transform, and
    # the controls. Leaves out the transformer and the MLP transform (see the report).
    "quick": Config(arch=("lstm",), transform=("identity",)),
    # The full grid; meant for a GPU or a cluster.
    "paper": Config(num_seeds=16, arch=("lstm", "transformer"), transform=TRANSFORMS,
                    total_steps=5_000_000, num_envs=256, width=64),
}


def conditions(config: Config) -> list[Condition]:
    out = []
    for channel, p, arch, transform in itertools.product(config.channel, config.p, config.arch,
                                                         config.transform):
        if channel == "none" and transform != config.transform[0]:
            continue  # the transform of an absent channel changes nothing
        fields = {"channel": channel, "p": float(p), "arch": arch,
                  "transform": transform if channel != "none" else "identity"}
        out.append(Condition(condition_id(fields), fields))
    if config.random_control:
        fields = {"channel": "none", "p": 0.0, "arch": "random", "transform": "identity"}
        out.append(Condition(condition_id(fields), fields))
    return out


def env_steps(config: Config, fields: dict) -> int:
    """Environment steps per seed the condition trains: total_steps rounded down to whole updates
    (0 for the untrained random policy)."""
    if fields["arch"] == "random":
        return 0
    per_update = config.num_envs * config.rollout_len
    return config.total_steps // per_update * per_update
