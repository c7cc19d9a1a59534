"""Misbehaving OpenAI-compatible servers for runner tests (127.0.0.1 only, bounded, stopped by their fixture).

A ``FakeServer`` answers ``POST /v1/completions`` and ``POST /v1/chat/completions`` according to a script: the
n-th request gets ``script[n]`` (an ``Action``), later ones get ``default``. Beyond ``max_requests`` it closes
connections without answering, so a runaway retry loop cannot spin forever. It records every request (path,
body, headers), and the most requests it ever had in flight at once.

It also serves a toy tokenizer at ``/extras/tokenize`` and ``/extras/detokenize`` (one token per character,
id = code point, with a BOS id 1 in front, as llama-cpp-python's server adds one) when ``tokenizer=True``.
"""
from __future__ import annotations

import json
import socket
import struct
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


@dataclass(frozen=True)
class Action:
    """What the server does with one request."""

    kind: str = "ok"  # ok | status | raw | hang | reset | close | trickle
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    seconds: float = 0.0
    finish_reason: str | None = "stop"
    omit_finish_reason: bool = False
    logprobs: bool = False


OK = Action()


def status(code: int, body: bytes = b'{"error": "scripted failure"}', **headers: str) -> Action:
    return Action(kind="status", status=code, body=body,
                  headers=tuple((k.replace("_", "-"), v) for k, v in headers.items()))


def raw(body: bytes) -> Action:
    """HTTP 200 with this exact body (malformed JSON, JSON without choices, ...)."""
    return Action(kind="raw", body=body)


def hang(seconds: float) -> Action:
    """Say nothing for ``seconds`` (or until the server stops), then answer normally."""
    return Action(kind="hang", seconds=seconds)


def trickle(interval: float = 1.0) -> Action:
    """HTTP 200 headers promising a long body, then one byte every ``interval`` seconds until the client gives up
    or the server stops: each read succeeds, so only a deadline on the whole request cuts it off."""
    return Action(kind="trickle", seconds=interval)


RESET = Action(kind="reset")  # headers promising 1000 bytes, a few bytes of body, then a TCP reset
CLOSE = Action(kind="close")  # close the connection without a byte
NO_FINISH = Action(omit_finish_reason=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def completion_text(prompt: str) -> str:
    """What the fake model 'generates' for a prompt (deterministic, so tests can check each answer)."""
    return f"echo:{prompt}"


@dataclass
class Hit:
    path: str
    body: Any
    headers: dict[str, str]
    t: float


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):  # resets and closed sockets are the point: stay quiet
        pass


class FakeServer:
    def __init__(
        self,
        script: list[Action] | None = None,
        *,
        default: Action = OK,
        delay: float = 0.0,
        max_requests: int = 100,
        responder: Callable[[int, dict], Action] | None = None,
        tokenizer: bool = False,
        echo_auth_in_errors: bool = False,
        echo_auth_in_completions: bool = False,
        port: int = 0,
    ) -> None:
        self.script = list(script or [])
        self.default = default
        self.delay = delay
        self.max_requests = max_requests
        self.responder = responder
        self.tokenizer = tokenizer
        self.echo_auth_in_errors = echo_auth_in_errors
        self.echo_auth_in_completions = echo_auth_in_completions
        self.hits: list[Hit] = []
        self.overflow = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = port or None

    # -- lifecycle --------------------------------------------------------------------------------------------
    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return self.base + "/v1"

    @property
    def n_generation_hits(self) -> int:
        return sum(1 for h in self.hits if h.path.endswith("completions"))

    def start(self) -> "FakeServer":
        self._httpd = _Server(("127.0.0.1", self.port or 0), self._handler_class())  # a given port: a restart
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "FakeServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- behaviour --------------------------------------------------------------------------------------------
    def _next_action(self, n: int, body: dict) -> Action:
        if self.responder is not None:
            return self.responder(n, body)
        return self.script[n] if n < len(self.script) else self.default

    def _success(self, path: str, body: dict, action: Action, auth: str = "") -> dict:
        chat = path.endswith("/chat/completions")
        if chat:
            msgs = body.get("messages") or [{}]
            prompt = msgs[-1].get("content", "")
        else:
            prompt = body.get("prompt", "")
        text = completion_text(prompt)
        if self.echo_auth_in_completions:  # a server that leaks the credentials into what it generates
            text = f"{auth} {text}"
        max_tokens = int(body.get("max_tokens") or 16)
        toks = list(text)  # one token per character
        finish = action.finish_reason
        if len(toks) > max_tokens:
            toks, finish = toks[:max_tokens], "length"
            text = "".join(toks)
        choice: dict[str, Any] = {"index": 0}
        if chat:
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = text
        if not action.omit_finish_reason:
            choice["finish_reason"] = finish
        if action.logprobs or body.get("logprobs"):
            lps = [-0.5 - 0.01 * i for i in range(len(toks))]
            if chat:
                choice["logprobs"] = {"content": [{"token": t, "logprob": lp, "top_logprobs": []}
                                                  for t, lp in zip(toks, lps)]}
            else:
                choice["logprobs"] = {"tokens": toks, "token_logprobs": lps, "top_logprobs": None,
                                      "text_offset": list(range(len(toks)))}
        return {
            "id": "cmpl-fake", "object": "chat.completion" if chat else "text_completion", "model": body.get("model"),
            "choices": [choice],
            "usage": {"prompt_tokens": len(prompt), "completion_tokens": len(toks),
                      "total_tokens": len(prompt) + len(toks)},
        }

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, payload: bytes, headers: tuple[tuple[str, str], ...] = ()) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)
                self.wfile.flush()

            def _drop(self, reset: bool) -> None:
                self.close_connection = True
                try:
                    if reset:  # linger 0: close() sends RST instead of FIN
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    else:
                        self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                finally:
                    self.connection.close()

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, json.dumps({"object": "list", "data": [{"id": "fake"}]}).encode())
                else:
                    self._send(404, b'{"error": "not found"}')

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw_body = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw_body or b"{}")
                except ValueError:
                    body = {}
                path = self.path
                if path.startswith("/extras/"):
                    return self._tokenizer(path, body)
                if not path.endswith("completions"):
                    return self._send(404, b'{"error": "not found"}')
                with server._lock:
                    n = server.n_generation_hits
                    if n >= server.max_requests:
                        server.overflow += 1
                        over = True
                    else:
                        over = False
                        server.hits.append(Hit(path, body, dict(self.headers), time.monotonic()))
                        server.in_flight += 1
                        server.max_in_flight = max(server.max_in_flight, server.in_flight)
                if over:
                    return self._drop(reset=False)
                try:
                    self._answer(n, path, body)
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _answer(self, n: int, path: str, body: dict) -> None:
                action = server._next_action(n, body)
                if server.delay:
                    server._stopping.wait(server.delay)
                if action.kind == "hang":
                    server._stopping.wait(action.seconds)
                    if server._stopping.is_set():
                        return self._drop(reset=False)
                    action = OK
                if action.kind == "close":
                    return self._drop(reset=False)
                if action.kind == "reset":
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                     b"Content-Length: 1000\r\n\r\n{\"choi")
                    self.wfile.flush()
                    time.sleep(0.02)
                    return self._drop(reset=True)
                if action.kind == "status":
                    payload = action.body or b""
                    if server.echo_auth_in_errors:  # the worst server: echoes the credentials back
                        payload += (" auth=" + self.headers.get("Authorization", "")).encode()
                    return self._send(action.status, payload, action.headers)
                if action.kind == "raw":
                    return self._send(200, action.body or b"")
                if action.kind == "trickle":
                    self.close_connection = True
                    try:
                        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                         b"Content-Length: 100000\r\n\r\n")
                        self.wfile.flush()
                        while not server._stopping.wait(action.seconds):
                            self.wfile.write(b" ")
                            self.wfile.flush()
                    except OSError:  # the client gave up: that is the point
                        pass
                    return None
                auth = self.headers.get("Authorization", "")
                return self._send(200, json.dumps(server._success(path, body, action, auth)).encode(), action.headers)

            def _tokenizer(self, path: str, body: dict) -> None:
                if not server.tokenizer:
                    return self._send(404, b'{"detail": "Not Found"}')
                if path == "/extras/tokenize":
                    ids = [1] + [ord(c) for c in body.get("input", "")]
                    return self._send(200, json.dumps({"tokens": ids}).encode())
                if path == "/extras/detokenize":
                    text = "".join(chr(i) for i in body.get("tokens", []) if i != 1)
                    return self._send(200, json.dumps({"text": text}).encode())
                return self._send(404, b'{"detail": "Not Found"}')

        return Handler
