"""Zero-shot objectives: conditions, validation, policy tables, a smoke run end to end, and the
generating (openai) and scoring (hf) backends driven through the experiment."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from innerlab.experiments import get
from innerlab.experiments.base import ConfigError

EXPERIMENT = get("zero-shot")
METRICS = {"epic_to_true", "fit", "heldout_accuracy", "cross_encoding_epic", "illegal_rate", "episode_return"}


def test_conditions_name_the_backend_kind():
    config = EXPERIMENT.preset("quick")
    assert [c.fields for c in EXPERIMENT.conditions(config)] == [
        {"agent": "builtin", "lm": "builtin"}, {"agent": "ppo", "lm": "ppo"},
        {"agent": "oracle", "lm": "oracle"}, {"agent": "random", "lm": "random"}]
    config = dataclasses.replace(config, lm="openai:llama3@http://127.0.0.1:8000/v1", agents=("lm",))
    (only,) = EXPERIMENT.conditions(config)
    assert only.id == "agent-openai" and only.fields["lm"] == "openai:llama3@http://127.0.0.1:8000/v1"
    config = dataclasses.replace(config, lm="hf:/models/gpt2")
    assert EXPERIMENT.conditions(config)[0].fields == {"agent": "hf", "lm": "hf:/models/gpt2"}


@pytest.mark.parametrize("field, value, message", [
    ("lm", "gpt4", "allowed: builtin"),
    ("lm", "openai:llama3@localhost:8000", "allowed: builtin"),
    ("agents", ("human",), "unknown value 'human'"),
    ("games", ("go",), "unknown value 'go'"),
    ("encodings", ("yaml",), "unknown value 'yaml'"),
    ("chess_opponents", ("stockfish",), "unknown value 'stockfish'"),
    ("heldout_fraction", 1.0, "0 < fraction < 1"),
    ("discount", 1.0, "0 < discount < 1"),
    ("lm_heads", 3, "must divide lm_width"),
    ("demos", 0, ">= 1"),
    ("demos", 1, "too few to hold out"),
    ("num_minibatches", 3, "must divide num_envs"),
    ("total_steps", 1023, "less than one update"),
    ("gamma", 1.5, "<= 1"),
    ("ent_coef", -0.1, ">= 0"),
    ("irl_l2", -1.0, ">= 0"),
    ("timeout", 0.0, "> 0"),
])
def test_bad_config_names_the_field(field, value, message):
    config = dataclasses.replace(EXPERIMENT.preset("quick"), **{field: value})
    with pytest.raises(ConfigError, match=message) as err:
        EXPERIMENT.validate(config)
    assert err.value.field == field


def test_total_steps_need_only_one_update_not_one_per_chunk():
    """The old chunk arithmetic asked ppo_steps >= ppo_envs x ppo_rollout x progress_chunks (now total_steps, num_envs, rollout_len);
    chunked training now runs any number of updates exactly."""
    config = dataclasses.replace(EXPERIMENT.preset("quick"), total_steps=1024, progress_chunks=4)
    EXPERIMENT.validate(config)


def test_vocabularies_match_the_environments():
    from innerlab.envs import chess_text, textworld
    from innerlab.experiments.zero_shot import config, train

    assert config.ENCODINGS == textworld.ENCODINGS
    assert config.OPPONENTS == tuple(chess_text.OPPONENTS)
    assert tuple(train.GAME_MAKERS) == config.GAMES


def test_env_steps_counts_ppo_only():
    from innerlab.experiments.zero_shot.config import env_steps

    config = EXPERIMENT.preset("quick")  # 262,144 steps = 256 updates of 64 x 16, per game
    counts = {c.fields["agent"]: env_steps(config, c.fields) for c in EXPERIMENT.conditions(config)}
    assert counts == {"builtin": 0, "ppo": 2 * 262_144, "oracle": 0, "random": 0}
    odd = dataclasses.replace(config, total_steps=262_144 + 1000, games=("rulegame",))
    assert env_steps(odd, {"agent": "ppo", "lm": "ppo"}) == 262_144  # rounded down to whole updates


@pytest.mark.slow
def test_ppo_trains_exactly_the_configured_updates_with_a_tail_chunk():
    """7 updates in 3 progress chunks run as 2 + 2 + 2 and a tail of 1 (the old arithmetic ran
    7 // 2 = 3 chunks of 2: 6 updates). Slow tier: the fast tier covers the same behaviour through
    the kit's run_chunked (tests/test_kit.py) and the contract test's trained-env-steps check."""
    from innerlab.experiments.zero_shot import train as impl

    config = dataclasses.replace(EXPERIMENT.preset("smoke"), total_steps=7 * 16 * 8, progress_chunks=3)
    EXPERIMENT.validate(config)
    tables, steps = impl.ppo_tables(config, impl.game("rulegame"), (0,))
    assert list(steps) == [7 * 16 * 8]
    assert np.allclose(tables.sum(-1), 1.0)


def test_cli_rejects_a_bad_backend_with_one_line(capsys):
    from innerlab.cli import main

    assert main(["run", "zero-shot", "--preset", "smoke", "--lm", "gpt4", "--out", "/tmp/never"]) != 0
    err = capsys.readouterr().err
    assert "lm: " in err and "gpt4" in err and "Traceback" not in err


def test_expected_return_is_exact_on_a_hand_worked_policy():
    from innerlab.experiments.zero_shot import train as impl

    game = impl.game("objectworld")
    mdp = game.mdp
    # Always "up" from the start (row 3, col 3): up, up, then stuck at the top edge. Nothing is
    # collected in 12 moves.
    up = np.zeros((mdp.num_states, 4))
    up[:, 0] = 1.0
    assert impl.expected_return(game, up) == 0.0
    # Up, up, right, right collects the red circle (+1) on move 4 and ends the game: the
    # deterministic policy "right if in row 1, else up" scores exactly 1.
    policy = np.zeros((mdp.num_states, 4))
    top = mdp.agent_pos[:, 0] == 0
    policy[top, 1], policy[~top, 0] = 1.0, 1.0
    assert impl.expected_return(game, policy) == pytest.approx(1.0)
    # The uniform policy scores strictly between the worst and best outcomes.
    assert -2.0 < impl.expected_return(game, impl.uniform_table(game)) < 1.0


def test_lm_table_puts_answers_on_the_playable_states():
    from innerlab.agents.lm import sampled_choice
    from innerlab.experiments.zero_shot import train as impl

    game = impl.game("rulegame")

    class Says:
        name = "says"

        def choose(self, queries):
            # "left" when the map shows the player in column 1, garbage otherwise.
            return [sampled_choice(["left" if "\n@" in q.prompt else "banana"], q) for q in queries]

    table, illegal, answers = impl.lm_table(Says(), game, "ascii")
    playable = game.playable_states
    assert answers == len(playable) and 0 < illegal < answers
    assert np.allclose(table.sum(-1), 1.0)
    col1 = game.mdp.agent_pos[playable, 1] == 0
    assert (table[playable[col1], 3] == 1.0).all()   # "left"
    assert (table[playable[~col1], 0] == 1.0).all()  # illegal -> the default, "up"
    unreachable = np.setdiff1d(np.arange(game.mdp.num_states), playable)
    assert np.allclose(table[unreachable], 0.25)


def test_smoke_run_writes_tidy_metrics_and_report(smoke_run):
    out = smoke_run("zero-shot")  # the session's shared smoke run (conftest.py)
    rows = pd.read_parquet(out / "metrics.parquet")
    for column in ("experiment", "condition", "agent", "lm", "env", "encoding", "seed", "metric", "value"):
        assert column in rows.columns
    assert set(rows.agent) == {"builtin", "ppo", "oracle", "random"}
    assert METRICS <= set(rows.metric)
    tabular = rows[rows.env.isin(["objectworld", "rulegame"])]
    assert set(tabular.env) == {"objectworld", "rulegame"}
    for agent in ("builtin", "ppo", "oracle", "random"):
        sel = tabular[tabular.agent == agent]
        # PPO reads arrays, not text: it cannot answer illegally and reports no illegal_rate.
        assert METRICS - ({"illegal_rate"} if agent == "ppo" else set()) <= set(sel.metric), agent
        assert set(sel[sel.metric == "fit"].encoding) == {"ascii", "json"}
        assert set(sel[sel.metric == "cross_encoding_epic"].encoding) == {"ascii|json"}
    assert not rows.duplicated(["condition", "env", "encoding", "seed", "metric", "item"]).any()
    epic = rows[rows.metric.isin(["epic_to_true", "cross_encoding_epic"])].value.dropna()
    assert ((epic >= 0) & (epic <= 1)).all()
    assert rows[rows.metric == "illegal_rate"].value.between(0, 1).all()
    acc = rows[rows.metric == "heldout_accuracy"].value
    assert acc.between(0, 1).all()
    # Chess: the builtin and random agents played; scores are means of 0 / 0.5 / 1.
    chess = rows[rows.env == "chess-random"]
    assert set(chess.agent) == {"builtin", "random"}
    assert chess[chess.metric == "episode_return"].value.between(0, 1).all()
    # The builtin model's own control rows exist (its training family, expert vs random prompts).
    assert {"family_return_expert", "family_best_move_expert", "family_best_move_random", "lm_final_loss"} <= set(rows.metric)
    # Measured training length: PPO's env steps (its update counter, summed over the two
    # games) and the builtin model's optimisation steps.
    from innerlab.experiments.zero_shot.config import env_steps

    config = EXPERIMENT.preset("smoke")
    for condition in EXPERIMENT.conditions(config):
        measured = rows[(rows.condition == condition.id) & (rows.metric == "env_steps")].value
        expected = env_steps(config, condition.fields)
        assert (list(measured) == [expected] * config.num_seeds) if expected else measured.empty, condition.id
    assert env_steps(config, {"agent": "ppo"}) == 2 * 2048
    assert list(rows[rows.metric == "train_steps"].value) == [config.lm_steps] * config.num_seeds
    html = (out / "report.html").read_text()
    for text in ("Controls", "EPIC", "Ziebart", "Chess", "data:image/png;base64,"):
        assert text in html
    assert (out / "figures" / "measures.png").is_file()
    assert (out / "figures" / "objective_objectworld.png").is_file()


SMALL = dict(num_seeds=2, agents=("lm",), games=("rulegame",), encodings=("ascii", "json"), demos=16, irl_steps=20,
             chess_games=0)


def test_openai_backend_against_innerlab_serving_its_builtin_model(tmp_path):
    """A real local HTTP server speaking the OpenAI API, answering with a (tiny, untrained)
    builtin model's greedy generations: the experiment runs, counts what it cannot parse as
    illegal, and never crashes."""
    import jax

    from innerlab.agents.lm import builtin, serve
    from innerlab.experiments.zero_shot import train as impl

    tokenizer = builtin.Tokenizer([])  # characters only: an untrained model babbles letters
    model_config = builtin.BuiltinConfig(width=16, depth=1, heads=2, max_len=128, steps=1, batch_size=2, warmup_steps=0)
    model = builtin.BuiltinPolicy(builtin.init(jax.random.key(0), model_config, tokenizer.vocab_size), tokenizer,
                                  model_config)
    with serve(lambda prompt, max_tokens, temperature, seed: model.generate(prompt, max_tokens, temperature, seed)) \
            as server:
        config = dataclasses.replace(EXPERIMENT.preset("smoke"), lm=f"openai:builtin@{server.url}", **SMALL)
        EXPERIMENT.validate(config)
        (condition,) = EXPERIMENT.conditions(config)
        rows = pd.DataFrame(impl.run_job(config, condition, (0, 1)))
    assert METRICS <= set(rows.metric)
    illegal = rows[rows.metric == "illegal_rate"].value
    assert illegal.between(0, 1).all() and (illegal > 0).any()  # an untrained model mostly babbles
    # One fixed model: its table is read once, so every seed reports the same illegal rate.
    assert rows[rows.metric == "illegal_rate"].groupby("encoding").value.nunique().max() == 1


def test_openai_backend_that_is_down_stops_the_run_with_a_clear_error():
    import socket

    from innerlab.agents.lm import LMBackendError
    from innerlab.experiments.zero_shot import train as impl

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = dataclasses.replace(EXPERIMENT.preset("smoke"), lm=f"openai:m@http://127.0.0.1:{port}/v1",
                                 retries=0, timeout=1.0, **SMALL)
    (condition,) = EXPERIMENT.conditions(config)
    with pytest.raises(LMBackendError, match="refused"):
        impl.run_job(config, condition, (0,))


def test_hf_backend_through_the_experiment(tmp_path):
    """A tiny random GPT-2 saved to disk and named by path: no download."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")
    from innerlab.experiments.zero_shot import train as impl

    bpe = tokenizers.Tokenizer(tokenizers.models.BPE())
    bpe.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = tokenizers.decoders.ByteLevel()
    bpe.train_from_iterator([impl.game("rulegame").prompt(0, "ascii") + " up right down left"] * 3,
                            tokenizers.trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>"],
                                                           show_progress=False,
                                                           initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>")
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        n_layer=1, n_head=2, n_embd=16, n_positions=512, vocab_size=len(tokenizer),
        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id))
    model.save_pretrained(tmp_path / "tiny")
    tokenizer.save_pretrained(tmp_path / "tiny")
    config = dataclasses.replace(EXPERIMENT.preset("smoke"), lm=f"hf:{tmp_path / 'tiny'}", **SMALL)
    (condition,) = EXPERIMENT.conditions(config)
    assert condition.fields["agent"] == "hf"
    rows = pd.DataFrame(impl.run_job(config, condition, (0, 1)))
    assert METRICS <= set(rows.metric)
    assert (rows[rows.metric == "illegal_rate"].value == 0).all()  # scoring cannot answer illegally
    ret = rows[rows.metric == "episode_return"]
    assert ret.value.between(-1, 1).all()
    assert (ret.groupby("encoding").value.nunique() == 1).all()  # one deterministic model: same table every seed


def test_live_curves_of_the_builtin_model_and_each_ppo_agent(smoke_run):
    """The builtin model's loss (its own training loop) and each game's PPO agent (one after
    another in one job) get curves of their own, read back by TensorBoard's reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from innerlab.experiments.zero_shot.config import PRESETS

    run, config = smoke_run("zero-shot"), PRESETS["smoke"]

    def scalars(condition, tag):
        accumulator = EventAccumulator(str(run / "tb" / condition / "seed-1"), size_guidance={"scalars": 0})
        accumulator.Reload()
        return accumulator.Scalars(tag)

    loss = scalars("agent-builtin", "lm/loss")
    assert [e.step for e in loss] == list(range(1, config.lm_steps + 1)) and all(e.value > 0 for e in loss)
    updates = config.total_steps // (config.num_envs * config.rollout_len)
    for game in ("objectworld", "rulegame"):
        assert [e.step for e in scalars("agent-ppo", f"ppo-{game}/entropy")] == list(range(1, updates + 1))
