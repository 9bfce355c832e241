"""hub.core.http: the outbound URL policy (SSRF guard) checked at save and on every connect, the
connection pinned to the checked address, and the response size and total time caps. Real sockets
on 127.0.0.1; DNS is played through the module's resolver hook (the ``dns`` fixture)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from connectors.errors import TransientError
from hub.connections.services import connection_save
from hub.core.errors import ValidationFailed
from hub.core.http import ResponseTooLargeError, SafeHttpClient, UrlPolicyError, url_policy_check

PUBLIC = "93.184.215.14"  # a global unicast address; no test connects to it


class Receiver:
    """A local HTTP server that records each request's Host header and answers ``reply``."""

    def __init__(self) -> None:
        self.hosts: list[str] = []
        self.reply: Callable[[BaseHTTPRequestHandler], None] = lambda h: _send(h, b"ok")
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.hosts.append(self.headers.get("Host", ""))
                receiver.reply(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]


def _send(handler: BaseHTTPRequestHandler, body: bytes, *, chunked: bool = False) -> None:
    handler.send_response(200)
    if chunked:
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for start in range(0, len(body), 65_536):
            part = body[start : start + 65_536]
            handler.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        handler.wfile.write(b"0\r\n\r\n")
    else:
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.server.shutdown()
    server.server.server_close()


def post(url: str, **client) -> tuple[int, bytes]:
    status, _headers, body, _ms = SafeHttpClient(**client).request("POST", url, headers={}, body=b"{}")
    return status, body


# --- The policy ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "100.64.0.1",  # carriage-grade NAT (shared address space), not "private" to ipaddress
        "0.0.0.0",
        "169.254.169.254",  # cloud metadata service
        "127.0.0.1",
        "10.1.2.3",
        "192.0.0.1",  # IETF protocol assignments
        "198.18.0.1",  # benchmarking
        "224.0.0.1",  # multicast
        "::1",
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
        "::ffff:169.254.169.254",
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "fe80::1",
        "fc00::1",
    ],
)
def test_any_non_global_address_is_refused(address):
    host = f"[{address}]" if ":" in address else address

    with pytest.raises(UrlPolicyError) as caught:
        url_policy_check(f"http://{host}/hook")

    assert address in caught.value.detail


def test_a_name_with_one_private_answer_among_public_ones_is_refused(dns):
    dns["mixed.example"] = [PUBLIC, "10.0.0.7"]

    with pytest.raises(UrlPolicyError) as caught:
        url_policy_check("https://mixed.example/hook")

    assert "10.0.0.7" in caught.value.detail


def test_a_public_name_is_accepted(dns):
    dns["partner.example"] = [PUBLIC, "2606:4700::1111"]

    url_policy_check("https://partner.example/hook")  # no exception


@pytest.mark.django_db
def test_a_name_rebound_to_loopback_after_save_is_refused_at_send(dns, receiver):
    # Saved while the name pointed at a public address; the attacker's DNS then answers 127.0.0.1,
    # where the receiver stands for an internal service. The send must not reach it.
    dns["rebind.example"] = [PUBLIC]
    url = f"http://rebind.example:{receiver.port}/hook"
    connection_save(
        data={"slug": "rebind", "system": "partner", "connector": "webhook", "config": {"url": url}}
    )
    dns["rebind.example"] = ["127.0.0.1"]

    with pytest.raises(UrlPolicyError) as caught:
        post(url)

    assert "127.0.0.1" in caught.value.detail
    assert receiver.hosts == []


@pytest.mark.django_db
def test_a_private_url_is_refused_at_save_naming_the_field():
    with pytest.raises(ValidationFailed) as caught:
        connection_save(
            data={
                "slug": "cgnat",
                "system": "partner",
                "connector": "webhook",
                "config": {"url": "http://100.64.1.1/"},
            }
        )

    assert [e["field"] for e in caught.value.errors] == ["config.url"]


def test_the_connection_goes_to_the_checked_address_and_keeps_the_host_name(dns, receiver, private_networks):
    # receiver.example exists only in the resolver hook: the request can reach the receiver only
    # through the address the hub resolved and checked, and the Host header still names the host.
    dns["receiver.example"] = ["127.0.0.1"]

    status, body = post(f"http://receiver.example:{receiver.port}/hook")

    assert (status, body) == (200, b"ok")
    assert receiver.hosts == [f"receiver.example:{receiver.port}"]


def test_private_networks_can_be_allowed_for_one_client_only(receiver):
    url = f"http://127.0.0.1:{receiver.port}/hook"
    with pytest.raises(UrlPolicyError):
        post(url)

    assert post(url, allow_private=True) == (200, b"ok")


# --- Caps ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_response_over_the_size_cap_is_refused(receiver, private_networks, chunked):
    receiver.reply = lambda h: _send(h, b"x" * 300_000, chunked=chunked)

    with pytest.raises(ResponseTooLargeError) as caught:
        post(f"http://127.0.0.1:{receiver.port}/hook", max_response_bytes=100_000)

    assert "100000 bytes" in caught.value.detail


def test_a_response_at_the_size_cap_is_read_whole(receiver, private_networks):
    receiver.reply = lambda h: _send(h, b"x" * 100_000, chunked=True)

    assert post(f"http://127.0.0.1:{receiver.port}/hook", max_response_bytes=100_000) == (200, b"x" * 100_000)


def test_the_size_cap_is_a_setting_in_bytes(receiver, private_networks, settings):
    settings.CROSSDOCK_HTTP_MAX_RESPONSE_BYTES = 2048
    receiver.reply = lambda h: _send(h, b"x" * 2049)

    with pytest.raises(ResponseTooLargeError):
        post(f"http://127.0.0.1:{receiver.port}/hook")


@pytest.fixture
def trickler() -> Iterator[Callable[[bytes, bytes], int]]:
    """trickler(head, drip): a raw server that sends ``head`` then one byte of ``drip`` every 0.1 s,
    forever (each byte well inside the read timeout). Returns its port."""
    stop = threading.Event()
    servers: list[socket.socket] = []

    def start(head: bytes, drip: bytes) -> int:
        server = socket.create_server(("127.0.0.1", 0))
        servers.append(server)

        def serve() -> None:
            conn, _ = server.accept()
            with conn:
                conn.recv(65_536)
                conn.sendall(head)
                i = 0
                while not stop.is_set():
                    try:
                        conn.sendall(drip[i % len(drip) : i % len(drip) + 1])
                    except OSError:
                        return
                    i += 1
                    time.sleep(0.1)

        threading.Thread(target=serve, daemon=True).start()
        return server.getsockname()[1]

    yield start
    stop.set()
    for server in servers:
        server.close()


@pytest.mark.parametrize(
    ("head", "drip"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", b"x"),  # a slow body
        (
            b"HTTP/1.1 200 OK\r\n",
            b"X-Slow: yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\r\n",
        ),  # endless headers
    ],
    ids=["body", "headers"],
)
def test_a_server_trickling_bytes_is_cut_off_at_the_total_time(trickler, private_networks, head, drip):
    port = trickler(head, drip)
    started = time.monotonic()

    with pytest.raises(TransientError) as caught:
        post(f"http://127.0.0.1:{port}/hook", read_timeout_s=1.0, total_timeout_s=1.5)

    elapsed = time.monotonic() - started
    assert "longer than 1.5s" in caught.value.detail
    assert 1.4 < elapsed < 4.0
