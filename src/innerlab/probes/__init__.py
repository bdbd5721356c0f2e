"""Probes of any agent in any gymnax environment: the perturbation battery with the follow
index, proxy attribution, IRL coherence and EPIC (docs/probes.md).

An agent is `innerlab.agents.policy.Agent(policy, params, initial_carry)` with
`policy(params, obs, carry, key) -> (action, carry)` for one environment. What a probe reads
of the environment is a function of one `Step` (obs, state, action, reward, terminated,
truncated, info).
"""

from innerlab.agents.policy import Agent
from innerlab.probes.attribution import Attribution, proxy_attribution, score_episodes
from innerlab.probes.battery import SHOWN_MODES, ShownReward, ShownRewardState, side_channel_battery
from innerlab.probes.coherence import Coherence, epic, irl_coherence, tabular_trajectories
from innerlab.probes.play import Step, random_agent, rollout, trajectories

__all__ = ["Agent", "Attribution", "Coherence", "SHOWN_MODES", "ShownReward", "ShownRewardState", "Step", "epic",
           "irl_coherence", "proxy_attribution", "random_agent", "rollout", "score_episodes", "side_channel_battery",
           "tabular_trajectories", "trajectories"]
