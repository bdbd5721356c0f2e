"""Language-model policies: a text observation in, a legal action out.

    policy = make_policy("hf:gpt2")                                  # transformers + torch (extra)
    policy = make_policy("openai:llama3@http://localhost:8000/v1")   # any OpenAI-compatible server
    policy = make_policy("builtin", builtin=trained_policy)          # innerlab's own predictive model

Backends import their heavy libraries only when made, so `import innerlab.agents.lm` is cheap.
"""

from __future__ import annotations

from innerlab.agents.lm.base import Choice, LMPolicy, Query, parse_answer, sampled_choice, softmax_choice
from innerlab.agents.lm.openai import LMBackendError  # stdlib only: cheap
from innerlab.agents.lm.server import Server, serve

BACKENDS = ("builtin", "hf:<name or path>", "openai:<model>@<base_url>")


def make_policy(spec: str, *, builtin: LMPolicy | None = None, **options) -> LMPolicy:
    """The policy a backend spec names (see BACKENDS); `options` go to the backend's constructor.

    "builtin" needs the trained model (`builtin=`), which the experiment trains itself.
    """
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"a backend spec is one of {BACKENDS}, got {spec!r}")
    if spec == "builtin":
        if builtin is None:
            raise ValueError("the builtin backend needs its trained model: make_policy('builtin', builtin=...)")
        return builtin
    if spec.startswith("hf:") and len(spec) > 3:
        from innerlab.agents.lm.hf import HFPolicy
        return HFPolicy(spec[3:], **options)
    if spec.startswith("openai:"):
        model, sep, base_url = spec[len("openai:"):].partition("@")
        if not model or not sep or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"an openai backend is 'openai:<model>@<base_url>' with an http(s) URL, got {spec!r}")
        from innerlab.agents.lm.openai import OpenAIPolicy
        return OpenAIPolicy(model=model, base_url=base_url, **options)
    raise ValueError(f"unknown backend {spec!r}: use one of {BACKENDS}")


__all__ = ["BACKENDS", "Choice", "LMBackendError", "LMPolicy", "Query", "Server", "make_policy", "parse_answer",
           "sampled_choice", "serve", "softmax_choice"]
