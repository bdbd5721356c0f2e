"""What a text environment asks a language model: a prompt and its legal answers.

It lives with the environments (which write the prompts) so that envs never import agents;
`innerlab.agents.lm` re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Query:
    prompt: str
    """The whole prompt, ending where the answer begins (e.g. "...\\nAction:")."""
    actions: tuple[str, ...]
    """The legal actions, as the words the answer should contain; at least one."""
    default: int = 0
    """Index into `actions` used when an answer is illegal or unparseable."""

    def __post_init__(self):
        if not self.actions:
            raise ValueError("a query needs at least one legal action")
        if len(set(self.actions)) != len(self.actions):
            raise ValueError(f"legal actions must be distinct, got {self.actions}")
        if not 0 <= self.default < len(self.actions):
            raise ValueError(f"default {self.default} is not an index into {len(self.actions)} actions")
