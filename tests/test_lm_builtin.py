"""The builtin language model: tokenizer, causal transformer, training, scoring policy, saving."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from innerlab.agents.lm.base import Query
from innerlab.agents.lm.builtin import (
    BOS, EOS, PAD, UNK, BuiltinConfig, BuiltinPolicy, Tokenizer, encode_batch, init, load, logits, next_token_loss, save,
    train, unstack,
)

GAME_TEXT = """Game: collect. Rules: red circle +1. blue square -1. green circle 0. The game ends when nothing worth points is left.
Player: expert
Map:
. . r .
. @ . .
b . . .
Action: up"""

VARIED = [
    GAME_TEXT,
    "1. e4 e5 2. Nf3 Nc6 3. Bb5 a6 O-O O-O-O e8=Q+ Qxf7#",
    '{"state": {"x": [1, 2, 3]}, "legal": ["up", "down"]}\n\n',
    "  leading spaces,\ttab? no: tabs are not printable ASCII~`|\\^_",
    "",
    "Action:",
]


# --- tokenizer -----------------------------------------------------------------------------


def test_tokenizer_round_trips_printable_text():
    tok = Tokenizer.from_texts([GAME_TEXT], max_words=20)
    for text in VARIED:
        printable = text.replace("\t", " ")
        assert tok.decode(tok.encode(printable)) == printable
    # A character outside printable ASCII + newline is <unk>, decoded as U+FFFD.
    assert tok.encode("a\tb")[1] == UNK
    assert tok.decode(tok.encode("a\tb\u00e9")) == "a\ufffdb\ufffd"


def test_tokenizer_layout_and_known_words():
    tok = Tokenizer(["up", "Action", "r"])
    assert (PAD, BOS, EOS, UNK) == (0, 1, 2, 3)
    assert tok.vocab_size == 4 + 96 + 2 + 2 + 1  # specials, chars, up/" up", Action/" Action", " r"
    assert len(tok.encode(" up")) == 1 and len(tok.encode("up")) == 1
    assert tok.encode("Action: up") == [tok.encode("Action")[0], tok.encode(":")[0], tok.encode(" up")[0]]
    assert len(tok.encode(" r")) == 1 and tok.encode("r") == [4 + ord("r") - 32]
    assert len(tok.encode("upper")) == 5  # an unknown run of letters is spelled out
    assert tok.decode(tok.encode("Nf3 upward")) == "Nf3 upward"
    assert tok.decode([BOS, *tok.encode("up"), EOS, PAD]) == "up"
    with pytest.raises(ValueError):
        tok.decode([tok.vocab_size])


def test_tokenizer_from_texts_is_deterministic_and_serialises():
    texts = ["b a c a b a", "zeta zeta beta", "beta alpha"]
    tok = Tokenizer.from_texts(texts, max_words=4)
    # Most frequent first, ties alphabetically; independent of the texts' order.
    assert tok.words == ("a", "b", "beta", "zeta")
    assert Tokenizer.from_texts(texts[::-1], max_words=4) == tok
    again = Tokenizer.from_json(tok.to_json())
    assert again == tok and again.vocab_size == tok.vocab_size
    assert again.encode(GAME_TEXT) == tok.encode(GAME_TEXT)
    with pytest.raises(ValueError):
        Tokenizer(["up", "up"])
    with pytest.raises(ValueError):
        Tokenizer(["Nf3"])
    with pytest.raises(ValueError):
        Tokenizer.from_json('{"words": []}')


# --- model ---------------------------------------------------------------------------------

# The default model (width 64, 4 heads, depth 2) with a short context and run. In trials it
# learned the light -> action rule in 16 of 16 seeds; width 32 with 2 or 4 heads learned it in
# only about half of them within 300 steps (attending back to the light is learned late).
SMALL = BuiltinConfig(max_len=64, steps=300, warmup_steps=20)


_jit_logits = jax.jit(logits, static_argnums=1)


def test_model_is_causal_and_right_padding_is_harmless():
    params = init(jax.random.key(0), SMALL, 150)
    tokens = jax.random.randint(jax.random.key(1), (2, 20), 4, 150)
    base = _jit_logits(params, SMALL, tokens)
    assert base.shape == (2, 20, 150)
    changed = _jit_logits(params, SMALL, tokens.at[:, 12].set(5))
    np.testing.assert_allclose(changed[:, :12], base[:, :12], atol=1e-5)
    assert not np.allclose(changed[:, 12:], base[:, 12:])
    padded = _jit_logits(params, SMALL, jnp.pad(tokens, ((0, 0), (0, 9)), constant_values=PAD))
    np.testing.assert_allclose(padded[:, :20], base, atol=1e-5)


def test_encode_batch_pads_right_and_keeps_the_end():
    tok = Tokenizer(["Action"])
    data, weights = encode_batch(["ab", "x" * 100], tok, max_len=16)
    assert data.shape == (2, 17) and data.dtype == np.int32 and weights.shape == (2, 16)
    assert list(data[0, :4]) == [BOS, *tok.encode("ab"), EOS] and (data[0, 4:] == PAD).all()
    assert data[1, -1] == EOS and tok.decode(data[1]) == "x" * 16  # <bos> and the start are cut
    assert list(weights[0]) == [1.0] * 3 + [0.0] * 13 and (weights[1] == 1.0).all()


def test_encode_batch_weighs_prompt_and_answer():
    tok = Tokenizer(["Action", "up"])
    data, weights = encode_batch([("Action:", " up")], tok, max_len=16, prompt_weight=0.25)
    row = [BOS, *tok.encode("Action:"), *tok.encode(" up"), EOS]
    assert list(data[0, :len(row)]) == row
    # Targets: "Action", ":" (prompt, 0.25), " up", <eos> (answer, 1), then padding (0).
    assert list(weights[0, :4]) == [0.25, 0.25, 1.0, 1.0] and (weights[0, 4:] == 0).all()
    # The loss with weights is the weighted mean of per-target cross-entropies.
    params = init(jax.random.key(0), SMALL, tok.vocab_size)
    plain = next_token_loss(params, SMALL, jnp.asarray(data))
    answer_only = next_token_loss(params, SMALL, jnp.asarray(data), jnp.asarray(weights * (weights == 1)))
    assert np.isfinite(float(plain)) and float(plain) != pytest.approx(float(answer_only))


# --- learning a known answer ---------------------------------------------------------------

_WORDS = "apple banana cherry delta echo fox golf hotel india".split()


def _prompt(light: str, rng) -> str:
    # A distractor line of random words, then the light the action depends on.
    return f"Note: {' '.join(rng.choice(_WORDS, 3))}\nLight: {light}\nAction:"


def _light_texts(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    lights = rng.choice(["red", "green"], n)
    return [_prompt(light, rng) + (" stop" if light == "red" else " go") for light in lights]


@pytest.fixture(scope="module")
def trained():
    texts = _light_texts(200, seed=0)
    tok = Tokenizer.from_texts(texts)
    reports = []
    params, losses = train(texts, tok, SMALL, jax.random.split(jax.random.key(0), 2), chunk=150,
                           on_chunk=lambda step, loss: reports.append((step, loss)))
    return params, losses, tok, reports


def _light_queries(n: int, seed: int) -> list[Query]:
    rng = np.random.default_rng(seed)
    return [Query(_prompt(light, rng), ("stop", "go")) for light in ["red", "green"] * n]


def test_training_learns_the_deterministic_action_for_every_seed(trained):
    params, losses, tok, reports = trained
    assert losses.shape == (2, SMALL.steps) and np.isfinite(losses).all()
    assert [step for step, _ in reports] == [150, 300]
    assert (losses[:, -20:].mean(1) < 0.6 * losses[:, :20].mean(1)).all()
    assert not np.allclose(unstack(params, 0)["params"]["position"], unstack(params, 1)["params"]["position"])
    queries = _light_queries(5, seed=1)
    untrained = BuiltinPolicy(init(jax.random.key(3), SMALL, tok.vocab_size), tok, SMALL)
    assert all(abs(c.probs[0] - 0.5) < 0.1 for c in untrained.choose(queries))
    for seed in range(2):
        choices = BuiltinPolicy.for_seed(params, seed, tok, SMALL).choose(queries)
        right = [c.probs[0 if "red" in q.prompt else 1] for q, c in zip(queries, choices)]
        assert min(right) > 0.9, (seed, right)


def test_greedy_generation_answers_the_learned_action(trained):
    params, _, tok, _ = trained
    policy = BuiltinPolicy.for_seed(params, 0, tok, SMALL)
    rng = np.random.default_rng(2)
    assert policy.generate(_prompt("red", rng)).strip() == "stop"
    assert policy.generate(_prompt("green", rng)).strip() == "go"
    sampled = policy.generate("Note:", max_tokens=5, temperature=1.0, seed=1)
    assert isinstance(sampled, str) and "\n" not in sampled
    assert sampled == policy.generate("Note:", max_tokens=5, temperature=1.0, seed=1)


# --- scoring -------------------------------------------------------------------------------


def _reference_loglik(params, config, tok, prompt, action):
    """log p(" " + action | prompt) from plain unpacked logits, one (prompt, action) at a time."""
    context = [BOS] + tok.encode(prompt)
    cont = tok.encode(" " + action)
    row = (context + cont)[-(config.max_len + 1):]
    padded = np.full((1, config.max_len), PAD, np.int32)  # right padding: one compiled shape
    padded[0, :len(row) - 1] = row[:-1]
    logp = jax.nn.log_softmax(_jit_logits(params, config, padded), axis=-1)[0]
    return sum(float(logp[len(row) - 1 - len(cont) + i, t]) for i, t in enumerate(cont))


def test_choose_batches_exactly_like_single_queries(trained):
    params, _, tok, _ = trained
    policy = BuiltinPolicy.for_seed(params, 1, tok, SMALL)
    chess = ("Nf3", "O-O-O", "e8=Q+", "a6", "Qxf7#")
    queries = _light_queries(3, seed=4) + [
        Query("Light: red\nAction:", ("go", "stop", "wait")),
        Query("1. e4 e5 2. Nf3 Nc6\nMove:", chess),
        Query("Action:", ("stop",)),
        Query("x" * 300 + "\nLight: green\nAction:", ("stop", "go")),  # longer than max_len: cut on the left
    ]
    batched = policy.choose(queries)
    for query, choice in zip(queries, batched):
        assert choice.probs.shape == (len(query.actions),)
        assert abs(choice.probs.sum() - 1) < 1e-9
        single = policy.choose([query])[0]
        np.testing.assert_allclose(choice.probs, single.probs, atol=1e-5)
    # The packed scoring (all actions of a query in one row) equals plain one-by-one scoring.
    for query in queries[-4:]:
        expected = [_reference_loglik(policy.params, SMALL, tok, query.prompt, a) for a in query.actions]
        np.testing.assert_allclose(policy.loglikelihoods(query), expected, atol=1e-4)
    assert batched[-1].probs[1] > 0.9  # the end of the over-long prompt is what counts
    assert policy.choose([]) == []
    sharp = BuiltinPolicy.for_seed(params, 1, tok, SMALL, temperature=0.5).choose(queries[:1])[0]
    assert sharp.probs.max() >= batched[0].probs.max()


def test_save_load_round_trip(trained, tmp_path):
    params, _, tok, _ = trained
    one = unstack(params, 0)
    save(tmp_path / "model", one, tok, SMALL)
    loaded, tok2, config2 = load(tmp_path / "model")
    assert tok2 == tok and config2 == SMALL
    query = _light_queries(1, seed=5)[0]
    np.testing.assert_array_equal(BuiltinPolicy(loaded, tok2, config2).loglikelihoods(query),
                                  BuiltinPolicy(one, tok, SMALL).loglikelihoods(query))


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [
    dict(width=0), dict(heads=3), dict(depth=-1), dict(max_len=1), dict(steps=0),
    dict(warmup_steps=600), dict(learning_rate=0.0), dict(final_lr_fraction=2.0),
    dict(weight_decay=-1.0), dict(batch_size=2.5),
])
def test_bad_config_raises(bad):
    with pytest.raises(ValueError):
        BuiltinConfig(**bad)


def test_bad_policy_arguments_raise(trained):
    params, _, tok, _ = trained
    with pytest.raises(ValueError, match="stacked"):
        BuiltinPolicy(params, tok, SMALL)
    with pytest.raises(ValueError, match="temperature"):
        BuiltinPolicy.for_seed(params, 0, tok, SMALL, temperature=0.0)
    with pytest.raises(ValueError, match="vocabulary"):
        BuiltinPolicy.for_seed(params, 0, Tokenizer([]), SMALL)
    with pytest.raises(ValueError, match="keys"):
        train(["a"], tok, SMALL, jax.random.key(0))


def test_chunking_does_not_change_training():
    tiny = BuiltinConfig(width=16, depth=1, heads=2, max_len=16, steps=6, warmup_steps=1, batch_size=4)
    texts = ["Light: red\nAction: stop", "Light: green\nAction: go", "Note: fox"]
    tok = Tokenizer.from_texts(texts)
    keys = jax.random.split(jax.random.key(5), 2)
    whole, whole_losses = train(texts, tok, tiny, keys, chunk=6)
    parts, parts_losses = train(texts, tok, tiny, keys, chunk=3)  # two chunks of 3 steps
    np.testing.assert_allclose(parts_losses, whole_losses, rtol=1e-5)
    np.testing.assert_allclose(parts["params"]["position"], whole["params"]["position"], atol=1e-6)
