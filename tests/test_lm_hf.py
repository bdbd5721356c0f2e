"""The hf backend on a tiny random GPT-2 built from config: nothing is downloaded.

Scores are checked against a hand computation (one unpadded forward pass), batching against
one-at-a-time scoring, and choice against a model trained in the test to answer " right".
"""

import copy
import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from innerlab.agents.lm import Query, make_policy  # noqa: E402
from innerlab.agents.lm.hf import HFPolicy  # noqa: E402

ACTIONS = ("up", "right", "down", "left")
EOS = "<|endoftext|>"


@pytest.fixture(scope="module")
def tiny():
    """(model, tokenizer): a byte-level BPE trained in memory and a 2-layer GPT-2, seed 0."""
    bpe = tokenizers.Tokenizer(tokenizers.models.BPE())
    bpe.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = tokenizers.decoders.ByteLevel()
    corpus = ["Grid:\n..#\n.A.\nAction: right", "Action: up", "Action: down", "Action: left",
              "move up, down, left or right"] * 5
    bpe.train_from_iterator(corpus, tokenizers.trainers.BpeTrainer(
        vocab_size=300, special_tokens=[EOS], show_progress=False,
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=EOS)
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=128, vocab_size=len(tokenizer),
                                     bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id)
    return transformers.GPT2LMHeadModel(config).eval(), tokenizer


def hand_loglik(model, tokenizer, prompt, action, separator=" ", max_positions=None):
    """log p(separator + action | prompt) from one unpadded forward pass."""
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    continuation = tokenizer(separator + action, add_special_tokens=False)["input_ids"]
    if max_positions is not None:
        prompt_ids = prompt_ids[-(max_positions - len(continuation)):]
    ids = torch.tensor([prompt_ids + continuation])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(ids).logits[0].double(), dim=-1)
    start = len(prompt_ids)
    return sum(logprobs[t - 1, ids[0, t]].item() for t in range(start, ids.shape[1]))


PROMPTS = ["Grid:\n..#\n.A.\nAction:", "Action:", "You are at (2, 3). Move up, down, left or right.\nAction:",
           "x"]


def test_loglik_matches_hand_computation(tiny):
    model, tokenizer = tiny
    policy = HFPolicy("tiny", model=model, tokenizer=tokenizer)
    for prompt in PROMPTS:
        got = policy.loglikelihoods(Query(prompt, ACTIONS))
        want = [hand_loglik(model, tokenizer, prompt, action) for action in ACTIONS]
        assert got.dtype == np.float64 and got.shape == (len(ACTIONS),)
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("batch_size", [3, 64])
@pytest.mark.parametrize("keep_logits", [True, False])
def test_batched_equals_one_at_a_time(tiny, batch_size, keep_logits):
    model, tokenizer = tiny
    queries = [Query(prompt, ACTIONS[:2 + i % 3]) for i, prompt in enumerate(PROMPTS)]
    # Pairs of different queries and lengths share padded batches (3 cuts them, 64 holds all).
    policy = HFPolicy("tiny", model=model, tokenizer=tokenizer, batch_size=batch_size)
    assert policy._keep_kwarg == "logits_to_keep"
    if not keep_logits:
        policy._keep_kwarg = None  # the path for models whose forward has no logits_to_keep
    batched = policy._loglikelihoods(queries)
    single = HFPolicy("tiny", model=model, tokenizer=tokenizer, batch_size=1)
    for query, got in zip(queries, batched):
        np.testing.assert_allclose(got, single.loglikelihoods(query), atol=1e-5, rtol=0)


def test_empty_prompt_starts_from_eos(tiny):
    model, tokenizer = tiny
    got = HFPolicy("tiny", model=model, tokenizer=tokenizer).loglikelihoods(Query("", ACTIONS))
    np.testing.assert_allclose(got, [hand_loglik(model, tokenizer, EOS, action) for action in ACTIONS], atol=1e-5)


def test_choice_is_a_distribution_and_deterministic(tiny):
    model, tokenizer = tiny
    policy = make_policy("hf:tiny", model=model, tokenizer=tokenizer)
    assert policy.name == "hf:tiny"
    queries = [Query(prompt, ACTIONS) for prompt in PROMPTS]
    choices = policy.choose(queries)
    assert len(choices) == len(queries)
    for choice in choices:
        assert choice.probs.shape == (len(ACTIONS),) and choice.probs.dtype == np.float64
        assert choice.probs.sum() == pytest.approx(1.0) and (choice.probs > 0).all()
        assert choice.illegal == 0 and choice.answers == 1
    again = policy.choose(queries)
    for first, second in zip(choices, again):
        np.testing.assert_array_equal(first.probs, second.probs)
    # Temperature divides the log-likelihoods: a low one sharpens the same ranking.
    cold = HFPolicy("tiny", model=model, tokenizer=tokenizer, temperature=0.1).choose(queries[:1])[0].probs
    assert cold.argmax() == choices[0].probs.argmax() and cold.max() > choices[0].probs.max()


@pytest.mark.parametrize("target", ["right", "left"])
def test_trained_model_prefers_its_answer(tiny, target):
    model, tokenizer = tiny
    model = copy.deepcopy(model).train()
    ids = torch.tensor([tokenizer(f"Grid:\n..#\n.A.\nAction: {target}", add_special_tokens=False)["input_ids"]])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    torch.manual_seed(0)
    for _ in range(30):
        optimizer.zero_grad()
        model(ids, labels=ids).loss.backward()
        optimizer.step()
    probs = HFPolicy("tiny", model=model, tokenizer=tokenizer).choose([Query("Grid:\n..#\n.A.\nAction:", ACTIONS)])[0].probs
    assert ACTIONS[int(probs.argmax())] == target and probs.max() > 0.9


def test_load_by_path_matches_in_memory(tiny, tmp_path):
    model, tokenizer = tiny
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded = make_policy(f"hf:{tmp_path}", batch_size=4)
    assert loaded.name == f"hf:{tmp_path}"
    in_memory = HFPolicy("tiny", model=model, tokenizer=tokenizer)
    for prompt in PROMPTS:
        query = Query(prompt, ACTIONS)
        np.testing.assert_allclose(loaded.loglikelihoods(query), in_memory.loglikelihoods(query), atol=1e-6, rtol=0)


def test_missing_model_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match="no directory"):
        make_policy(f"hf:{tmp_path / 'no-such-model'}")
    with pytest.raises(OSError, match="HF_HUB_OFFLINE"):
        make_policy("hf:innerlab-tests/no-such-model")
    with pytest.raises(OSError, match="no loadable tokenizer"):
        make_policy(f"hf:{tmp_path}")


def test_long_prompt_is_left_truncated(tiny):
    model, tokenizer = tiny
    policy = HFPolicy("tiny", model=model, tokenizer=tokenizer)
    prompt = "noise " * 200 + "Grid:\n..#\n.A.\nAction:"
    assert len(tokenizer(prompt, add_special_tokens=False)["input_ids"]) > 128
    got = policy.loglikelihoods(Query(prompt, ACTIONS))
    assert np.isfinite(got).all()
    want = [hand_loglik(model, tokenizer, prompt, action, max_positions=128) for action in ACTIONS]
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_bad_options():
    with pytest.raises(ValueError, match="temperature"):
        HFPolicy("tiny", model=object(), tokenizer=object(), temperature=0.0)
    with pytest.raises(ValueError, match="batch_size"):
        HFPolicy("tiny", model=object(), tokenizer=object(), batch_size=0)
