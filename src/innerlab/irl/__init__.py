"""Inverse RL on recorded behaviour: maximum causal entropy IRL for tabular MDPs with linear
reward features, and coherence measures (how well a recovered goal explains behaviour, and
its EPIC distance to another reward)."""

from innerlab.irl.coherence import fit, heldout_accuracy, reward_distance, split, state_visitation
from innerlab.irl.maxent import (IRLResult, SoftPolicy, Trajectories, log_likelihood, maxent_irl, sample_trajectories,
                                 soft_value_iteration)

__all__ = ["IRLResult", "SoftPolicy", "Trajectories", "fit", "heldout_accuracy", "log_likelihood", "maxent_irl",
           "reward_distance", "sample_trajectories", "soft_value_iteration", "split", "state_visitation"]
