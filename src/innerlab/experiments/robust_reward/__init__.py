"""Robust reward learning (seed: "Robust reward learning" and "How does using a learned reward
model vs. learned policy affect unidentifiability concerns?").

Train a reward-predictive model-based agent, compare its objective with the true reward, then
train its reward model adversarially on the inputs where an ensemble of reward heads
disagrees most, and compare again.

The agent (agents/muzero.py) is MuZero-style: it plans by tree search with the mean of E
reward heads on its own learned latent; that mean *is* its objective, so it can be read at
every (state, action) of a level and compared exactly with the true reward
(envs/tabular.py): EPIC distance (rewards/epic.py) and the regret of planning with it in the
true model (rewards/regret.py).

The world: a 5 x 5 ObjectWorld (egocentric view) with three colours, colour 0 worth +1,
colour 1 worth -1 and colour 2 worth `novel_reward` (default -1: a hazard). Training
conditions (`training`):
- `novel`: training levels show colours 0 and 1 only; colour 2 never appears, so what the
  reward heads say about it is unidentified by the agent's experience.
- `covered` (control): one bad object of each training level is colour 2, so the heads see it.
Off-distribution test levels replace every bad object by colour 2.

Supports of the comparison (`support`): `visited` (the (state, action) pairs the trained agent
takes on in-distribution evaluation levels), `all` (every reachable state of those levels,
uniform actions), `offdist` (every reachable state of the off-distribution levels).

Adversaries (`adversary`), each from the same trained agent, each with the same budget of
`rounds` x `queries` inputs and `rounds` x `finetune_steps` gradient steps on the reward heads
(and the representation under them):
- `none`: fine-tuning on the agent's own replay only (the compute-matched baseline);
- `random`: plus `queries` inputs per round drawn at random from the env's valid inputs,
  labelled with their true reward (the control for the adversary);
- `input`: plus the `queries` valid inputs of highest ensemble disagreement found by search
  (rewards/adversary.py), labelled with their true reward;
- `latent`: plus `queries` latent pseudo-inputs moved by gradient ascent to maximal
  disagreement; no label: the heads are trained to agree there.

Controls: the pipeline's own (a shaped, rescaled copy of the true reward has EPIC ~0 and
regret 0), the agent learns (return above a random policy's), the `covered` agent's reward
is closer to the truth off distribution than the `novel` agent's, and the input adversary
finds inputs of higher disagreement than random ones.

Files: config.py (Config, presets, conditions), train.py (the jitted work), report.py (rows ->
report).
"""

from innerlab.experiments.base import PackageExperiment

EXPERIMENT = PackageExperiment(
    "robust-reward",
    "How far is a model-based agent's learned objective (its reward model) from the true reward on and "
    "off its training distribution, and does adversarial training on inputs where a reward ensemble "
    "disagrees (or on latent pseudo-inputs) close the gap better than random extra labels?",
    __name__,
)
