"""Reward distances (EPIC); reward models, ensembles and adversarial training come later."""

from innerlab.rewards.epic import canonicalize, epic_distance, pearson_distance

__all__ = ["canonicalize", "epic_distance", "pearson_distance"]
