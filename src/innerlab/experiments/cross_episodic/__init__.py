"""Cross-episodic objectives (seed: "Cross-episodic objectives" and "To what extent do models
care about their performance across episodes?").

Does a learner whose training objective is bounded by the episode end up pursuing reward in
later episodes when the world lets an action in one episode pay in the next? Plain PPO
should not (its returns stop at the episode's end); population-based training selects on
the reward members actually receive, cross-episodic bonuses included, so it may.

Two worlds (envs/persistent.py):
- `pd`: the unit test for myopia of Krueger, Maharaj and Leike (2020): a one-step prisoner's
  dilemma against one's own previous move. Myopic optimum: defect. Exploitation rate =
  P(cooperate).
- `invest`: ObjectWorld with an invest action that costs `cost` now and pays `bonus` (>
  cost) on the first step of the next episode (`pay` = next) or, as a control, at the end of
  the same episode (`pay` = same); `view` = visible shows the channel in the observation
  (the "make it obvious" variant), hidden does not. Exploitation rate = share of episodes
  in which the agent invested.

Regimes: `plain` (a population of independent PPO learners, no selection: the myopic
baseline), `pbt` (population-based training), `pbt_weights` (PBT that copies but never
perturbs hyper-parameters, so it can only select weights: tells selection of cooperative
policies from selection of slow learners), `pbt_swap` (PBT with environment swapping:
the persistent state is shuffled among members after every step, so an investment pays
another member), and, in the invest world, `planner_crossing` / `planner_bounded` (MCTS
with the true env as its model, whose search horizon does / does not cross episode
boundaries).

Controls: PPO exploits the same-episode channel (it can find it); the crossing planner
exploits and the bounded planner does not; the myopic learner defects in the unit test.

Files: config.py (Config, presets, conditions), train.py (the jitted work), report.py (rows ->
report).
"""

from innerlab.experiments.base import PackageExperiment

EXPERIMENT = PackageExperiment(
    "cross-episodic",
    "Does a learner trained on episode-bounded returns come to pursue reward in later episodes "
    "(through population-based training, or a planner whose horizon crosses episodes), and does "
    "environment swapping stop it?",
    __name__,
)
