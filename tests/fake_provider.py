"""A misbehaving LLM provider on 127.0.0.1 for tests of the real client path: a stdlib HTTP
server that answers OpenAI-shaped (/v1/chat/completions) and Anthropic-shaped (/v1/messages)
requests with queued behaviours: replies, error statuses, hangs, invalid JSON, empty content."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_HANG = 30.0
"""A hanging request is answered with a 504 after this many seconds at most (or at shutdown)."""


@dataclass
class Behaviour:
    """How the server answers one request."""

    kind: str
    """`reply`, `status`, `hang`, `raw` (a body as given) or `empty` (content "")."""
    texts: list[str] = field(default_factory=list)
    status: int = 200
    body: str = ""


def reply(*texts: str) -> Behaviour:
    """Answer with these choices (an OpenAI request with n=k gets the first k, repeating the last)."""
    return Behaviour("reply", list(texts))


def status(code: int, message: str = "") -> Behaviour:
    """An error status with an OpenAI/Anthropic-shaped error body."""
    return Behaviour("status", status=code, body=message or f"error {code}")


def hang() -> Behaviour:
    """Never answer (until the server shuts down, or MAX_HANG)."""
    return Behaviour("hang")


def raw(body: str, code: int = 200) -> Behaviour:
    """Answer with this body as it is (for invalid JSON)."""
    return Behaviour("raw", status=code, body=body)


def empty() -> Behaviour:
    """A well-formed reply whose content is the empty string."""
    return Behaviour("empty")


class FakeProvider:
    """`with FakeProvider() as p:` serves on `p.base` (OpenAI: `p.openai_base`); requests take
    behaviours from `p.queue` in order, the last one repeating; `p.requests` holds each
    request's path and JSON body."""

    def __init__(self, *behaviours: Behaviour) -> None:
        self.queue: list[Behaviour] = list(behaviours) or [reply("ok")]
        self.requests: list[dict[str, Any]] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                return None

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw_body = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw_body or b"{}")
                except ValueError:
                    body = {}
                provider._serve(self, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})

    @property
    def base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def openai_base(self) -> str:
        return f"{self.base}/v1"

    def __enter__(self) -> FakeProvider:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.release.set()  # hanging handlers answer now
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def _next(self, path: str, body: dict[str, Any]) -> Behaviour:
        with self._lock:
            self.requests.append({"path": path, "body": body, "time": time.monotonic()})
            return self.queue.pop(0) if len(self.queue) > 1 else self.queue[0]

    def _serve(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        anthropic = handler.path.rstrip("/").endswith("/messages")
        behaviour = self._next(handler.path, body)
        if behaviour.kind == "hang":
            self.release.wait(MAX_HANG)
            return _send(handler, 504, b'{"error": {"message": "gateway timeout"}}')
        if behaviour.kind == "raw":
            return _send(handler, behaviour.status, behaviour.body.encode())
        if behaviour.kind == "status":
            error = {"message": behaviour.body, "type": "error", "code": str(behaviour.status)}
            payload = {"type": "error", "error": error} if anthropic else {"error": error}
            return _send(handler, behaviour.status, json.dumps(payload).encode())
        texts = [""] if behaviour.kind == "empty" else behaviour.texts
        n = int(body.get("n") or 1)
        chosen = [texts[min(i, len(texts) - 1)] for i in range(n)]
        reply_body = _anthropic(body, chosen[0]) if anthropic else _openai(body, chosen)
        _send(handler, 200, json.dumps(reply_body).encode())


def _send(handler: BaseHTTPRequestHandler, code: int, data: bytes) -> None:
    try:
        handler.send_response(code)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
    except OSError:  # the client gave up on this request
        pass


def _openai(body: dict[str, Any], texts: list[str]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "fake"),
        "choices": [
            {"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
            for i, t in enumerate(texts)
        ],
        "usage": {
            "prompt_tokens": 100,
            "completion_tokens": 50 * len(texts),
            "total_tokens": 100 + 50 * len(texts),
        },
    }


def _anthropic(body: dict[str, Any], text: str) -> dict[str, Any]:
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", "fake"),
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 100, "output_tokens": 50},
    }
