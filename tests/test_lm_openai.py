"""The `openai` backend and innerlab's OpenAI-compatible server, over real local HTTP.

No urllib mocks: every test talks to a server on 127.0.0.1, either `serve(complete)` or a tiny
`http.server` handler written here to misbehave in one precise way (sleep, refuse, garble,
reject, echo the key). Retry waits are shrunk (backoff=0.01) so the whole file runs in seconds.
"""

from __future__ import annotations

import contextlib
import http.server
import itertools
import json
import logging
import socket
import threading
import time
import urllib.error
import urllib.request
import warnings

import numpy as np
import pytest

from innerlab.agents.lm import Query, make_policy
from innerlab.agents.lm.openai import MALFORMED_TEXT, LMBackendError, OpenAIPolicy
from innerlab.agents.lm.server import serve

ACTIONS = ("up", "right", "down", "left")
QUERY = Query("You are at the start.\nAction:", ACTIONS, default=3)
SECRET = "sk-test-0123456789-do-not-leak"
FAST = dict(retries=1, backoff=0.01, timeout=2.0)


def chat_body(content) -> bytes:
    return json.dumps({"object": "chat.completion",
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                    "finish_reason": "stop"}]}).encode()


@contextlib.contextmanager
def custom_server(respond):
    """A server whose every POST is answered by `respond(attempt, headers, body) -> (status, bytes[, headers])`.

    Yields (base_url, requests): `requests` lists (headers, parsed JSON body) as the server saw them.
    """
    requests = []
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with lock:
                attempt = len(requests)
                requests.append((self.headers, json.loads(raw)))
            status, data, *extra = respond(attempt, self.headers, raw)
            self.send_response(status)
            for name, value in (extra[0] if extra else {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    class Quiet(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request, client_address):
            pass  # the client hung up on a sleeping handler: expected here

    httpd = Quiet(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", requests
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def right_server():
    with serve(lambda prompt, max_tokens, temperature, seed: "right") as server:
        yield server


# 1. Round trip through make_policy and serve.

def test_round_trip_one_hot_on_the_answer(right_server):
    policy = make_policy(f"openai:test@{right_server.url}")
    assert isinstance(policy, OpenAIPolicy)
    assert policy.name == f"openai:test@{right_server.url}"
    [choice] = policy.choose([QUERY])
    np.testing.assert_array_equal(choice.probs, [0.0, 1.0, 0.0, 0.0])
    assert choice.illegal == 0 and choice.answers == 1 and choice.texts == ("right",)


def test_prompt_lists_the_legal_actions_and_request_fields():
    seen = []

    def complete(prompt, max_tokens, temperature, seed):
        seen.append((prompt, max_tokens, temperature, seed))
        return "down"

    with serve(complete) as server:
        policy = OpenAIPolicy("m", server.url, samples=2, temperature=0.5, max_tokens=7, seed=10)
        [choice] = policy.choose([QUERY])
    assert choice.probs[2] == 1.0
    prompt = seen[0][0]
    assert prompt.startswith(policy.system_prompt + "\n\n" + QUERY.prompt)  # system first, user last
    assert prompt.endswith("Legal actions: 1) up, 2) right, 3) down, 4) left")
    assert [s[1:] for s in seen] == [(7, 0.5, 10), (7, 0.5, 11)]  # one request per sample, seed + i


# 2. Several samples: a numbered answer parses, an unparseable one is the default action.

def test_samples_mix_legal_numbered_and_illegal_answers():
    cycle = itertools.cycle(["up", "2", "banana"])
    with serve(lambda *args: next(cycle)) as server:
        policy = OpenAIPolicy("m", server.url, samples=3)
        first, second = policy.choose([QUERY, Query("again\nAction:", ACTIONS, default=0)])
    np.testing.assert_allclose(first.probs, [1 / 3, 1 / 3, 0, 1 / 3])  # banana -> default "left"
    np.testing.assert_allclose(second.probs, [2 / 3, 1 / 3, 0, 0])     # banana -> default "up"
    assert (first.illegal, first.answers, first.texts) == (1, 3, ("up", "2", "banana"))
    assert second.illegal == 1


# 3. Timeouts are retried, then stop the run.

def test_timeout_retries_then_raises():
    def respond(attempt, headers, body):
        time.sleep(0.6)
        return 200, chat_body("up")

    with custom_server(respond) as (url, requests):
        policy = OpenAIPolicy("m", url, timeout=0.2, retries=1, backoff=0.01)
        with pytest.raises(LMBackendError, match=r"timed out after 0\.2 s") as info:
            policy.choose([QUERY])
        assert "after 2 attempts" in str(info.value) and url in str(info.value)
        assert len(requests) == 2  # retries + 1


# 4. Nobody listening.

def test_refused_connection_raises():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    policy = OpenAIPolicy("m", f"http://127.0.0.1:{port}/v1", retries=2, backoff=0.01)
    with pytest.raises(LMBackendError, match="connection refused") as info:
        policy.choose([QUERY])
    assert "after 3 attempts" in str(info.value)


# 5. Malformed 200 responses: retried, then an illegal answer and one warning.

@pytest.mark.parametrize("garbage", [b"not json", json.dumps({"object": "chat.completion"}).encode(),
                                     chat_body(None), chat_body(["up"])])
def test_garbage_counts_as_illegal_and_warns_once(garbage):
    with custom_server(lambda *args: (200, garbage)) as (url, requests):
        policy = OpenAIPolicy("m", url, samples=2, **FAST)
        with pytest.warns(RuntimeWarning, match="malformed") as record:
            [choice] = policy.choose([QUERY])
            policy.choose([QUERY])
        assert len(requests) == 2 * 2 * 2  # 2 calls x 2 samples x (retries + 1)
    assert len(record) == 1  # one warning per policy, not per answer
    np.testing.assert_array_equal(choice.probs, [0, 0, 0, 1])  # all on the default, "left"
    assert (choice.illegal, choice.answers, choice.texts) == (2, 2, (MALFORMED_TEXT, MALFORMED_TEXT))
    assert policy.malformed == 4


def test_garbage_once_then_good_is_retried():
    def respond(attempt, headers, body):
        return 200, b"not json" if attempt == 0 else chat_body("down")

    with custom_server(respond) as (url, requests):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a recovered answer must not warn
            [choice] = OpenAIPolicy("m", url, **FAST).choose([QUERY])
        assert len(requests) == 2
    assert choice.illegal == 0 and choice.probs[2] == 1.0


def test_rate_limit_and_server_error_are_retried():
    statuses = [429, 503, 200]
    def respond(attempt, headers, body):
        return statuses[attempt], chat_body("up"), {"Retry-After": "0"}

    with custom_server(respond) as (url, requests):
        [choice] = OpenAIPolicy("m", url, retries=2, backoff=0.01).choose([QUERY])
        assert len(requests) == 3 and choice.probs[0] == 1.0
    with custom_server(lambda *_: (500, b'{"error": {"message": "out of memory"}}')) as (url, requests):
        with pytest.raises(LMBackendError, match="HTTP 500: out of memory"):
            OpenAIPolicy("m", url, retries=0).choose([QUERY])
        assert len(requests) == 1


# 6. Client errors stop at once.

@pytest.mark.parametrize("status, message", [(401, "Incorrect API key provided"),
                                             (404, "The model `m` does not exist")])
def test_client_errors_raise_immediately(status, message):
    body = json.dumps({"error": {"message": message, "type": "invalid_request_error"}}).encode()
    with custom_server(lambda *_: (status, body)) as (url, requests):
        with pytest.raises(LMBackendError) as info:
            OpenAIPolicy("m", url, retries=3, backoff=0.01).choose([QUERY])
        assert len(requests) == 1
    assert f"HTTP {status}" in str(info.value) and message in str(info.value)


def test_redirects_are_not_followed():
    elsewhere = {"Location": "http://example.invalid/v1/chat/completions"}
    with custom_server(lambda *_: (302, b"", elsewhere)) as (url, requests):
        with pytest.raises(LMBackendError, match="HTTP 302"):
            OpenAIPolicy("m", url, **FAST).choose([QUERY])
        assert len(requests) == 1


# 7. The API key is sent, and shown nowhere.

def test_api_key_is_sent_and_never_shown(monkeypatch, caplog, capsys):
    monkeypatch.setenv("INNERLAB_TEST_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    shown = []

    def echo_auth(status, garbage=False):
        # A careless server that quotes the Authorization header back in its errors.
        def respond(attempt, headers, body):
            auth = headers.get("Authorization")
            if garbage:
                return 200, f"garbled {auth}".encode()
            return status, json.dumps({"error": {"message": f"rejected {auth}"}}).encode()
        return respond

    with custom_server(lambda *_: (200, chat_body("up"))) as (url, requests):
        policy = OpenAIPolicy("m", url, api_key_env="INNERLAB_TEST_KEY", **FAST)
        policy.choose([QUERY])
        assert requests[0][0]["Authorization"] == f"Bearer {SECRET}"
        shown += [repr(policy), str(policy), str(vars(policy))]
    for status in (401, 503):
        with custom_server(echo_auth(status)) as (url, requests):
            with pytest.raises(LMBackendError) as info:
                OpenAIPolicy("m", url, api_key_env="INNERLAB_TEST_KEY", **FAST).choose([QUERY])
            assert requests[0][0]["Authorization"] == f"Bearer {SECRET}"
            assert "rejected" in str(info.value)
            shown += [str(info.value), repr(info.value), repr(info.value.__cause__), repr(info.value.__context__)]
    with custom_server(echo_auth(200, garbage=True)) as (url, requests):
        with pytest.warns(RuntimeWarning) as record:
            OpenAIPolicy("m", url, api_key_env="INNERLAB_TEST_KEY", **FAST).choose([QUERY])
        shown += [str(w.message) for w in record]
    captured = capsys.readouterr()
    shown += [caplog.text, captured.out, captured.err]
    assert "garbled" in "".join(shown)  # the warning did quote the body, scrubbed
    for text in shown:
        assert SECRET not in text


def test_no_api_key_sends_no_authorization(monkeypatch):
    monkeypatch.delenv("INNERLAB_TEST_KEY", raising=False)
    with custom_server(lambda *_: (200, chat_body("up"))) as (url, requests):
        OpenAIPolicy("m", url, api_key_env="INNERLAB_TEST_KEY").choose([QUERY])
        assert "Authorization" not in requests[0][0]
        assert requests[0][1]["model"] == "m" and requests[0][1]["n"] == 1


# 8. The server on its own.

def _request(url, body=None, raw=None):
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_server_endpoints_and_bad_requests():
    with serve(lambda prompt, max_tokens, temperature, seed: f"{prompt}|{max_tokens}|{temperature}|{seed}",
               model="toy") as server:
        status, models = _request(f"{server.url}/models")
        assert status == 200 and [m["id"] for m in models["data"]] == ["toy"]

        messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
        status, chat = _request(f"{server.url}/chat/completions",
                                {"model": "any", "messages": messages, "n": 3, "seed": 5, "max_tokens": 4})
        assert status == 200 and chat["object"] == "chat.completion" and chat["model"] == "toy"
        assert [c["index"] for c in chat["choices"]] == [0, 1, 2]
        assert [c["message"]["content"] for c in chat["choices"]] == [f"S\n\nU|4|1.0|{s}" for s in (5, 6, 7)]
        assert chat["choices"][0]["message"]["role"] == "assistant"
        assert set(chat["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}

        status, text = _request(f"{server.url}/completions", {"prompt": "P", "temperature": 0})
        assert status == 200 and text["object"] == "text_completion"
        assert [c["text"] for c in text["choices"]] == ["P|16|0.0|0"]

        for body, raw in [(None, b"{not json"), ({"model": "x"}, None), ({"messages": []}, None),
                          ({"messages": [{"role": "user", "content": "U"}], "n": 0}, None)]:
            status, error = _request(f"{server.url}/chat/completions", body, raw)
            assert status == 400 and error["error"]["type"] == "invalid_request_error"
            assert error["error"]["message"]
        status, error = _request(f"{server.url}/nowhere", {})
        assert status == 404 and "error" in error
    # Closed: the port refuses.
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{server.url}/models", timeout=2)


def test_server_reports_a_failing_model_as_500():
    def complete(*args):
        raise RuntimeError("model exploded")

    with serve(complete) as server:
        status, error = _request(f"{server.url}/chat/completions",
                                 {"messages": [{"role": "user", "content": "U"}]})
        assert status == 500 and "model exploded" in error["error"]["message"]
        with pytest.raises(LMBackendError, match="HTTP 500"):
            OpenAIPolicy("m", server.url, retries=0).choose([QUERY])


# 9. Constructor validation.

@pytest.mark.parametrize("kwargs, message", [
    (dict(samples=0), "samples"), (dict(samples=1.5), "samples"), (dict(timeout=0), "timeout"),
    (dict(timeout=-1.0), "timeout"), (dict(retries=-1), "retries"), (dict(max_tokens=0), "max_tokens"),
    (dict(temperature=-0.1), "temperature"), (dict(backoff=-1), "backoff"),
    (dict(base_url="ftp://host/v1"), "base_url"), (dict(base_url="localhost:8000"), "base_url"),
    (dict(model=""), "model"), (dict(api_key_env=""), "api_key_env"),
])
def test_constructor_validation(kwargs, message):
    args = dict(model="m", base_url="http://127.0.0.1:1/v1") | kwargs
    with pytest.raises(ValueError, match=message):
        OpenAIPolicy(**args)


def test_make_policy_rejects_a_bad_openai_spec():
    with pytest.raises(ValueError, match="openai"):
        make_policy("openai:model-without-url")
