"""Networks, recurrent PPO, population-based training, a known-model planner, a MuZero-style agent,
policy evaluation."""

from innerlab.agents.evaluate import evaluate, network_act, rollout_levels
from innerlab.agents.networks import ARCHS, Network, NetworkConfig, make_network
from innerlab.agents.muzero import MuZero, MuZeroConfig, MuZeroState, make_muzero
from innerlab.agents.pbt import PBTConfig, Population, PopulationState, broadcast_hparams, exploit_explore, make_population
from innerlab.agents.planner import make_planner_policy, plan_rollout
from innerlab.agents.ppo import HParams, PPOConfig, RunnerState, gae, make_train

__all__ = ["ARCHS", "HParams", "MuZero", "MuZeroConfig", "MuZeroState", "Network", "NetworkConfig", "PBTConfig", "PPOConfig", "Population", "PopulationState",
           "RunnerState", "broadcast_hparams", "evaluate", "exploit_explore", "gae",
           "make_muzero", "make_network", "make_planner_policy", "make_population", "make_train", "network_act", "plan_rollout",
           "rollout_levels"]
