"""Networks, recurrent PPO and policy evaluation."""

from innerlab.agents.evaluate import evaluate, network_act, rollout_levels
from innerlab.agents.networks import ARCHS, Network, NetworkConfig, make_network
from innerlab.agents.ppo import HParams, PPOConfig, RunnerState, final_return, gae, make_train, run_in_chunks

__all__ = ["ARCHS", "HParams", "Network", "NetworkConfig", "PPOConfig", "RunnerState", "evaluate", "final_return",
           "gae", "make_network", "make_train", "network_act", "rollout_levels", "run_in_chunks"]
