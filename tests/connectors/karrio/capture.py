"""Capture the golden files in tests/fixtures/karrio/ from the live Karrio peer.

    .venv/bin/python -m tests.connectors.karrio.capture            # webhook bodies only
    .venv/bin/python -m tests.connectors.karrio.capture --expected # also (re)write *.expected.json

Resets the peer (peers/karrio.sh reset), runs a tiny HTTP receiver, registers it through the
connector's ``webhook.register``, buys two shipments through ``shipment.create``, injects tracking
events with Karrio's ``POST /v1/trackers/{id}/inject-events``, cancels one shipment, and saves the
webhook bodies Karrio actually sent (re-indented JSON, content unchanged). ``--expected`` writes what
the mapping makes of each; review the diff before committing it, since the files are the contract.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import requests

from connectors.base import InboundRequest, OperationContext
from connectors.karrio import CONNECTOR, Config
from tests.support.peers import SHIPPER

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "karrio"


def peer_env(verb: str = "env") -> dict[str, str]:
    out = subprocess.run(
        [str(ROOT / "peers" / "karrio.sh"), verb],
        check=True,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


class RequestsClient:
    """The HttpClient protocol over requests (the hub's SafeHttpClient needs Django settings)."""

    def request(self, method, url, *, headers, body):
        started = time.monotonic()
        response = requests.request(method, url, headers=dict(headers), data=body, timeout=30)
        return (
            response.status_code,
            response.headers,
            response.content,
            int((time.monotonic() - started) * 1000),
        )


def order_payload(reference: str) -> dict:
    return {
        "reference": reference,
        "customer": {
            "code": "C-ACME",
            "name": "Acme Retail",
            "email": "ops@acme.test",
            "phone": "+1 613 555 0100",
        },
        "ship_to": {
            "code": "ACME-OTT",
            "name": "Jane Doe",
            "address_line": "23 Jardin Pvt",
            "city": "Ottawa",
            "region": "ON",
            "postal_code": "K1K4T3",
            "country": "CA",
        },
        "currency": "CAD",
        "lines": [
            {
                "line_number": 1,
                "sku": "W-1",
                "product_name": "Widget",
                "quantity": "2",
                "unit_price": "9.50",
                "weight_kg": "1.0",
            },
            {
                "line_number": 2,
                "sku": "G-7",
                "product_name": "Gadget",
                "quantity": "1",
                "unit_price": "25",
                "weight_kg": "0.5",
            },
        ],
    }


def tracking_event(day: int, status: str, code: str, description: str, location: str, **extra) -> dict:
    return {
        "date": f"2030-01-{day:02d}",
        "time": "10:00",
        "timestamp": f"2030-01-{day:02d}T10:00:00.000Z",
        "status": status,
        "code": code,
        "description": description,
        "location": location,
        **extra,
    }


def main(write_expected: bool) -> None:
    peer_env("reset")
    env = peer_env()
    received: list[bytes] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(self.rfile.read(int(self.headers.get("content-length") or 0)))
            self.send_response(202)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    config = Config(
        url=env["KARRIO_URL"],
        carrier_id=env["KARRIO_CARRIER_ID"],
        service="offline_standard",
        shipper=SHIPPER,
    )
    ctx = OperationContext(
        config=config, secret=json.dumps({"api_key": env["KARRIO_API_KEY"]}), client=RequestsClient()
    )
    connector = CONNECTOR.instance()
    connector.operate("webhook.register", {"url": f"http://127.0.0.1:{server.server_port}/karrio"}, ctx)
    api = requests.Session()
    api.headers["Authorization"] = f"Token {env['KARRIO_API_KEY']}"

    saved: dict[str, bytes] = {}

    def keep(name: str, body: bytes) -> None:
        saved[name] = body

    def inject(tracker_id: str, status: str, event: dict, **extra) -> list[bytes]:
        before = len(received)
        response = api.post(
            f"{env['KARRIO_URL']}/v1/trackers/{tracker_id}/inject-events",
            json={"status": status, "events": [event], **extra},
            timeout=30,
        )
        response.raise_for_status()
        return received[before:]

    def by_event(bodies: list[bytes], event: str) -> bytes:
        return next(b for b in bodies if json.loads(b)["event"] == event)

    # Shipment 1: bought, then the whole journey with a failed attempt on the way.
    before = len(received)
    one = connector.operate("shipment.create", order_payload("SO-GOLD-1"), ctx)
    purchase = received[before:]
    keep("order_created", by_event(purchase, "order_created"))
    keep("shipment_purchased", by_event(purchase, "shipment_purchased"))
    keep("tracker_created", by_event(purchase, "tracker_created"))
    tracker = one.data["tracker_id"]
    keep(
        "tracker_picked_up",
        by_event(
            inject(
                tracker,
                "picked_up",
                tracking_event(2, "picked_up", "PU", "Picked up by driver", "Montreal, QC"),
            ),
            "tracker_updated",
        ),
    )
    bodies = inject(
        tracker,
        "in_transit",
        tracking_event(3, "in_transit", "AR", "Arrived at sort facility", "Kingston, ON"),
    )
    keep("tracker_in_transit", by_event(bodies, "tracker_updated"))
    keep("shipment_fulfilled", by_event(bodies, "shipment_fulfilled"))
    keep(
        "tracker_out_for_delivery",
        by_event(
            inject(
                tracker,
                "out_for_delivery",
                tracking_event(4, "out_for_delivery", "OD", "Out for delivery", "Ottawa, ON"),
            ),
            "tracker_updated",
        ),
    )
    bodies = inject(
        tracker,
        "delivery_failed",
        tracking_event(
            4,
            "delivery_failed",
            "NA",
            "Delivery attempted, nobody home",
            "Ottawa, ON",
            time="15:00",
            timestamp="2030-01-04T15:00:00.000Z",
            reason="consignee_not_available",
        ),
    )
    keep("tracker_delivery_failed", by_event(bodies, "tracker_updated"))
    keep("shipment_delivery_failed", by_event(bodies, "shipment_delivery_failed"))
    bodies = inject(
        tracker,
        "delivered",
        tracking_event(5, "delivered", "DL", "Delivered, signed by J DOE", "Ottawa, ON"),
        delivered=True,
    )
    keep("tracker_delivered", by_event(bodies, "tracker_updated"))
    keep("order_delivered", by_event(bodies, "order_delivered"))

    # Shipment 2: the label is voided before it moves (Karrio refuses once it is in transit).
    two = connector.operate("shipment.create", order_payload("SO-GOLD-2"), ctx)
    before = len(received)
    connector.operate("shipment.cancel", {"external_id": two.external_id}, ctx)
    keep("shipment_cancelled", by_event(received[before:], "shipment_cancelled"))

    # Shipment 3: refused at the door.
    three = connector.operate("shipment.create", order_payload("SO-GOLD-3"), ctx)
    bodies = inject(
        three.data["tracker_id"],
        "delivery_failed",
        tracking_event(
            6, "delivery_failed", "RF", "Refused by consignee", "Ottawa, ON", reason="consignee_refused"
        ),
    )
    keep("tracker_refused", by_event(bodies, "tracker_updated"))
    server.shutdown()

    FIXTURES.mkdir(parents=True, exist_ok=True)
    mappings = SimpleNamespace()  # the connector falls back to its packaged defaults
    for name, body in saved.items():
        (FIXTURES / f"{name}.json").write_text(json.dumps(json.loads(body), indent=2) + "\n")
        if write_expected:
            request = InboundRequest(body=body, content_type="application/json", headers={})
            [document] = connector.parse(request, config).documents
            expected = connector.map(document, config, mappings)
            (FIXTURES / f"{name}.expected.json").write_text(json.dumps(expected, indent=2) + "\n")
        print(f"saved {name}")


if __name__ == "__main__":
    main(write_expected="--expected" in sys.argv[1:])
