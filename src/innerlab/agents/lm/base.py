"""The language-model policy interface every backend implements.

A text environment turns an observation into a `Query`: the prompt (rules, observation,
"Action:") and the legal actions as strings. A policy answers each query with a `Choice`:
a distribution over that query's legal actions, and how many of its answers were illegal or
unparseable (replaced by the query's declared default action, never a crash).

    policy = make_policy("builtin" | "hf:<name or path>" | "openai:<model>@<base_url>", ...)
    choices = policy.choose([Query(prompt, ("up", "right", "down", "left")), ...])
    choices[0].probs    # [4] float64, sums to 1
    choices[0].illegal  # answers that named no legal action
    choices[0].answers  # answers asked for (1 per query for scoring backends)

Scoring backends (builtin, hf) compute each legal action's log-likelihood as a continuation
of the prompt and return the softmax over legal actions: they cannot answer illegally.
Generating backends (openai) sample free text, which `parse_answer` maps to an action.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol, Sequence

import numpy as np

from innerlab.envs.text import Query


@dataclass(frozen=True)
class Choice:
    probs: np.ndarray
    """[len(query.actions)] float64, the policy's distribution over the legal actions."""
    illegal: int = 0
    """Answers that named no legal action (each counted as the default action in `probs`)."""
    answers: int = 1
    """Answers the distribution is made of (samples for generating backends, 1 for scoring ones)."""
    texts: tuple[str, ...] = field(default=(), compare=False)
    """The raw answers, when the backend generates text (kept for the record of illegal answers)."""


class LMPolicy(Protocol):
    name: str
    """The backend spec, e.g. "builtin", "hf:gpt2", "openai:llama3@http://localhost:8000/v1"."""

    def choose(self, queries: Sequence[Query]) -> list[Choice]:
        ...


def softmax_choice(loglik: np.ndarray) -> Choice:
    """A scoring backend's Choice from the legal actions' log-likelihoods [A]."""
    loglik = np.asarray(loglik, np.float64)
    z = np.exp(loglik - loglik.max())
    return Choice(probs=z / z.sum())


_OPTION = re.compile(r"^\s*\(?(\d+)[\).:]?\s*$")


def parse_answer(text: str, actions: Sequence[str]) -> int | None:
    """The index of the legal action an answer names, or None if it names none or several.

    Accepted, in order: the action itself (case and surrounding punctuation ignored); a
    numbered option "2", "2.", "(2)" (1-based, as the prompt lists them); the first line
    that is one of those; otherwise an answer that contains exactly one legal action as a
    whole word (e.g. "I move up."). Anything else is unparseable.
    """
    if not isinstance(text, str):
        return None
    lowered = [a.lower() for a in actions]
    for line in [text] + text.strip().splitlines()[:1]:
        cleaned = line.strip().strip(".!'\"`*").strip().lower()
        if cleaned in lowered:
            return lowered.index(cleaned)
        match = _OPTION.match(cleaned)
        if match and 1 <= int(match.group(1)) <= len(actions):
            return int(match.group(1)) - 1
    found = {i for i, a in enumerate(lowered)
             if re.search(r"(?<![\w+#=-])" + re.escape(a) + r"(?![\w+#=-])", text.lower())}
    return found.pop() if len(found) == 1 else None


def sampled_choice(texts: Sequence[str], query: Query) -> Choice:
    """A generating backend's Choice from its raw answers to one query."""
    counts = np.zeros(len(query.actions))
    illegal = 0
    for text in texts:
        index = parse_answer(text, query.actions)
        if index is None:
            illegal += 1
            index = query.default
        counts[index] += 1
    if not texts:
        raise ValueError("no answers to make a choice from")
    return Choice(probs=counts / counts.sum(), illegal=illegal, answers=len(texts), texts=tuple(texts))
