"""innerlab's `builtin` language model: a small causal transformer, a purely predictive model.

It is trained ONLY by next-token prediction on text transcripts of game trajectories, then
acts zero-shot: the probability of each legal action is the softmax of its log-likelihood as
the continuation of the prompt, log p(" " + action | prompt). Nothing in training tells it
which actions are good; it imitates whatever players the transcripts show.

    tokenizer = Tokenizer.from_texts(texts, max_words=500)
    params, losses = train(texts, tokenizer, config, jax.random.split(key, n_seeds))
        params: the model's parameters stacked over seeds (leading axis [n_seeds])
        losses: [n_seeds, config.steps] float32, each step's next-token cross-entropy (nats/token)
    policy = BuiltinPolicy.for_seed(params, 0, tokenizer, config)
    policy.choose([Query("...\\nAction:", ("up", "right", "down", "left")), ...])
    policy.generate("...\\nAction:")      # " up"
    save(path, unstack(params, 0), tokenizer, config);  params, tokenizer, config = load(path)

The network is behind two functions of `params`: `init(key, config, vocab_size)` and
`logits(params, config, tokens [B, L]) -> [B, L, V]`; only this module imports flax.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import asdict, dataclass, fields
from functools import partial
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import flax.linen as nn
import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax

from innerlab._io import atomic_write_bytes
from innerlab.agents.lm.base import Choice, Query, softmax_choice

__all__ = [
    "BOS", "EOS", "PAD", "UNK", "BuiltinConfig", "BuiltinPolicy", "Tokenizer",
    "encode_batch", "init", "load", "logits", "save", "train", "unstack",
]

# ---------------------------------------------------------------------------------------------
# Tokenizer

SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
PAD, BOS, EOS, UNK = 0, 1, 2, 3
CHARS = "".join(chr(c) for c in range(32, 127)) + "\n"
"""The 95 printable ASCII characters and the newline: every such text can be spelled."""

# A piece is an optional single leading space and a run of letters, or any one character.
_PIECE = re.compile(r" ?[A-Za-z]+|[\s\S]")
_WORD = re.compile(r"[A-Za-z]+")
_UNK_TEXT = "\ufffd"


class Tokenizer:
    """Characters plus a list of known words; deterministic and JSON-serialisable.

    Ids: the specials <pad>=0, <bos>=1, <eos>=2, <unk>=3; then the 95 printable ASCII
    characters and "\\n" (ids 4..99); then, for each known word in order, the word and the
    word with one leading space (" up"), except that a one-letter word adds only its spaced
    form (the bare letter is already a character).

    Encoding splits the text into pieces (" up", "Action", ":", "\\n", ...). A known piece is
    one token; a spaced word whose bare word is known is a space then the word; anything else
    is spelled character by character, so every printable text encodes ("Nf3", "{...}") and
    `decode(encode(text)) == text`. Characters outside `CHARS` (tabs, non-ASCII) become <unk>,
    which decodes to U+FFFD.
    """

    def __init__(self, words: Sequence[str]):
        words = list(words)
        for word in words:
            if not isinstance(word, str) or not _WORD.fullmatch(word):
                raise ValueError(f"a known word is a non-empty run of ASCII letters, got {word!r}")
        if len(set(words)) != len(words):
            raise ValueError("known words must be distinct")
        self.words: tuple[str, ...] = tuple(words)
        self._tokens: list[str] = list(SPECIALS) + list(CHARS)
        for word in words:
            self._tokens += [word, " " + word] if len(word) > 1 else [" " + word]
        self._ids = {token: i for i, token in enumerate(self._tokens) if i >= len(SPECIALS)}
        self._decode = np.array([""] * 3 + [_UNK_TEXT] + self._tokens[len(SPECIALS):], dtype=object)

    @classmethod
    def from_texts(cls, texts: Sequence[str], max_words: int = 500, min_count: int = 1) -> "Tokenizer":
        """The `max_words` most frequent runs of letters in `texts` seen at least `min_count`
        times (ties in alphabetical order, so the result depends only on the texts)."""
        if max_words < 0 or min_count < 1:
            raise ValueError("max_words must be >= 0 and min_count >= 1")
        counts = Counter(word for text in texts for word in _WORD.findall(text))
        ranked = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return cls(ranked[:max_words])

    @property
    def vocab_size(self) -> int:
        return len(self._tokens)

    def encode(self, text: str) -> list[int]:
        ids = []
        for piece in _PIECE.findall(text):
            token = self._ids.get(piece)
            if token is not None:
                ids.append(token)
            elif piece[0] == " " and len(piece) > 1 and piece[1:] in self._ids:
                ids += [self._ids[" "], self._ids[piece[1:]]]
            else:
                ids += [self._ids.get(char, UNK) for char in piece]
        return ids

    def decode(self, ids) -> str:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(f"token ids must lie in [0, {self.vocab_size}), got {ids.min()}..{ids.max()}")
        return "".join(self._decode[ids])

    def token(self, token_id: int) -> str:
        """The text of one token ("<eos>" for specials), for inspection."""
        return self._tokens[token_id]

    def to_json(self) -> str:
        return json.dumps({"kind": "innerlab.builtin.Tokenizer", "version": 1, "words": list(self.words)})

    @classmethod
    def from_json(cls, text: str) -> "Tokenizer":
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("kind") != "innerlab.builtin.Tokenizer" or data.get("version") != 1:
            raise ValueError("not an innerlab builtin tokenizer (version 1)")
        return cls(data["words"])

    def __eq__(self, other):
        return isinstance(other, Tokenizer) and self.words == other.words

    def __hash__(self):
        return hash(self.words)

    def __repr__(self):
        return f"Tokenizer({len(self.words)} words, vocab_size={self.vocab_size})"


# ---------------------------------------------------------------------------------------------
# Config


@dataclass(frozen=True)
class BuiltinConfig:
    """The builtin model and its training. No dropout: the model is small and the experiment
    controls generalisation through its data, and a deterministic forward keeps scoring exact."""

    width: int = 64
    """Embedding and residual width."""
    depth: int = 2
    """Transformer blocks (causal self-attention + MLP, pre-LayerNorm)."""
    heads: int = 4
    """Attention heads (must divide width)."""
    mlp_ratio: int = 4
    """Hidden width of each block's MLP, as a multiple of `width`."""
    max_len: int = 256
    """Context in tokens. Longer texts and prompts are cut from the LEFT, keeping the end (the
    answer depends on the latest observation, which comes last); nothing of the start is kept."""
    tie_embeddings: bool = True
    """Output head shares the token embedding matrix (logits = h @ E^T)."""
    learning_rate: float = 3e-3
    """Peak AdamW learning rate, reached after `warmup_steps` of linear warm-up, then cosine
    decay to `learning_rate * final_lr_fraction` at `steps`."""
    warmup_steps: int = 50
    """Linear warm-up steps (must be < steps)."""
    final_lr_fraction: float = 0.1
    """Learning rate at the last step, as a fraction of the peak."""
    weight_decay: float = 0.01
    """AdamW decoupled weight decay, on matrices (embeddings included), not biases or LayerNorm."""
    grad_clip: float = 1.0
    """Global gradient-norm clip (0 turns it off)."""
    batch_size: int = 32
    """Texts per optimisation step, drawn uniformly with replacement by each seed's own key."""
    steps: int = 600
    """Optimisation steps."""
    prompt_loss_weight: float = 1.0
    """Weight of the prompt's tokens in the loss when texts are given as (prompt, answer)
    pairs (answer tokens weigh 1). 1 is plain next-token prediction of whole transcripts;
    below 1 spends the model's capacity on predicting what was done rather than on the
    (often repeated) text around it. Still prediction only: no reward is ever seen."""

    def __post_init__(self):
        for name in ("width", "depth", "heads", "mlp_ratio", "max_len", "batch_size", "steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.width % self.heads:
            raise ValueError(f"heads ({self.heads}) must divide width ({self.width})")
        if self.max_len < 2:
            raise ValueError(f"max_len must be >= 2 (a token and its successor), got {self.max_len}")
        if not isinstance(self.warmup_steps, int) or not 0 <= self.warmup_steps < self.steps:
            raise ValueError(f"warmup_steps must be an integer in [0, steps={self.steps}), got {self.warmup_steps!r}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if not 0 <= self.final_lr_fraction <= 1:
            raise ValueError(f"final_lr_fraction must lie in [0, 1], got {self.final_lr_fraction!r}")
        if not 0 <= self.prompt_loss_weight <= 1:
            raise ValueError(f"prompt_loss_weight must lie in [0, 1], got {self.prompt_loss_weight!r}")
        if not self.weight_decay >= 0 or not self.grad_clip >= 0:
            raise ValueError("weight_decay and grad_clip must be >= 0")

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "BuiltinConfig":
        data = json.loads(text)
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown BuiltinConfig fields {sorted(unknown)}")
        return cls(**data)


# ---------------------------------------------------------------------------------------------
# Model

_init = nn.initializers.normal(0.02)


_QUERY_BLOCK = 32


def _causal_attention(q, k, v, mask):
    """Softmax attention, q, k, v: [B, L, H, D], mask: [B or 1, L, L] (already causal) ->
    [B, L, H, D].

    Computed in blocks of 32 queries, each against the keys up to its own end only: this skips
    the masked upper triangle and keeps each block's scores in cache, which on the CPU made
    a 256-token attention ~4x faster forward and ~3x with its gradient than the one-shot
    [B, H, L, L] version (same result up to float rounding).
    """
    length = q.shape[1]
    scale = 1.0 / math.sqrt(q.shape[-1])
    outputs = []
    for start in range(0, length, _QUERY_BLOCK):
        end = min(start + _QUERY_BLOCK, length)
        scores = jnp.einsum("bqhd,bkhd->bhqk", q[:, start:end], k[:, :end]) * scale
        scores = jnp.where(mask[:, None, start:end, :end], scores, jnp.finfo(scores.dtype).min)
        outputs.append(jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(scores, axis=-1), v[:, :end]))
    return jnp.concatenate(outputs, axis=1)


class _Block(nn.Module):
    """x + Attention(LN(x)); x + MLP(LN(x)). mask: [B or 1, L, L] bool, True where a query
    position (row) may attend to a key position (column)."""

    config: BuiltinConfig

    @nn.compact
    def __call__(self, x, mask):
        cfg = self.config
        batch, length, _ = x.shape
        head_dim = cfg.width // cfg.heads
        # GPT-2's residual scaling: each block's output projections start 1/sqrt(2 depth) smaller.
        out_init = nn.initializers.normal(0.02 / math.sqrt(2 * cfg.depth))
        y = nn.LayerNorm(name="attn_norm")(x)
        qkv = nn.Dense(3 * cfg.width, kernel_init=_init, name="qkv")(y)
        q, k, v = jnp.split(qkv.reshape(batch, length, 3 * cfg.heads, head_dim), 3, axis=2)
        y = _causal_attention(q, k, v, mask).reshape(batch, length, cfg.width)
        x = x + nn.Dense(cfg.width, kernel_init=out_init, name="attn_out")(y)
        y = nn.LayerNorm(name="mlp_norm")(x)
        y = nn.gelu(nn.Dense(cfg.mlp_ratio * cfg.width, kernel_init=_init, name="mlp_in")(y))
        return x + nn.Dense(cfg.width, kernel_init=out_init, name="mlp_out")(y)


class _Transformer(nn.Module):
    config: BuiltinConfig
    vocab_size: int

    def setup(self):
        cfg = self.config
        self.embed = nn.Embed(self.vocab_size, cfg.width, embedding_init=_init)
        self.position = self.param("position", _init, (cfg.max_len, cfg.width))
        self.blocks = [_Block(cfg, name=f"block{i}") for i in range(cfg.depth)]
        self.final_norm = nn.LayerNorm()
        if not cfg.tie_embeddings:
            self.head = nn.Dense(self.vocab_size, use_bias=False, kernel_init=_init)

    def hidden(self, tokens, positions, segments):
        """tokens, positions: [B, L] int32; segments: [B, L] int32 or None -> [B, L, width].

        Causal attention; with `segments`, a position also sees only earlier positions of its
        own segment or of segment 0 (the shared prompt), so several continuations of one
        prompt can share a row without seeing each other.
        """
        length = tokens.shape[1]
        mask = jnp.tril(jnp.ones((length, length), bool))[None]
        if segments is not None:
            same = segments[:, :, None] == segments[:, None, :]
            mask = mask & (same | (segments[:, None, :] == 0))
        x = self.embed(tokens) + self.position[positions]
        for block in self.blocks:
            x = block(x, mask)
        return self.final_norm(x)

    def project(self, h):
        """[..., width] -> [..., V] logits."""
        return self.embed.attend(h) if self.config.tie_embeddings else self.head(h)

    def __call__(self, tokens):
        positions = jnp.broadcast_to(jnp.arange(tokens.shape[1]), tokens.shape)
        return self.project(self.hidden(tokens, positions, None))


def _vocab_size(params) -> int:
    return params["params"]["embed"]["embedding"].shape[0]


def init(key: jax.Array, config: BuiltinConfig, vocab_size: int) -> Any:
    """The parameters of a fresh model (a pytree of float32 arrays)."""
    return _Transformer(config, vocab_size).init(key, jnp.zeros((1, 2), jnp.int32))


def logits(params, config: BuiltinConfig, tokens: jax.Array) -> jax.Array:
    """tokens [B, L] int32 (L <= max_len, positions 0..L-1) -> next-token logits [B, L, V].

    Position t's logits depend only on tokens[:, :t + 1] (causal), so right padding leaves
    the earlier positions unchanged; the loss masks the padded targets.
    """
    if tokens.shape[-1] > config.max_len:
        raise ValueError(f"{tokens.shape[-1]} tokens exceed max_len {config.max_len}: left-truncate first")
    return _Transformer(config, _vocab_size(params)).apply(params, jnp.asarray(tokens, jnp.int32))


def _hidden(params, config, tokens, positions, segments):
    return _Transformer(config, _vocab_size(params)).apply(
        params, tokens, positions, segments, method=_Transformer.hidden)


def _project(params, config, h):
    return _Transformer(config, _vocab_size(params)).apply(params, h, method=_Transformer.project)


# ---------------------------------------------------------------------------------------------
# Training


def encode_batch(texts: Sequence[str | tuple[str, str]], tokenizer: Tokenizer, max_len: int,
                 prompt_weight: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Texts -> (rows [N, W] int32, target weights [N, W - 1] float32).

    Rows are <bos> text <eos>, right-padded with <pad>. A text may be a (prompt, answer) pair,
    encoded as prompt then answer: the targets inside the prompt weigh `prompt_weight`, those of
    the answer (and <eos>) 1; a plain string weighs 1 throughout; padding weighs 0. A row
    longer than max_len + 1 tokens (inputs are row[:-1], targets row[1:]) keeps its last
    max_len + 1 tokens. W is the longest row, rounded up to a multiple of 8, at most
    max_len + 1, so short texts do not pay for the whole context.
    """
    rows, weights = [], []
    for text in texts:
        prompt, answer = (text, "") if isinstance(text, str) else text
        head, tail = [BOS] + tokenizer.encode(prompt), tokenizer.encode(answer) + [EOS]
        weight = [prompt_weight] * (len(head) - 1) + [1.0] * len(tail) if answer else [1.0] * (len(head) + len(tail) - 1)
        rows.append((head + tail)[-(max_len + 1):])
        weights.append(weight[-max_len:])
    if not rows:
        raise ValueError("no texts to train on")
    width = min(max_len + 1, _round_up(max(len(r) for r in rows), 8))
    data = np.full((len(rows), width), PAD, np.int32)
    mask = np.zeros((len(rows), width - 1), np.float32)
    for i, (row, weight) in enumerate(zip(rows, weights)):
        data[i, :len(row)] = row
        mask[i, :len(weight)] = weight
    return data, mask


def _optimizer(config: BuiltinConfig) -> optax.GradientTransformation:
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=config.learning_rate, warmup_steps=config.warmup_steps,
        decay_steps=config.steps, end_value=config.learning_rate * config.final_lr_fraction)
    decay_mask = lambda params: jax.tree.map(lambda p: p.ndim >= 2, params)  # noqa: E731
    adamw = optax.adamw(schedule, b1=0.9, b2=0.99, weight_decay=config.weight_decay, mask=decay_mask)
    return optax.chain(optax.clip_by_global_norm(config.grad_clip), adamw) if config.grad_clip > 0 else adamw


class TrainState(NamedTuple):
    """One seed's training state (stacked over seeds inside `train`)."""
    params: Any
    opt_state: Any
    data_key: jax.Array
    step: jax.Array  # [] int32, optimisation steps taken


def next_token_loss(params, config: BuiltinConfig, rows: jax.Array, weights: jax.Array | None = None) -> jax.Array:
    """Weighted mean cross-entropy (nats) of rows[:, 1:] given rows[:, :-1].
    rows: [B, W] int32 and weights [B, W - 1] from `encode_batch` (default: 1 on non-pad targets)."""
    inputs, targets = rows[:, :-1], rows[:, 1:]
    ce = optax.softmax_cross_entropy_with_integer_labels(logits(params, config, inputs), targets)
    mask = (targets != PAD).astype(ce.dtype) if weights is None else weights.astype(ce.dtype)
    return (ce * mask).sum() / jnp.maximum(mask.sum(), 1e-6)


@partial(jax.jit, static_argnames=("config", "vocab_size"))
def _init_states(keys, config: BuiltinConfig, vocab_size: int) -> TrainState:
    def one(key):
        init_key, data_key = jax.random.split(key)
        params = init(init_key, config, vocab_size)
        return TrainState(params, _optimizer(config).init(params), data_key, jnp.zeros((), jnp.int32))
    return jax.vmap(one)(keys)


@partial(jax.jit, static_argnames=("config", "length"))
def _train_chunk(states: TrainState, data: jax.Array, weights: jax.Array, config: BuiltinConfig, length: int):
    """`length` optimisation steps for every seed: states stacked over seeds, data [N, W] and
    target weights [N, W - 1] shared -> (states, losses [n_seeds, length])."""
    optimizer = _optimizer(config)

    def one_seed(state: TrainState):
        def step(state: TrainState, _):
            # Folding in the step count makes each seed's minibatch order independent of chunking.
            rows = jax.random.randint(jax.random.fold_in(state.data_key, state.step),
                                      (config.batch_size,), 0, data.shape[0])
            loss, grads = jax.value_and_grad(next_token_loss)(state.params, config, data[rows], weights[rows])
            updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
            params = optax.apply_updates(state.params, updates)
            return TrainState(params, opt_state, state.data_key, state.step + 1), loss
        return jax.lax.scan(step, state, None, length=length)

    return jax.vmap(one_seed)(states)


def train(texts: Sequence[str | tuple[str, str]], tokenizer: Tokenizer, config: BuiltinConfig, keys: jax.Array, *,
          chunk: int = 100, on_chunk: Callable[[int, float], None] | None = None,
          on_losses: Callable[[np.ndarray], None] | None = None) -> tuple[Any, np.ndarray]:
    """Next-token prediction on `texts`, one model per key, all seeds in one vmapped program.

    texts: strings, or (prompt, answer) pairs whose prompt tokens weigh
    `config.prompt_loss_weight` in the loss (see `encode_batch`).

    keys: [n_seeds] PRNG keys (e.g. `jax.random.split(key, n)`); each seed has its own init
    and minibatch order. The `config.steps` steps run as jitted `lax.scan`s of `chunk` steps
    (the same compiled chunk reused; a shorter last chunk compiles once more), and
    `on_chunk(steps_done, mean_loss_of_chunk)` is called between them for progress reports, and
    `on_losses(losses of the chunk [n_seeds, chunk steps])` for live curves.

    Returns (params stacked over seeds [n_seeds, ...], losses [n_seeds, steps] float32).
    """
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    keys = jnp.asarray(keys)
    if keys.ndim != (1 if jnp.issubdtype(keys.dtype, jax.dtypes.prng_key) else 2):
        raise ValueError("keys must be a batch [n_seeds] of PRNG keys, e.g. jax.random.split(key, n)")
    data, weights = (jnp.asarray(x) for x in encode_batch(texts, tokenizer, config.max_len, config.prompt_loss_weight))
    states = _init_states(keys, config, tokenizer.vocab_size)
    losses = []
    done = 0
    while done < config.steps:
        length = min(chunk, config.steps - done)
        states, chunk_losses = _train_chunk(states, data, weights, config, length)
        losses.append(np.asarray(chunk_losses))
        done += length
        if on_chunk is not None:
            on_chunk(done, float(losses[-1].mean()))
        if on_losses is not None:
            on_losses(losses[-1])
    return states.params, np.concatenate(losses, axis=1)


def unstack(stacked_params, seed_index: int):
    """One seed's parameters out of `train`'s stacked parameters."""
    return jax.tree.map(lambda x: x[seed_index], stacked_params)


# ---------------------------------------------------------------------------------------------
# Policy


def _round_up(n: int, multiple: int) -> int:
    return max(multiple, -(-n // multiple) * multiple)


def _pow2_at_least(n: int) -> int:
    return 1 << max(0, n - 1).bit_length()


@partial(jax.jit, static_argnames=("config",))
def _continuation_logprobs(params, config, tokens, positions, segments, sources, targets):
    """Packed rows [B, L] (tokens, positions, segments) -> log p(targets [B, T]) where target
    t is predicted at row position sources [B, T]. Only T positions go through the head."""
    h = _hidden(params, config, tokens, positions, segments)
    h = jnp.take_along_axis(h, sources[..., None], axis=1)
    logp = jax.nn.log_softmax(_project(params, config, h), axis=-1)
    return jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]


@partial(jax.jit, static_argnames=("config",))
def _next_token_logits(params, config, tokens, index):
    """tokens [1, L] -> the logits [V] predicting the token after position `index`."""
    positions = jnp.broadcast_to(jnp.arange(tokens.shape[1]), tokens.shape)
    h = _hidden(params, config, tokens, positions, None)[0, index]
    return _project(params, config, h)


class _Packed(NamedTuple):
    """One query as one row: the prompt (segment 0) then each action's continuation minus its
    last token (segment k + 1, positions restarting after the prompt), so all actions share
    one pass over the prompt. A one-token action needs no row tokens at all."""
    tokens: list[int]
    positions: list[int]
    segments: list[int]
    sources: list[int]   # [T] row position whose output predicts each continuation token
    targets: list[int]   # [T] the continuation tokens
    owners: list[int]    # [T] which action each belongs to


class BuiltinPolicy:
    """The builtin model as an `LMPolicy`: one seed's parameters, zero-shot by likelihood.

    An action's log-likelihood is log p(sep + action | <bos> prompt) summed over the
    continuation's tokens, sep being " " unless the prompt already ends in whitespace. A prompt
    too long for the context keeps its last max_len - (longest continuation) tokens, the same
    for all of a query's actions (so its scores never depend on how queries are batched).
    """

    def __init__(self, params, tokenizer: Tokenizer, config: BuiltinConfig, name: str = "builtin",
                 temperature: float = 1.0, batch_tokens: int = 16384):
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        if params["params"]["embed"]["embedding"].ndim != 2:
            raise ValueError("params are stacked over seeds: use BuiltinPolicy.for_seed(params, i, ...)")
        if _vocab_size(params) != tokenizer.vocab_size:
            raise ValueError(f"params have a vocabulary of {_vocab_size(params)}, the tokenizer {tokenizer.vocab_size}")
        self.params = params
        self.tokenizer = tokenizer
        self.config = config
        self.name = name
        self.temperature = float(temperature)
        self.batch_tokens = int(batch_tokens)
        """Rows x row length per forward pass (memory: about 16 floats x width per token)."""

    @classmethod
    def for_seed(cls, stacked_params, seed_index: int, tokenizer: Tokenizer, config: BuiltinConfig,
                 **options) -> "BuiltinPolicy":
        return cls(unstack(stacked_params, seed_index), tokenizer, config, **options)

    def choose(self, queries: Sequence[Query]) -> list[Choice]:
        return [softmax_choice(ll / self.temperature) for ll in self.loglikelihoods_many(queries)]

    def loglikelihoods(self, query: Query) -> np.ndarray:
        """[len(query.actions)] float64: log p(sep + action | prompt) for each legal action."""
        return self.loglikelihoods_many([query])[0]

    def loglikelihoods_many(self, queries: Sequence[Query]) -> list[np.ndarray]:
        packed = [self._pack(q) for q in queries]
        results = [np.zeros(len(q.actions)) for q in queries]
        order = sorted(range(len(packed)), key=lambda i: len(packed[i].tokens))
        start = 0
        while start < len(order):
            # Grow the batch while the padded rows fit in batch_tokens (sorted: the last is longest).
            end = start + 1
            while end < len(order):
                rows = end + 1 - start
                length = _round_up(len(packed[order[end]].tokens), 32)
                if _pow2_at_least(rows) * length > self.batch_tokens:
                    break
                end += 1
            batch = order[start:end]
            for i, logp in zip(batch, self._score([packed[i] for i in batch])):
                np.add.at(results[i], packed[i].owners, logp[:len(packed[i].owners)])
            start = end
        return results

    def _pack(self, query: Query) -> _Packed:
        sep = "" if query.prompt[-1:].isspace() else " "
        continuations = [self.tokenizer.encode(sep + action) for action in query.actions]
        longest = max(len(c) for c in continuations)
        budget = self.config.max_len - max(longest - 1, 0)
        if budget < 1:
            raise ValueError(f"an action of {longest} tokens leaves no room for the prompt in max_len "
                             f"{self.config.max_len}")
        prompt = ([BOS] + self.tokenizer.encode(query.prompt))[-budget:]
        tokens, positions, segments = list(prompt), list(range(len(prompt))), [0] * len(prompt)
        sources, targets, owners = [], [], []
        for k, cont in enumerate(continuations):
            if not cont:  # an empty action (prompt ending in whitespace): log p = 0
                continue
            start = len(tokens)
            tokens += cont[:-1]
            positions += range(len(prompt), len(prompt) + len(cont) - 1)
            segments += [k + 1] * (len(cont) - 1)
            sources += [len(prompt) - 1] + list(range(start, start + len(cont) - 1))
            targets += cont
            owners += [k] * len(cont)
        return _Packed(tokens, positions, segments, sources, targets, owners)

    def _score(self, batch: list[_Packed]) -> np.ndarray:
        """Pad to fixed buckets (rows to a power of two, length to a multiple of 32,
        continuation tokens to a multiple of 8) so few shapes are ever compiled."""
        rows = _pow2_at_least(len(batch))
        length = _round_up(max(len(p.tokens) for p in batch), 32)
        count = _round_up(max(len(p.targets) for p in batch), 8)
        tokens = np.full((rows, length), PAD, np.int32)
        positions = np.zeros((rows, length), np.int32)
        segments = np.full((rows, length), -1, np.int32)
        sources = np.zeros((rows, count), np.int32)
        targets = np.zeros((rows, count), np.int32)
        for i, p in enumerate(batch):
            n, t = len(p.tokens), len(p.targets)
            tokens[i, :n], positions[i, :n], segments[i, :n] = p.tokens, p.positions, p.segments
            sources[i, :t], targets[i, :t] = p.sources, p.targets
        logp = _continuation_logprobs(self.params, self.config, tokens, positions, segments, sources, targets)
        return np.asarray(logp, np.float64)[:len(batch)]

    def generate(self, prompt: str, max_tokens: int = 16, temperature: float = 0.0, seed: int = 0) -> str:
        """Continue `prompt`: greedy when temperature == 0, else sampled from softmax(logits / T).
        Stops before a newline, at <eos>, or after `max_tokens` tokens; returns the new text."""
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature!r}")
        rng = np.random.default_rng(seed)
        newline = self.tokenizer.encode("\n")[0]
        context = [BOS] + self.tokenizer.encode(prompt)
        generated: list[int] = []
        for _ in range(max_tokens):
            window = (context + generated)[-self.config.max_len:]
            length = min(_round_up(len(window), 32), self.config.max_len)
            tokens = np.full((1, length), PAD, np.int32)
            tokens[0, :len(window)] = window
            scores = np.asarray(_next_token_logits(self.params, self.config, tokens, len(window) - 1), np.float64)
            scores[[PAD, BOS, UNK]] = -np.inf  # never targets in training; never emit them
            if temperature == 0:
                token = int(np.argmax(scores))
            else:
                z = np.exp((scores - scores.max()) / temperature)
                token = int(rng.choice(len(z), p=z / z.sum()))
            if token in (EOS, newline):
                break
            generated.append(token)
        return self.tokenizer.decode(generated)


# ---------------------------------------------------------------------------------------------
# Saving (msgpack for arrays, JSON for the rest; never pickle)

_PARAMS, _TOKENIZER, _CONFIG = "params.msgpack", "tokenizer.json", "config.json"


def save(path, params, tokenizer: Tokenizer, config: BuiltinConfig) -> None:
    """Write a model directory: params.msgpack (flax msgpack), tokenizer.json, config.json.
    Params may be one seed's or stacked over seeds."""
    path = Path(path)
    state = jax.tree.map(np.asarray, flax.serialization.to_state_dict(params))
    atomic_write_bytes(path / _PARAMS, flax.serialization.msgpack_serialize(state))
    atomic_write_bytes(path / _TOKENIZER, tokenizer.to_json().encode())
    atomic_write_bytes(path / _CONFIG, config.to_json().encode())


def load(path) -> tuple[Any, Tokenizer, BuiltinConfig]:
    """(params, tokenizer, config) from a directory written by `save`."""
    path = Path(path)
    params = flax.serialization.msgpack_restore((path / _PARAMS).read_bytes())
    params = jax.tree.map(jnp.asarray, params)
    return (params, Tokenizer.from_json((path / _TOKENIZER).read_text()),
            BuiltinConfig.from_json((path / _CONFIG).read_text()))
