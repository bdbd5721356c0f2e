"""A small OpenAI-compatible HTTP server around any text-completion function.

    def complete(prompt: str, max_tokens: int, temperature: float, seed: int) -> str: ...

    with serve(complete) as server:                      # port 0: a free port is picked
        policy = make_policy(f"openai:innerlab-builtin@{server.url}")   # http://127.0.0.1:PORT/v1
        ...

This is how innerlab serves its own builtin model to the `openai` backend (and to any other
OpenAI client); `complete` is all it knows of the model. Endpoints:

- POST /v1/chat/completions: `messages` [{role, content}] → a `chat.completion` with `n`
  choices. The prompt given to `complete` is the messages' contents in order (the user's
  message last) joined by "\\n\\n"; choice i is generated with seed `seed + i`.
- POST /v1/completions: `prompt` (a string) → a `text_completion` with `n` choices.
- GET /v1/models (and /v1/models/<id>): the one model, named `model`.

Defaults where a request is silent: max_tokens 16, temperature 1.0, seed 0, n 1 (a fixed seed,
unlike OpenAI's, so the same request gets the same answer). The requested `model` is not
checked: whatever a client names, this model answers. `usage` counts whitespace-separated
words, since the server knows no tokenizer. Bad requests get HTTP 400 with an OpenAI-style
body {"error": {"message", "type": "invalid_request_error", ...}}; a `complete` that raises
gets HTTP 500 (type "server_error"). Streaming is not supported.

Requests are handled on threads (a slow generation does not block /v1/models), but calls to
`complete` are serialized by a lock: a model's generate function need not be thread-safe,
and one at a time keeps the answers of concurrent clients reproducible.
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
import uuid
from typing import Callable

Complete = Callable[[str, int, float, int], str]
"""complete(prompt, max_tokens, temperature, seed) -> the answer text."""

DEFAULT_MAX_TOKENS = 16
DEFAULT_TEMPERATURE = 1.0
MAX_N = 128
MAX_BODY_BYTES = 8 * 2**20  # a request this large is a client bug, not a prompt


class _BadRequest(Exception):
    """A request the server refuses; `status` and the message go into the OpenAI-style body."""

    def __init__(self, message: str, status: int = 400, param: str | None = None):
        super().__init__(message)
        self.status = status
        self.param = param


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True  # a handler stuck in a slow `complete` must not keep the process alive

    def __init__(self, address, complete: Complete, model: str, verbose: bool):
        self.complete = complete
        self.model = model
        self.verbose = verbose
        self.complete_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request, client_address):
        # Clients that hang up mid-answer (e.g. after their own timeout) are routine, not news.
        if self.verbose:
            super().handle_error(request, client_address)


class _IPv6HTTPServer(_HTTPServer):
    address_family = socket.AF_INET6


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _HTTPServer
    server_version = "innerlab"

    def log_message(self, format, *args):
        if self.server.verbose:
            super().log_message(format, *args)

    def do_GET(self):
        path = self._path()
        if path == "/v1/models":
            self._send_json(200, {"object": "list", "data": [self._model_card()]})
        elif path.startswith("/v1/models/"):
            if path[len("/v1/models/"):] == self.server.model:
                self._send_json(200, self._model_card())
            else:
                self._send_error(404, f"the model {path[len('/v1/models/'):]!r} does not exist; "
                                      f"this server has {self.server.model!r}", code="model_not_found")
        elif path in ("/v1/chat/completions", "/v1/completions"):
            self._send_error(405, f"use POST for {path}")
        else:
            self._send_error(404, f"unknown URL: GET {path}")

    def do_POST(self):
        path = self._path()
        routes = {"/v1/chat/completions": self._chat_completions, "/v1/completions": self._completions}
        if path not in routes:
            if path.startswith("/v1/models"):
                self._send_error(405, f"use GET for {path}")
            else:
                self._send_error(404, f"unknown URL: POST {path}")
            return
        try:
            payload = routes[path](self._read_json())
        except _BadRequest as err:
            self._send_error(err.status, str(err), param=err.param)
            return
        except Exception as err:  # the model's own failure: tell the client, keep serving
            self.log_error("complete failed: %r", err)
            self._send_error(500, f"the model failed: {type(err).__name__}: {err}", type_="server_error")
            return
        self._send_json(200, payload)

    def _chat_completions(self, body: dict) -> dict:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _BadRequest("'messages' must be a non-empty list of {role, content}", param="messages")
        prompt = "\n\n".join(_message_text(m, i) for i, m in enumerate(messages))
        texts = self._generate(prompt, body)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.server.model,
            "choices": [{"index": i, "message": {"role": "assistant", "content": text},
                         "logprobs": None, "finish_reason": "stop"} for i, text in enumerate(texts)],
            "usage": _usage(prompt, texts),
        }

    def _completions(self, body: dict) -> dict:
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1:
            prompt = prompt[0]  # clients often send a batch of one
        if not isinstance(prompt, str):
            raise _BadRequest("'prompt' must be a string", param="prompt")
        texts = self._generate(prompt, body)
        return {
            "id": f"cmpl-{uuid.uuid4().hex[:24]}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": self.server.model,
            "choices": [{"index": i, "text": text, "logprobs": None, "finish_reason": "stop"}
                        for i, text in enumerate(texts)],
            "usage": _usage(prompt, texts),
        }

    def _generate(self, prompt: str, body: dict) -> list[str]:
        """The `n` answers to one prompt, choice i with seed `seed + i`."""
        if body.get("stream"):
            raise _BadRequest("streaming is not supported by this server", param="stream")
        max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
        max_tokens = DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens
        temperature = DEFAULT_TEMPERATURE if body.get("temperature") is None else body["temperature"]
        seed = 0 if body.get("seed") is None else body["seed"]
        n = 1 if body.get("n") is None else body["n"]
        if not _is_int(max_tokens) or max_tokens < 1:
            raise _BadRequest(f"'max_tokens' must be an integer >= 1, got {max_tokens!r}", param="max_tokens")
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature >= 0:
            raise _BadRequest(f"'temperature' must be a number >= 0, got {temperature!r}", param="temperature")
        if not _is_int(seed):
            raise _BadRequest(f"'seed' must be an integer, got {seed!r}", param="seed")
        if not _is_int(n) or not 1 <= n <= MAX_N:
            raise _BadRequest(f"'n' must be an integer in 1..{MAX_N}, got {n!r}", param="n")
        texts = []
        for i in range(n):
            with self.server.complete_lock:
                text = self.server.complete(prompt, max_tokens, float(temperature), seed + i)
            if not isinstance(text, str):
                raise TypeError(f"complete returned {type(text).__name__}, not a string")
            texts.append(text)
        return texts

    def _read_json(self) -> dict:
        length = self.headers.get("Content-Length")
        if length is None:
            raise _BadRequest("a request body with a Content-Length is required", status=411)
        try:
            length = int(length)
        except ValueError:
            raise _BadRequest(f"bad Content-Length {length!r}") from None
        if not 0 <= length <= MAX_BODY_BYTES:
            raise _BadRequest(f"request body of {length} bytes (at most {MAX_BODY_BYTES})", status=413)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise _BadRequest(f"the request body is not valid JSON: {err}") from None
        if not isinstance(body, dict):
            raise _BadRequest(f"the request body must be a JSON object, got {type(body).__name__}")
        return body

    def _path(self) -> str:
        return self.path.split("?", 1)[0].rstrip("/") or "/"

    def _model_card(self) -> dict:
        return {"id": self.server.model, "object": "model", "created": 0, "owned_by": "innerlab"}

    def _send_error(self, status: int, message: str, type_: str = "invalid_request_error",
                    param: str | None = None, code: str | None = None):
        self._send_json(status, {"error": {"message": message, "type": type_, "param": param, "code": code}})

    def _send_json(self, status: int, payload: dict):
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _message_text(message, index: int) -> str:
    """A chat message's text: `content` as a string, or the text parts of a content list."""
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) and isinstance(p.get("text"), str) for p in content):
        return "".join(p["text"] for p in content)
    raise _BadRequest(f"messages[{index}] needs a string 'content'", param=f"messages[{index}].content")


def _usage(prompt: str, texts: list[str]) -> dict:
    prompt_words = len(prompt.split())
    completion_words = sum(len(t.split()) for t in texts)
    return {"prompt_tokens": prompt_words, "completion_tokens": completion_words,
            "total_tokens": prompt_words + completion_words}


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class Server:
    """A running server: `url` ("http://127.0.0.1:PORT/v1", the base URL clients want), `port`,
    `model`; `close()` stops it (also on leaving a `with` block)."""

    def __init__(self, httpd: _HTTPServer, host: str):
        self._httpd = httpd
        self.port: int = httpd.server_address[1]
        self.model: str = httpd.model
        # A wildcard bind is reachable on loopback; a client cannot connect to "0.0.0.0".
        url_host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        if ":" in url_host:
            url_host = f"[{url_host}]"
        self.url: str = f"http://{url_host}:{self.port}/v1"
        self._closed = False
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"innerlab-lm-server-{self.port}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving and free the port; requests still being answered are abandoned."""
        if self._closed:
            return
        self._closed = True
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "serving"
        return f"Server(url={self.url!r}, model={self.model!r}, {state})"


def serve(complete: Complete, host: str = "127.0.0.1", port: int = 0, model: str = "innerlab-builtin",
          *, verbose: bool = False) -> Server:
    """Serve `complete` as an OpenAI-compatible model on a daemon thread; port 0 picks a free port.

    `complete(prompt, max_tokens, temperature, seed) -> str` answers one prompt. `verbose`
    logs each request to stderr, as http.server does; by default the server is silent.
    """
    if not callable(complete):
        raise ValueError(f"complete must be callable, got {type(complete).__name__}")
    if not isinstance(model, str) or not model:
        raise ValueError(f"model must be a non-empty string, got {model!r}")
    if not _is_int(port) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an integer in 0..65535, got {port!r}")
    server_class = _IPv6HTTPServer if ":" in host else _HTTPServer
    return Server(server_class((host, port), complete, model, verbose), host)


__all__ = ["Complete", "Server", "serve"]
