"""A loopback OpenAI-compatible server that misbehaves on cue, for faults a real server will not show."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

# Nothing here may outlive a test for long, even a test that forgets to stop the server.
HANG_LIMIT = 30.0
LIFETIME = 300.0


def chunk(content: str | None = None, finish: str | None = None, usage: dict[str, int] | None = None) -> str:
    """One `chat.completion.chunk` JSON object as a server would stream it."""
    delta: dict[str, str] = {"content": content} if content is not None else {}
    data: dict[str, Any] = {
        "id": "chatcmpl-fault",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "fault-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage is not None:
        data["choices"] = []
        data["usage"] = {**usage, "total_tokens": sum(usage.values())}
    return json.dumps(data)


def words_stream(words: list[str], usage: dict[str, int] | None = None) -> list[str]:
    """SSE data payloads of a complete answer: one chunk per word, a finish chunk, optional usage, [DONE]."""
    events = [chunk(w) for w in words] + [chunk(finish="stop")]
    if usage is not None:
        events.append(chunk(usage=usage))
    return [*events, "[DONE]"]


def text_events(text: str, size: int) -> list[str]:
    """SSE data payloads streaming `text` in pieces of `size` characters, then a finish chunk and [DONE]."""
    return [*(chunk(text[i : i + size]) for i in range(0, len(text), size)), chunk(finish="stop"), "[DONE]"]


def endless(content: str) -> Iterable[str]:
    """The same delta forever: a server that ignores max_tokens and never finishes."""
    while True:
        yield chunk(content)


def completion(text: str) -> dict[str, Any]:
    """A non-streamed chat completion body."""
    return {
        "id": "chatcmpl-fault",
        "object": "chat.completion",
        "created": 0,
        "model": "fault-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
    }


@dataclass
class Step:
    """What the server does with one request.

    action: "json" (status + body, bytes sent as given), "stream" (SSE events), "hang" (read, never answer),
    "cut" (stream the events, then drop the socket mid-body), "close" (drop the socket without answering).
    reply: for "stream", the events made from the request's JSON body instead of `events` (runs on the request's thread).
    respond: like `reply`, but given the whole request (headers included, so a server can echo the Authorization
    header); for "json" it makes the body. Its events may be endless (a server that never stops).
    pace: seconds between two events (a slow but never silent stream).
    """

    action: str
    status: int = 200
    body: Any = None
    events: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    reply: Callable[[Any], list[str]] | None = None
    respond: Callable[[Seen], Any] | None = None
    pace: float = 0.0


@dataclass
class Seen:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


class FaultServer:
    """Serves a script of `Step`s in order, one per request, on 127.0.0.1; the last step repeats.

    With `models`, GET /v1/models lists them without taking a step, so a client's start-up check does not eat the script.
    """

    def __init__(self, *steps: Step, models: list[str] | None = None) -> None:
        if not steps:
            raise ValueError("a fault server needs at least one step")
        self.steps = list(steps)
        self.models = models
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._timer = threading.Timer(LIFETIME, self.stop)
        self._timer.daemon = True

    def start(self) -> FaultServer:
        """Start serving in a background thread."""
        self._thread.start()
        self._timer.start()
        return self

    def stop(self) -> None:
        """Release hanging handlers and shut the listener down."""
        self.stopping.set()
        self._timer.cancel()
        if self._thread.is_alive():
            self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def next_step(self) -> Step:
        """The step for the request that just arrived."""
        with self._lock:
            return self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        return type("Handler", (_Handler,), {"fault": self})


class _Handler(BaseHTTPRequestHandler):
    """Serves each request by the next step of its `fault` server."""

    fault: FaultServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output clean

    def do_GET(self) -> None:
        if self.fault.models is not None and self.path.rstrip("/").endswith("/models"):
            listed = {"object": "list", "data": [{"id": m, "object": "model", "owned_by": "fault"} for m in self.fault.models]}
            self._send(200, json.dumps(listed).encode(), "application/json", {})
            return
        self._serve(None)

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        self._serve(body)

    def _serve(self, body: Any) -> None:
        seen = Seen(self.command, self.path, dict(self.headers.items()), body)
        self.fault.seen.append(seen)
        step = self.fault.next_step()
        if step.action == "hang":
            self.fault.stopping.wait(HANG_LIMIT)
            self.close_connection = True
            return
        if step.action == "close":
            self._drop()
            return
        if step.action in ("stream", "cut"):
            events = step.respond(seen) if step.respond else step.reply(body) if step.reply else step.events
            self._stream(step, iter(events))
            return
        payload = step.respond(seen) if step.respond else step.body
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self._send(step.status, data, step.content_type, step.headers)

    def _send(self, status: int, data: bytes, content_type: str, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, step: Step, events: Iterator[str]) -> None:
        self.send_response(step.status)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        for k, v in step.headers.items():
            self.send_header(k, v)
        self.end_headers()
        for i, event in enumerate(events):
            if step.pace and i and self.fault.stopping.wait(step.pace):
                return  # the server is stopping: an endless stream ends with it
            try:
                self._write_chunk(f"data: {event}\n\n".encode())
            except OSError:
                self.close_connection = True
                return  # the client hung up, as it should on a stream that never ends
        if step.action == "cut":
            self._drop()
            return
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _drop(self) -> None:
        # An abrupt close mid-body: the client sees an incomplete chunked read, as when a server dies.
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)
        self.close_connection = True
