"""A tiny example experiment, registered only in the tests (conftest.py): proof that a new
experiment is this package plus one registry line, and that the contract test covers it.

Bandit arms. A softmax policy over `arms` Bernoulli arms is trained by REINFORCE, `num_envs`
pulls per update. Arm 0 pays with probability 0.5 + gap, every other arm with 0.5. Metric:
`p_best`, the trained policy's probability of arm 0.

Controls: with gap 0.4 the learner must find arm 0 (p_best >= 0.8); with gap 0 nothing tells
the arms apart, so p_best must stay near chance (1 / arms, within 0.2).
"""

from innerlab.experiments.base import PackageExperiment

EXPERIMENT = PackageExperiment("example", "Does a REINFORCE learner find the best arm of a bandit?", __name__)
