"""Learned search (seed: "Other thoughts", the first three bullets): is the trained agent itself
an optimizer?

Inner alignment is about learned optimizers. This experiment asks for behavioural and
representational evidence that an agent searches, against an explicit planner as the known
answer, in Sokoban (`innerlab.envs.sokoban`: pure JAX, Boxoban rewards, procedurally generated
levels by reverse play, labelled by an exact solver).

Agents (PPO, `innerlab.agents.ppo`): DRC(D, N), the Deep Repeated ConvLSTM of Guez et al.
(2019), a feed-forward ResNet of similar size, and innerlab's LSTM on the flattened grid; a DRC
whose action set has a "think" action (adaptive computation: the world does not move, the clock
and the step penalty do).

Measures, each per seed with 95% intervals:
- thinking steps: before its first action the agent runs n extra forward passes on the first
  observation (Taufeeque et al. 2024); share of test levels solved vs n, per architecture and per
  difficulty bin (tertiles of the optimal solution length);
- pacing: share of levels in which the agent, within its first `pacing_window` steps, returns to
  a state it was in since its last push (a cycle), vs difficulty and vs thinking steps;
- plans in the hidden state: linear probes (per-cell, a 1x1 map) of the agent's next push (box
  and direction), of which boxes it pushes within k steps, and of the direction a box will next
  be pushed out of every cell in the rest of the episode (box_path, Taufeeque's "box
  directions"), fitted on half the validation levels and scored on the other half; the same
  probes on an untrained network of the same architecture fed the same observations (the floor;
  `probes` chooses which: the quick preset runs box_path only, see its comment);
- explicit search: MCTS (mctx) over the true env, uniform prior, zero leaf values; share solved
  vs simulations per step;
- adaptive computation: how often the think-action DRC thinks, its correlation with the level's
  optimal solution length, and its solve rate against the fixed-compute DRC at equal env steps.

Controls: the planner solves more with more budget; thinking steps change nothing for the
ResNet (identical actions); probes on the untrained network stay near chance; every trained agent
beats the random policy on the training distribution.

Files: config.py (Config, presets, conditions), train.py (jitted training and rollouts),
scoring.py (numpy scoring of rollouts), probes.py (linear probes), report.py (rows -> report).
"""

from innerlab.experiments.base import PackageExperiment

EXPERIMENT = PackageExperiment(
    "learned-search",
    "Is the trained agent itself an optimizer: does extra computation before acting help it "
    "(as it helps an explicit planner), and can its plan be read from its hidden state?",
    __name__,
)
