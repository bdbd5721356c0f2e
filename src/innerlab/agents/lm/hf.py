"""The `hf` backend: a local transformers causal LM scores each legal action by log-likelihood.

    policy = make_policy("hf:gpt2")                     # a hub name (from the local cache offline)
    policy = make_policy("hf:/path/to/saved/model")     # a save_pretrained directory
    policy = HFPolicy("tiny", model=model, tokenizer=tokenizer)   # objects already in memory

For a query with prompt x and legal actions a_1..a_A the policy computes

    loglik[i] = log p(separator + a_i | x) = sum_t log p(c_t | x, c_<t)

over the continuation tokens c = tokens(separator + a_i), and answers
`softmax(loglik / temperature)` over the legal actions. A scoring backend cannot answer
illegally, so `Choice.illegal` is always 0.

Tokenisation: the prompt and the continuation are tokenised separately and their ids
concatenated, so the prompt/continuation split is exact and every action is scored against
the same prompt tokens. (Tokenising the joined string and splitting at the character offset
can merge tokens across the boundary, and then the prompt's last token would depend on the
action.) The price: a tokenizer that adds a prefix space to every text it encodes (some
sentencepiece ones) sees `separator + action` with one space too many; pass `separator=""`
for those. The prompt keeps the special tokens its tokenizer puts in front of a text (a BOS
for Llama-style tokenizers; none for GPT-2); an empty prompt starts from the BOS token, or
the EOS token for GPT-2-style tokenizers, as GPT-2 was trained with it between documents.

Batching: the (query, action) pairs are sorted by prompt length and run `batch_size` at a
time, right-padded with an attention mask. With right padding every real token keeps the
positions it has unbatched, and causal attention never lets it see the padding after it, so
batched scores equal one-at-a-time scores (up to float rounding, ~1e-6). Where the model
accepts `logits_to_keep`, only the positions that predict continuation tokens are projected
onto the vocabulary.

Truncation: if prompt + continuation exceeds the model's `max_position_embeddings`, the
prompt loses tokens from the left (its leading special tokens are kept), so the text nearest
the answer (observation, "Action:") is what the model reads.
"""

from __future__ import annotations

import inspect
import os
from typing import Any, Sequence

import numpy as np

from innerlab.agents.lm.base import Choice, Query, softmax_choice

_INSTALL_HINT = "the hf backend needs torch and transformers: pip install 'innerlab[lm]'"


def _offline() -> bool:
    """Whether HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) asks for no downloads, read now.

    huggingface_hub reads the variable once at import; reading it at load time as well means
    a variable set later (e.g. by a test) still keeps `from_pretrained` off the network.
    """
    flags = (os.environ.get("HF_HUB_OFFLINE", ""), os.environ.get("TRANSFORMERS_OFFLINE", ""))
    if any(flag.strip().lower() in ("1", "true", "yes", "on") for flag in flags):
        return True
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    return bool(getattr(constants, "HF_HUB_OFFLINE", False))


def _load_error(name_or_path: str, what: str, offline: bool, err: Exception) -> OSError:
    """A clear error for a tokenizer or model that could not be loaded."""
    expanded = os.path.expanduser(name_or_path)
    if os.path.isdir(expanded):
        reason = f"the directory {expanded!r} has no loadable {what} ({type(err).__name__}: {err})"
    elif os.path.isabs(expanded) or name_or_path.startswith((".", "~")):
        reason = f"there is no directory {expanded!r}"
    elif offline:
        reason = (f"{name_or_path!r} is not a local directory and was not found in the local Hugging Face "
                  "cache; HF_HUB_OFFLINE is set, so nothing was downloaded "
                  "(download it once with network access, or pass a save_pretrained directory)")
    else:
        reason = f"{name_or_path!r} is not a local directory and could not be fetched from the hub ({err})"
    return OSError(f"hf backend: cannot load the {what} for {name_or_path!r}: {reason}")


class HFPolicy:
    """A transformers causal LM as a scoring LMPolicy (see the module docstring for the maths).

    Args:
        name_or_path: a hub model name (e.g. "gpt2") or a save_pretrained directory; also the
            policy's name, "hf:<name_or_path>".
        model: an already built causal LM (then nothing is loaded for it); moved to `device`,
            put in eval mode, and cast to float32 on CPU.
        tokenizer: an already built tokenizer (then nothing is loaded for it).
        device: the torch device to run on.
        batch_size: (query, action) pairs per forward pass.
        separator: put between the prompt and each action ("Action:" + " " + "up").
        temperature: the softmax temperature over the legal actions' log-likelihoods (> 0).
    """

    def __init__(self, name_or_path: str, *, model: Any = None, tokenizer: Any = None, device: str = "cpu",
                 batch_size: int = 16, separator: str = " ", temperature: float = 1.0):
        if not isinstance(name_or_path, str) or not name_or_path:
            raise ValueError(f"the hf backend needs a model name or path, got {name_or_path!r}")
        if not (isinstance(batch_size, int) and batch_size >= 1):
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        try:
            import torch
        except ImportError as err:
            raise ImportError(_INSTALL_HINT) from err
        self._torch = torch
        self.name = f"hf:{name_or_path}"
        self.separator = separator
        self.temperature = float(temperature)
        self.batch_size = batch_size
        self.device = torch.device(device)
        on_cpu = self.device.type == "cpu"
        if model is None or tokenizer is None:
            try:
                import transformers
            except ImportError as err:
                raise ImportError(_INSTALL_HINT) from err
            offline = _offline()
            # local_files_only when offline: never wait on a network that is not there.
            load = dict(local_files_only=offline)
            if tokenizer is None:
                try:
                    tokenizer = transformers.AutoTokenizer.from_pretrained(name_or_path, **load)
                except (OSError, ValueError) as err:
                    raise _load_error(name_or_path, "tokenizer", offline, err) from err
            if model is None:
                try:
                    # float32 on CPU (the precision the scores are tested at); the checkpoint's
                    # own dtype elsewhere, so a large model fits on an accelerator.
                    model = transformers.AutoModelForCausalLM.from_pretrained(
                        name_or_path, dtype=torch.float32 if on_cpu else "auto", **load)
                except (OSError, ValueError) as err:
                    raise _load_error(name_or_path, "model", offline, err) from err
        model = model.to(self.device)
        if on_cpu:
            model = model.to(torch.float32)
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_positions = getattr(model.config, "max_position_embeddings", None)
        parameters = inspect.signature(model.forward).parameters
        self._keep_kwarg = next((k for k in ("logits_to_keep", "num_logits_to_keep") if k in parameters), None)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        # Right padding: the pad id is never attended to by real tokens nor scored, any id will do.
        self._pad_id = int(pad) if pad is not None else 0
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        self._start_id = None if start is None else int(start)

    # -- tokenisation ---------------------------------------------------------------------

    def _encode(self, text: str, special: bool) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=special, verbose=False)["input_ids"])

    def _prompt_ids(self, prompt: str) -> tuple[list[int], list[int]]:
        """The prompt's (leading special tokens, text tokens)."""
        body = self._encode(prompt, special=False)
        full = self._encode(prompt, special=True)
        # Keep the specials a tokenizer puts in front (BOS), drop any it appends (EOS): the
        # answer continues the prompt, it does not follow a finished document.
        lead: list[int] = []
        for offset in range(len(full) - len(body) + 1):
            if full[offset:offset + len(body)] == body:
                lead = full[:offset]
                break
        if not lead and not body:
            if self._start_id is None:
                raise ValueError("an empty prompt needs a BOS or EOS token to start from; the tokenizer has neither")
            lead = [self._start_id]
        return lead, body

    def _pair_ids(self, lead: list[int], body: list[int], action: str) -> tuple[list[int], int]:
        """(prompt + continuation ids, prompt length), the prompt left-truncated to fit."""
        continuation = self._encode(self.separator + action, special=False)
        if self.max_positions is not None and len(lead) + len(body) + len(continuation) > self.max_positions:
            room = self.max_positions - len(lead) - len(continuation)
            if room < (0 if lead else 1):
                raise ValueError(f"the continuation {self.separator + action!r} ({len(continuation)} tokens) "
                                 f"leaves no room for the prompt in {self.max_positions} positions")
            body = body[len(body) - room:] if room > 0 else []
        prompt = lead + body
        return prompt + continuation, len(prompt)

    # -- scoring --------------------------------------------------------------------------

    def _score(self, sequences: list[list[int]], prompt_lengths: list[int]) -> np.ndarray:
        """Sum of continuation log-probs for each sequence, one forward pass. [B] float64."""
        torch = self._torch
        batch = len(sequences)
        lengths = [len(s) for s in sequences]
        width = max(lengths)
        ids = torch.full((batch, width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((batch, width), dtype=torch.long)
        for row, sequence in enumerate(sequences):
            ids[row, :len(sequence)] = torch.tensor(sequence, dtype=torch.long)
            mask[row, :len(sequence)] = 1
        # Logits at position t predict token t + 1: the continuation tokens at P..L-1 are
        # predicted at P-1..L-2. Keep only positions from the shortest prompt's P-1 onward.
        first = min(prompt_lengths) - 1
        kwargs = {}
        if self._keep_kwarg is not None:
            kwargs[self._keep_kwarg] = width - first
            offset = first
        else:
            offset = 0
        n_cont = max(max(length - p for length, p in zip(lengths, prompt_lengths)), 1)
        positions = torch.zeros((batch, n_cont), dtype=torch.long)
        targets = torch.zeros((batch, n_cont), dtype=torch.long)
        valid = torch.zeros((batch, n_cont), dtype=torch.bool)
        for row, (sequence, p) in enumerate(zip(sequences, prompt_lengths)):
            count = len(sequence) - p
            positions[row, :count] = torch.arange(p - 1, len(sequence) - 1) - offset
            targets[row, :count] = torch.tensor(sequence[p:], dtype=torch.long)
            valid[row, :count] = True
        with torch.inference_mode():
            logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device), **kwargs).logits
            vocab = logits.shape[-1]
            picked = logits.gather(1, positions.to(self.device)[..., None].expand(-1, -1, vocab))
            logprobs = torch.log_softmax(picked.float(), dim=-1)
            token_logprobs = logprobs.gather(-1, targets.to(self.device)[..., None]).squeeze(-1)
        token_logprobs = token_logprobs.cpu().double().numpy()
        return np.where(valid.numpy(), token_logprobs, 0.0).sum(axis=1)

    def _loglikelihoods(self, queries: Sequence[Query]) -> list[np.ndarray]:
        """Each query's legal actions' log-likelihoods, [A] float64, batched across queries."""
        pairs = []  # (query index, action index, ids, prompt length)
        for q, query in enumerate(queries):
            lead, body = self._prompt_ids(query.prompt)
            for a, action in enumerate(query.actions):
                ids, prompt_length = self._pair_ids(lead, body, action)
                pairs.append((q, a, ids, prompt_length))
        # Similar prompt lengths together: less padding, fewer positions projected.
        pairs.sort(key=lambda pair: (pair[3], len(pair[2])))
        results = [np.zeros(len(query.actions), np.float64) for query in queries]
        for start in range(0, len(pairs), self.batch_size):
            chunk = pairs[start:start + self.batch_size]
            scores = self._score([pair[2] for pair in chunk], [pair[3] for pair in chunk])
            for (q, a, _, _), score in zip(chunk, scores):
                results[q][a] = score
        return results

    def loglikelihoods(self, query: Query) -> np.ndarray:
        """log p(separator + action | prompt) for each legal action: [len(query.actions)] float64."""
        return self._loglikelihoods([query])[0]

    def choose(self, queries: Sequence[Query]) -> list[Choice]:
        """softmax(loglik / temperature) over each query's legal actions (illegal is always 0)."""
        return [softmax_choice(loglik / self.temperature) for loglik in self._loglikelihoods(list(queries))]

    def __repr__(self) -> str:
        return (f"HFPolicy({self.name!r}, device={str(self.device)!r}, batch_size={self.batch_size}, "
                f"separator={self.separator!r}, temperature={self.temperature})")


__all__ = ["HFPolicy"]
