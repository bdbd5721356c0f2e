"""Zero-shot objectives (seed: "Zero-shot objectives" and "Can you get a purely predictive model
to perform well zero-shot on an RL task?").

A language model acts in text games it was never trained to play; inverse RL on what it did
recovers the objective its behaviour expresses; coherence measures say how well one reward
explains the behaviour and whether the objective survives a change of text encoding. A PPO
agent trained on the true reward is the comparison.

Games (envs/textworld.py, envs/chess_text.py), each rendered as text:
- `objectworld`: a fixed ObjectWorld level, in three encodings (ascii map, sentences, JSON),
  with its rules (red +1, blue and green -1) in the prompt;
- `rulegame`: "zorps and quibs", a rule set of our own in invented words (points follow the
  shape; the first item collected ends the game);
- chess, through python-chess, against a random mover and a depth-2 material search
  (legal moves offered in the prompt). Chess has no tabular form, so it gets only
  `episode_return` (mean score, win 1 / draw 0.5 / loss 0) and `illegal_rate`.

Agents (`agent`, one condition each):
- the language model named by `lm`: `builtin` (innerlab's small causal transformer,
  trained in the job by next-token prediction only on transcripts of mixed-skill play
  (expert / novice / random, tagged "Player: ...") in a family of random collect games, and
  prompted "Player: expert" on the held-out games: a purely predictive model acting
  zero-shot), `hf:<name or path>` or `openai:<model>@<base_url>`;
- `ppo`: PPO trained on the true reward of each game (egocentric arrays, not text);
- `oracle` (control): the soft-optimal policy of the true reward (`oracle_beta` x reward);
- `random` (control): the uniform policy.

For each tabular game, agent, encoding and seed: the agent's whole policy table is read
(one query per reachable state), `demos` trajectories are sampled from it, maximum causal
entropy IRL (irl/maxent.py) with per-item features plus a per-move feature recovers a
reward from the first part, and the measures are:
- `episode_return`: the policy's exact expected return from the start (no sampling);
- `epic_to_true`: EPIC distance (rewards/epic.py) of the recovered reward to the true one;
- `fit`: log-likelihood per demonstrated action gained over the uniform policy (nats), under
  the soft-optimal policy of the recovered reward;
- `heldout_accuracy`: how often that policy's best action is the held-out demonstrated one;
- `cross_encoding_epic`: EPIC between the rewards recovered from two encodings;
- `illegal_rate`: answers that named no legal action (replaced by the default, "up").

Controls: IRL recovers the oracle's known objective (EPIC to the truth small, fit > 0);
the random policy has no objective to recover (fit ~ 0, held-out accuracy ~ 1/4); PPO
learns (return above random); the builtin model learned to predict skilled play (on its
training family, prompted "Player: expert" it gives the expert's best move more probability
than prompted "Player: random"); in chess the depth-2 search beats a random mover (games cut
at `chess_max_plies` are adjudicated on material); and the oracle's
cross-encoding EPIC (the same policy, resampled) is the noise floor a language model's
encoding inconsistency is read against.

Files: config.py (Config, presets, conditions), train.py (the jitted work and the host-side
games), report.py (rows -> report).
"""

from innerlab.experiments.base import PackageExperiment

EXPERIMENT = PackageExperiment(
    "zero-shot",
    "When a language model acts in games it was never trained on, what objective does inverse RL "
    "recover from its behaviour, how coherent is it (fit, held-out prediction, consistency across text "
    "encodings), and how does it compare with a PPO agent trained on the true reward?",
    __name__,
)
