"""Inverse RL on recorded behaviour (later issue)."""
