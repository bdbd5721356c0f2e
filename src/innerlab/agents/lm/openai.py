"""The `openai` backend: a generating policy that asks any OpenAI-compatible chat server.

    policy = OpenAIPolicy(model="llama3", base_url="http://localhost:8000/v1", samples=4)
    policy = make_policy("openai:llama3@http://localhost:8000/v1", samples=4)   # the same
    choices = policy.choose([Query(prompt, ("up", "right", "down", "left"))])

Each query costs `samples` POSTs to `{base_url}/chat/completions`, one answer each (`n=1`):
servers disagree on whether they honour `n`, and one answer per request keeps the count of
answers exact whatever the server does. Sample `i` of every query is sent with seed
`seed + i`, so a server that honours `seed` gives different samples but the same ones on a rerun.

Failures are split by what they say about the run:

- transient (timeouts, refused or dropped connections, HTTP 429 and 5xx): retried with
  exponential backoff, `min(backoff * 2**attempt, MAX_BACKOFF)` seconds; after `retries`
  retries `LMBackendError` is raised, since a dead server must stop the run;
- permanent (any other HTTP 4xx, e.g. 401 bad key, 404 unknown model): `LMBackendError` at once;
- malformed (a 200 whose body is not JSON or has no string `choices[0].message.content`):
  retried like a transient failure, and if still malformed the answer counts as unparseable
  (the query's default action, `Choice.illegal` + 1) with one warning per policy, since a
  misbehaving server must show up in the illegal-answer count rather than stop the run.

The API key is read from the environment variable `api_key_env` at each request and is never
stored on the policy; it appears in no repr, exception or warning (server text quoted in an
error is scrubbed of it). With the variable unset no Authorization header is sent, which is
what local servers expect. Redirects are refused so the header cannot follow one to another host.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import math
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from dataclasses import replace
from typing import Sequence

from innerlab.agents.lm.base import Choice, Query, sampled_choice

DEFAULT_SYSTEM_PROMPT = (
    "You are playing a game. Reply with exactly one of the legal actions listed in the "
    "message, written as the action word itself (or its number), and nothing else."
)
MAX_BACKOFF = 30.0
"""Seconds: the longest wait between two attempts, whatever `backoff` and the attempt number."""
MALFORMED_TEXT = "<malformed response>"
"""What `Choice.texts` records for an answer the server never sent in a readable form."""
_ERROR_TEXT_LIMIT = 300  # characters of a server's error body quoted in an exception


class LMBackendError(RuntimeError):
    """A language-model server could not be used: unreachable, too slow, or refusing the request."""


class _Transient(Exception):
    """An attempt that failed in a way worth retrying; `kind` is the human-readable reason."""

    def __init__(self, kind: str, retry_after: float | None = None):
        super().__init__(kind)
        self.kind = kind
        self.retry_after = retry_after


class _Malformed(Exception):
    """A 200 response without a usable answer; retried, then counted as an unparseable answer."""


class _RefuseRedirect(urllib.request.HTTPRedirectHandler):
    # urllib would replay the Authorization header to wherever a 3xx points, another host
    # included; returning None makes the 3xx an HTTPError, reported like any other 4xx.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def legal_actions_line(actions: Sequence[str]) -> str:
    """The line appended to every prompt, e.g. "Legal actions: 1) up, 2) right, 3) down".

    Numbered from 1 because `parse_answer` reads a bare number as a 1-based option.
    """
    return "Legal actions: " + ", ".join(f"{i}) {a}" for i, a in enumerate(actions, start=1))


def chat_messages(query: Query, system_prompt: str = DEFAULT_SYSTEM_PROMPT) -> list[dict]:
    """The chat messages one query is asked as: [system, user(prompt + legal-actions line)]."""
    return [
        {"role": "system", "content": system_prompt},
        {"role": "user", "content": f"{query.prompt}\n\n{legal_actions_line(query.actions)}"},
    ]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class OpenAIPolicy:
    """An LMPolicy that samples answers from an OpenAI-compatible `/chat/completions` endpoint.

    `choose(queries)` returns one `Choice` per query: `probs` [len(query.actions)] float64 is
    the fraction of the `samples` answers naming each action, `illegal` counts answers that
    named none (or never arrived readable), `answers == samples`, `texts` the raw answers.
    Deterministic given the server's answers: requests go out one at a time in query order.
    """

    def __init__(
        self,
        model: str,
        base_url: str,
        api_key_env: str = "OPENAI_API_KEY",
        samples: int = 1,
        temperature: float = 0.0,
        max_tokens: int = 16,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.5,
        system_prompt: str = DEFAULT_SYSTEM_PROMPT,
        seed: int | None = 0,
    ):
        """`timeout` is seconds per socket operation of one attempt; `retries` is retries after
        the first attempt; `seed` (None: not sent) is the seed of sample 0, sample i gets seed + i.
        """
        if not isinstance(model, str) or not model:
            raise ValueError(f"model must be a non-empty string, got {model!r}")
        parsed = urllib.parse.urlsplit(base_url) if isinstance(base_url, str) else None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"base_url must be an http(s) URL such as http://localhost:8000/v1, got {base_url!r}")
        if not isinstance(api_key_env, str) or not api_key_env:
            raise ValueError(f"api_key_env must name an environment variable, got {api_key_env!r}")
        if not _is_int(samples) or samples < 1:
            raise ValueError(f"samples must be an integer >= 1, got {samples!r}")
        if not _is_number(temperature) or temperature < 0:
            raise ValueError(f"temperature must be a number >= 0, got {temperature!r}")
        if not _is_int(max_tokens) or max_tokens < 1:
            raise ValueError(f"max_tokens must be an integer >= 1, got {max_tokens!r}")
        if not _is_number(timeout) or timeout <= 0:
            raise ValueError(f"timeout must be a number of seconds > 0, got {timeout!r}")
        if not _is_int(retries) or retries < 0:
            raise ValueError(f"retries must be an integer >= 0, got {retries!r}")
        if not _is_number(backoff) or backoff < 0:
            raise ValueError(f"backoff must be a number of seconds >= 0, got {backoff!r}")
        if not isinstance(system_prompt, str):
            raise ValueError(f"system_prompt must be a string, got {type(system_prompt).__name__}")
        if seed is not None and not _is_int(seed):
            raise ValueError(f"seed must be an integer or None, got {seed!r}")

        self.model = model
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env
        self.samples = int(samples)
        self.temperature = float(temperature)
        self.max_tokens = int(max_tokens)
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.system_prompt = system_prompt
        self.seed = seed
        self.name = f"openai:{model}@{self.base_url}"
        self.url = f"{self.base_url}/chat/completions"
        self.malformed = 0  # answers counted illegal because every attempt was malformed
        self._warned_malformed = False
        # A local server must not be reached through an http_proxy meant for the outside world.
        handlers = [_RefuseRedirect()]
        if _is_loopback(parsed.hostname):
            handlers.append(urllib.request.ProxyHandler({}))
        self._opener = urllib.request.build_opener(*handlers)

    def __repr__(self) -> str:
        # Names the key's variable, never its value.
        return (f"OpenAIPolicy(model={self.model!r}, base_url={self.base_url!r}, "
                f"api_key_env={self.api_key_env!r}, samples={self.samples}, "
                f"temperature={self.temperature}, max_tokens={self.max_tokens}, "
                f"timeout={self.timeout}, retries={self.retries}, backoff={self.backoff})")

    def choose(self, queries: Sequence[Query]) -> list[Choice]:
        """One Choice per query from `samples` answers each; raises LMBackendError if the server fails."""
        choices = []
        for query in queries:
            messages = chat_messages(query, self.system_prompt)
            answers = [self._answer(messages, sample) for sample in range(self.samples)]
            # "" parses as no action, so a malformed answer becomes an illegal one; the
            # record then says why it was illegal.
            choice = sampled_choice(["" if a is None else a for a in answers], query)
            choices.append(replace(choice, texts=tuple(MALFORMED_TEXT if a is None else a for a in answers)))
        return choices

    def _answer(self, messages: list[dict], sample: int) -> str | None:
        """One answer's text, or None if every attempt got a malformed 200 response."""
        body = {"model": self.model, "messages": messages, "temperature": self.temperature,
                "max_tokens": self.max_tokens, "n": 1}
        if self.seed is not None:
            body["seed"] = self.seed + sample
        data = json.dumps(body).encode("utf-8")
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                delay = min(self.backoff * 2 ** (attempt - 1), MAX_BACKOFF)
                if isinstance(last, _Transient) and last.retry_after is not None:
                    delay = min(max(delay, last.retry_after), MAX_BACKOFF)
                time.sleep(delay)
            try:
                return _content(self._post(data))
            except (_Transient, _Malformed) as err:
                last = err
        if isinstance(last, _Malformed):
            self.malformed += 1
            if not self._warned_malformed:
                self._warned_malformed = True
                warnings.warn(
                    f"{self.name}: malformed responses from {self.url} ({_scrub(str(last), self._key())}) "
                    f"after {self.retries + 1} attempts; such answers are counted as illegal "
                    f"(see Choice.illegal); further ones are not warned about",
                    RuntimeWarning, stacklevel=3)
            return None
        attempts = "1 attempt" if self.retries == 0 else f"{self.retries + 1} attempts"
        raise LMBackendError(f"{self.name}: POST {self.url} failed after {attempts}: "
                             f"{_scrub(last.kind, self._key())}")

    def _key(self) -> str | None:
        return os.environ.get(self.api_key_env) or None

    def _post(self, data: bytes) -> bytes:
        """One attempt: the 200 response's body, or _Transient / LMBackendError."""
        key = self._key()
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "User-Agent": "innerlab"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return response.read()
        except urllib.error.HTTPError as err:
            status = err.code
            message = _scrub(_error_message(err), key)
            if status == 429 or 500 <= status <= 599:
                raise _Transient(f"HTTP {status}: {message}", _retry_after(err.headers)) from None
            hint = ""
            if status in (401, 403):
                hint = f" (check the API key in ${self.api_key_env})"
            elif status == 404:
                hint = f" (check the model name {self.model!r} and the base URL)"
            # `from None`: the HTTPError holds the raw response, which a server may fill
            # with anything, the key included.
            raise LMBackendError(f"{self.name}: POST {self.url} returned HTTP {status}: {message}{hint}") from None
        except urllib.error.URLError as err:
            raise _Transient(self._describe(err.reason)) from None
        except (OSError, http.client.HTTPException) as err:
            # Raised outside urlopen's wrapping: timeouts and drops while reading the response.
            raise _Transient(self._describe(err)) from None

    def _describe(self, reason) -> str:
        """A short name for a transport failure: "connection refused", "timed out after 2.0 s", ..."""
        if isinstance(reason, (TimeoutError, socket.timeout)):
            return f"timed out after {self.timeout:g} s"
        if isinstance(reason, ConnectionRefusedError):
            return "connection refused"
        if isinstance(reason, (ConnectionResetError, http.client.RemoteDisconnected, BrokenPipeError)):
            return f"connection dropped by the server ({type(reason).__name__})"
        if isinstance(reason, socket.gaierror):
            return f"host not found ({reason})"
        return f"connection failed ({type(reason).__name__}: {reason})"


def _content(body: bytes) -> str:
    """`choices[0].message.content` of a chat.completion body, or _Malformed saying what is wrong."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _Malformed(f"body is not JSON: {_preview(body)}") from None
    try:
        content = payload["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise _Malformed(f"no choices[0].message.content in {_preview(body)}") from None
    if not isinstance(content, str):
        raise _Malformed(f"choices[0].message.content is {type(content).__name__}, not a string")
    return content


def _error_message(err: urllib.error.HTTPError) -> str:
    """The server's own explanation of an HTTP error: OpenAI's error.message, else the body."""
    try:
        raw = err.read()
    except (OSError, http.client.HTTPException):
        raw = b""
    try:
        payload = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        payload = None
    if isinstance(payload, dict):
        error = payload.get("error", payload.get("detail"))
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"][:_ERROR_TEXT_LIMIT]
        if isinstance(error, str):
            return error[:_ERROR_TEXT_LIMIT]
    return _preview(raw) if raw else (err.reason or "no message")


def _retry_after(headers) -> float | None:
    """Seconds a 429/503 asks the client to wait (Retry-After in seconds), if it says."""
    try:
        return max(float(headers.get("Retry-After")), 0.0)
    except (TypeError, ValueError, AttributeError):
        return None


def _preview(body: bytes) -> str:
    text = body.decode("utf-8", errors="replace")
    return repr(text[:_ERROR_TEXT_LIMIT] + ("..." if len(text) > _ERROR_TEXT_LIMIT else ""))


def _scrub(text: str, key: str | None) -> str:
    """`text` with the API key blanked out, in case a server echoes the Authorization header."""
    return text.replace(key, "***") if key else text


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


__all__ = ["DEFAULT_SYSTEM_PROMPT", "LMBackendError", "MALFORMED_TEXT", "OpenAIPolicy", "chat_messages",
           "legal_actions_line"]
