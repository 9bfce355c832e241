"""Local webhook sinks for tests and the benchmarks.

- ``Sink``: records every delivery it is sent, in full (tests). Run standalone:
  `python bench/sink.py --port 9100`; GET /stats answers the counts as JSON. Behaviour can be
  scripted per request: a queue of status codes to answer before 200s
  (POST /script with {"statuses": [500, 500], "retry_after": 1}).
- ``phase_sink_serve``: the pipeline benchmark's lean recorder (a separate process), which keeps only
  ids, keys and latencies per phase, so a 1M-event soak fits in memory.
- ``JSONHandler`` and ``listen``: what these and the chaos soak's receivers share.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class JSONHandler(BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1 with JSON replies and no access log."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY the client's delayed ACK
    # adds ~40 ms to every keep-alive request (Nagle), which would cap the sink, not Crossdock.
    disable_nagle_algorithm = True

    def log_message(self, *args) -> None:  # quiet
        pass

    def _reply(self, status: int, body: bytes = b"{}", extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


def listen(port: int, handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    """A thread-per-connection server on 127.0.0.1:``port`` for a receiver in its own process."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    server.request_queue_size = 256
    return server


class SinkState:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[dict] = []  # every request, in arrival order, recorded when answered
        self.arrived: list[
            str | None
        ] = []  # each request's Idempotency-Key when it arrives, before any delay
        self.script: list[int] = []
        self.retry_after: str | None = None
        self.delay_s = 0.0

    def next_status(self) -> tuple[int, str | None]:
        with self.lock:
            if self.script:
                return self.script.pop(0), self.retry_after
        return 200, None

    def stats(self) -> dict:
        with self.lock:
            keys = [r["idempotency_key"] for r in self.received if r["status"] == 200]
            return {
                "requests": len(self.received),
                "delivered": len(keys),
                "unique_keys": len(set(keys)),
                "event_ids": len({r["event_id"] for r in self.received if r["status"] == 200}),
            }


def make_handler(state: SinkState):
    class Handler(JSONHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/stats"):
                self._reply(200, json.dumps(state.stats()).encode())
            else:
                self._reply(404)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if self.path.startswith("/script"):
                spec = json.loads(body or b"{}")
                with state.lock:
                    state.script = list(spec.get("statuses", []))
                    state.retry_after = (
                        str(spec["retry_after"]) if spec.get("retry_after") is not None else None
                    )
                    state.delay_s = float(spec.get("delay_s", 0))
                self._reply(200)
                return
            with state.lock:
                state.arrived.append(self.headers.get("Idempotency-Key"))
            if state.delay_s:
                time.sleep(state.delay_s)
            status, retry_after = state.next_status()
            try:
                envelope = json.loads(body)
            except ValueError:
                envelope = {}
            record = {
                "at": time.time(),
                "status": status,
                "idempotency_key": self.headers.get("Idempotency-Key"),
                "signature": self.headers.get("X-Crossdock-Signature"),
                "correlation_id": self.headers.get("X-Correlation-ID"),
                "content_type": self.headers.get("Content-Type"),
                "event_id": envelope.get("id"),
                "envelope": envelope,
                "body": body,
            }
            with state.lock:
                state.received.append(record)
            self._reply(status, extra={"Retry-After": retry_after} if retry_after and status != 200 else None)

    return Handler


class Sink:
    """An in-process sink on 127.0.0.1 (a thread per connection)."""

    def __init__(self, port: int = 0) -> None:
        self.state = SinkState()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(self.state))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def start(self) -> Sink:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- The pipeline benchmark's lean recorder ---------------------------------------------------------


class PhaseSinkState:
    """Counts per phase: unique source events, redeliveries of a key, one source event under two keys."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.keys: set[str] = set()
        self.sources: dict[str, set[str]] = {}
        self.phases: dict[str, dict] = {}
        self.latency: dict[str, list[float]] = {}
        self.last_seq: dict[str, int] = {}
        self.out_of_order = 0
        self.unparsable = 0

    def record(self, key: str | None, body: bytes) -> None:
        now = time.time()
        try:
            envelope = json.loads(body)
            event = envelope["data"]["event"]
            details = event.get("details") or {}
            phase = details.get("phase", "?")
            source = event.get("source_event_id") or envelope["id"]
            subject, seq = envelope.get("subject"), int(envelope.get("sequence") or 0)
            sent_at = details.get("sent_at")
        except (ValueError, KeyError, TypeError):
            with self.lock:
                self.requests += 1
                self.unparsable += 1
            return
        key = key or envelope.get("id")
        with self.lock:
            self.requests += 1
            stats = self.phases.setdefault(
                phase,
                {"unique": 0, "redelivered_same_key": 0, "applied_twice": 0, "first": None, "last": None},
            )
            if key in self.keys:
                stats["redelivered_same_key"] += 1
                return
            self.keys.add(key)
            seen = self.sources.setdefault(phase, set())
            if source in seen:
                stats["applied_twice"] += 1
            else:
                seen.add(source)
                stats["unique"] += 1
                stats["first"] = now if stats["first"] is None else stats["first"]
                stats["last"] = now
                if isinstance(sent_at, int | float):
                    self.latency.setdefault(phase, []).append(now - sent_at)
            if seq < self.last_seq.get(subject, 0):
                self.out_of_order += 1
            else:
                self.last_seq[subject] = seq

    def snapshot(self) -> dict:
        with self.lock:
            return {
                "requests": self.requests,
                "unparsable": self.unparsable,
                "out_of_order": self.out_of_order,
                "phases": {name: dict(stats) for name, stats in self.phases.items()},
            }


def phase_sink_serve(port: int) -> None:
    """The pipeline benchmark's sink: GET /stats (counts per phase), GET /latencies?phase=NAME."""
    state = PhaseSinkState()

    class Handler(JSONHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/stats":
                self._reply(200, json.dumps(state.snapshot()).encode())
            elif url.path == "/latencies":
                phase = parse_qs(url.query).get("phase", ["?"])[0]
                with state.lock:
                    values = list(state.latency.get(phase, []))
                self._reply(200, json.dumps(values).encode())
            else:
                self._reply(404)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state.record(self.headers.get("Idempotency-Key"), body)
            self._reply(200)

    server = listen(port, Handler)
    print(f"sink listening on 127.0.0.1:{port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=9100)
    args = parser.parse_args()
    sink = Sink(args.port)
    print(f"sink listening on {sink.url}", flush=True)
    sink.server.serve_forever()
