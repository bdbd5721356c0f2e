"""Reward distances (EPIC), regret of planning with a learned reward, adversaries for reward ensembles."""

from innerlab.rewards.adversary import (Inputs, agreement_loss, build, disagreement, input_adversary, labelled_loss,
                                        latent_adversary, random_inputs)
from innerlab.rewards.epic import canonicalize, epic_distance, pearson_distance
from innerlab.rewards.regret import plan, policy_value, regret

__all__ = ["Inputs", "agreement_loss", "build", "canonicalize", "disagreement", "epic_distance", "input_adversary",
           "labelled_loss", "latent_adversary", "pearson_distance", "plan", "policy_value", "random_inputs", "regret"]
