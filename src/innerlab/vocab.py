"""Vocabularies: the names that experiment configs offer as choices and the environments and
agents implement, written once.

This module imports nothing, so an experiment's jax-free `config.py` and the jax code below it
(envs, channels, agents) can both import it: `innerlab list` stays instant and no name is typed
twice. It is the lowest layer: it imports no innerlab module.
"""

# channels/: what the agent observes of its reward, and test-time perturbations of it.
CHANNEL_MODES = ("none", "prev", "next")
CHANNEL_TRANSFORMS = ("identity", "mlp")
PERTURBATIONS = ("none", "swap", "negate", "zero", "noise")

# envs/levels: the proxy features of the unidentifiability worlds.
PROXIES = ("colour", "shape", "corner")

# envs/textworld and envs/chess_text: how games are written as text; chess opponents.
TEXT_ENCODINGS = ("ascii", "sentences", "json")
CHESS_ENCODINGS = ("ascii", "fen")
CHESS_OPPONENTS = ("random", "search")

# agents/pbt: what population-based training ranks members by.
FITNESS = ("train", "eval")
