"""Throughput of the zero-shot experiment's language models (prints figures; not a test).

- builtin training: optimisation steps per second on the zero-shot quick preset's family
  transcripts (batch 32, width 64, depth 2), at 1 and at 3 vmapped seeds (compile apart);
- policy tables: (state, action) pairs scored per second reading a whole policy table of the
  `objectworld` game (every reachable state x 4 actions, all three encodings), by the builtin
  model and, as a peer in the same run, by a GPT-2 of the same width and depth through the hf
  backend (random weights; skipped if torch/transformers are missing).

    .venv/bin/python benchmarks/lm_throughput.py [--steps 50] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp


def train_rate(texts, tokenizer, model_config, seeds: int, steps: int) -> tuple[float, float]:
    """(steps/s, compile + first-chunk seconds) of `steps` builtin training steps over `seeds` seeds."""
    import dataclasses

    from innerlab.agents.lm import builtin

    keys = jax.random.split(jax.random.key(0), seeds)
    config = dataclasses.replace(model_config, steps=steps, warmup_steps=0)
    start = time.perf_counter()
    builtin.train(texts, tokenizer, config, keys, chunk=steps)  # compiles and runs once
    first = time.perf_counter() - start
    start = time.perf_counter()
    builtin.train(texts, tokenizer, config, keys, chunk=steps)
    return steps / (time.perf_counter() - start), first


def score_rate(policy, queries) -> float:
    """(state, action) pairs scored per second (after a warm-up call on the same queries, which
    compiles every padded shape they need)."""
    policy.choose(queries)
    start = time.perf_counter()
    policy.choose(queries)
    return sum(len(q.actions) for q in queries) / (time.perf_counter() - start)


def _hf_peer(model_config, corpus):
    """A random GPT-2 of the builtin's width, depth and heads behind the hf backend, with a
    byte-level BPE trained on a few prompts (nothing downloaded)."""
    import tokenizers
    import torch
    import transformers

    from innerlab.agents.lm.hf import HFPolicy

    bpe = tokenizers.Tokenizer(tokenizers.models.BPE())
    bpe.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = tokenizers.decoders.ByteLevel()
    bpe.train_from_iterator(corpus + [" up right down left"], tokenizers.trainers.BpeTrainer(
        vocab_size=1000, special_tokens=["<|endoftext|>"], show_progress=False,
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>")
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        n_layer=model_config.depth, n_head=model_config.heads, n_embd=model_config.width, n_positions=512,
        vocab_size=len(tokenizer), bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id))
    return HFPolicy("peer", model=model, tokenizer=tokenizer, batch_size=64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50, help="timed builtin training steps")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args()

    from innerlab.agents.lm import builtin
    from innerlab.experiments.zero_shot import train as impl
    from innerlab.experiments.zero_shot.config import PRESETS

    config = PRESETS["quick"]
    texts = impl.family_transcripts(config)
    tokenizer = builtin.Tokenizer.from_texts([p + a for p, a in texts])
    model_config = builtin.BuiltinConfig(width=config.lm_width, depth=config.lm_depth, heads=config.lm_heads,
                                         max_len=config.lm_max_len, batch_size=config.lm_batch,
                                         learning_rate=config.lm_lr, prompt_loss_weight=config.lm_prompt_loss_weight)
    results = {"platform": jax.devices()[0].platform, "texts": len(texts)}
    for seeds in (1, 3):
        rate, first = train_rate(texts, tokenizer, model_config, seeds, args.steps)
        results[f"builtin_train_steps_per_s_{seeds}_seeds"] = rate
        results[f"builtin_train_compile_s_{seeds}_seeds"] = first - args.steps / rate

    game = impl.game("objectworld")
    queries = [q for encoding in ("ascii", "sentences", "json") for q in game.queries(encoding)]
    params = builtin.init(jax.random.key(0), model_config, tokenizer.vocab_size)
    results["builtin_pairs_per_s"] = score_rate(builtin.BuiltinPolicy(params, tokenizer, model_config), queries)
    try:
        peer = _hf_peer(model_config, [q.prompt for q in queries[:50]])
    except ImportError:
        peer = None
    if peer is not None:
        results["hf_pairs_per_s"] = score_rate(peer, queries)
    if args.json:
        print(json.dumps(results))
        return
    for name, value in results.items():
        print(f"{name:40s} {value:,.1f}" if isinstance(value, float) else f"{name:40s} {value}")


if __name__ == "__main__":
    main()
