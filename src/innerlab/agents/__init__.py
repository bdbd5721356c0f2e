"""Networks, recurrent PPO and policy evaluation."""

from innerlab.agents.evaluate import evaluate, network_act, rollout_levels
from innerlab.agents.networks import ARCHS, Network, NetworkConfig, make_network
from innerlab.agents.ppo import HParams, PPOConfig, RunnerState, gae, make_train

__all__ = ["ARCHS", "HParams", "Network", "NetworkConfig", "PPOConfig", "RunnerState", "evaluate", "network_act", "rollout_levels",
           "gae", "make_network", "make_train"]
