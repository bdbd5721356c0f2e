"""Reward side-channels and their test-time perturbations."""

from innerlab.channels.reward_channel import (
    MODES, PERTURBATIONS, TRANSFORMS, ChannelParams, ChannelState, RewardChannel, perturbation_index)

__all__ = ["MODES", "PERTURBATIONS", "TRANSFORMS", "ChannelParams", "ChannelState", "RewardChannel",
           "perturbation_index"]
