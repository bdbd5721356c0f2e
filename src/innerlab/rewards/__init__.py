"""Reward models, ensembles, reward distances (later issue)."""
