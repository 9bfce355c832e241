"""Fixtures for tests against the live Karrio peer (peers/karrio.sh)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from hub.connections.services import connection_save
from tests.support.peers import SHIPPER, PeerApi, peer_script_or_fail

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "peers" / "karrio.sh"


def peer(verb: str, *, timeout: float = 900) -> str:
    """Run a peer verb (stdin closed, as in CI); returns its stdout. Fails the test with the log tail."""
    return peer_script_or_fail("karrio", verb, timeout=timeout)


@dataclass
class KarrioPeer(PeerApi):
    """The running peer, and a plain API session for what tests check or drive behind the connector."""

    url: str
    api_key: str
    carrier_id: str
    api: requests.Session

    def delete(self, path: str) -> None:
        self.api.delete(f"{self.url}{path}", timeout=30)

    def count(self, resource: str, **filters: str) -> int:
        """Records of ``resource`` whose fields equal ``filters`` exactly, all statuses included."""
        found = self.get(f"/v1/{resource}", limit=1000, **filters)["results"]
        return sum(all(record.get(k) == v for k, v in filters.items()) for record in found)

    def inject(self, tracker_id: str, status: str, event: dict, **extra) -> None:
        self.post(f"/v1/trackers/{tracker_id}/inject-events", {"status": status, "events": [event], **extra})

    def newest_event_id(self, event_type: str) -> str:
        response = self.api.post(
            f"{self.url}/graphql", json={"query": "{ events { edges { node { id type } } } }"}, timeout=30
        )
        response.raise_for_status()
        nodes = [edge["node"] for edge in response.json()["data"]["events"]["edges"]]
        return next(node["id"] for node in nodes if node["type"] == event_type)


@pytest.fixture(scope="session")
def karrio_peer() -> KarrioPeer:
    """A clean Karrio: installed and initialised when needed (minutes, once per machine), then reset
    from its template (seconds). Left running after the session, like the other peers."""
    peer("ensure")
    peer("reset")
    env = dict(line.split("=", 1) for line in peer("env").splitlines() if "=" in line)
    api = requests.Session()
    api.headers["Authorization"] = f"Token {env['KARRIO_API_KEY']}"
    return KarrioPeer(env["KARRIO_URL"], env["KARRIO_API_KEY"], env["KARRIO_CARRIER_ID"], api)


@pytest.fixture
def karrio_connection(karrio_peer, settings):
    """make(slug=..., **secret fields): a saved Connection to the peer (default: the right API key)."""
    settings.CROSSDOCK_ALLOW_PRIVATE_NETWORKS = True  # the peer listens on 127.0.0.1

    def make(slug: str | None = None, **secret: str):
        return connection_save(
            data={
                "slug": slug or f"karrio-{uuid.uuid4().hex[:8]}",
                "name": "Karrio (peer)",
                "system": "tms",
                "connector": "karrio",
                "config": {
                    "url": karrio_peer.url,
                    "carrier_id": karrio_peer.carrier_id,
                    "service": "offline_standard",
                    "shipper": SHIPPER,
                    "timeout_s": 30,
                },
            },
            secret=json.dumps({"api_key": karrio_peer.api_key, **secret}),
        )

    return make


def order_payload(reference: str | None = None, **extra) -> dict:
    """A canonical order as ``shipment.create`` takes it; the reference is unique per call."""
    return {
        "reference": reference or f"SO-{uuid.uuid4().hex[:10].upper()}",
        "customer": {"code": "C-ACME", "name": "Acme Retail", "email": "ops@acme.test"},
        "ship_to": {
            "code": "ACME-OTT",
            "name": "Jane Doe",
            "address_line": "23 Jardin Pvt",
            "city": "Ottawa",
            "region": "ON",
            "postal_code": "K1K4T3",
            "country": "CA",
        },
        "lines": [
            {"line_number": 1, "sku": "W-1", "product_name": "Widget", "quantity": "2", "weight_kg": "1.0"},
            {"line_number": 2, "sku": "G-7", "product_name": "Gadget", "quantity": "1", "weight_kg": "0.5"},
        ],
        **extra,
    }


def tracking_event(day: int, status: str, code: str, location: str = "Ottawa, ON", **extra) -> dict:
    return {
        "date": f"2030-02-{day:02d}",
        "time": "10:00",
        "timestamp": f"2030-02-{day:02d}T10:00:00.000Z",
        "status": status,
        "code": code,
        "description": status.replace("_", " "),
        "location": location,
        **extra,
    }
