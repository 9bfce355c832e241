"""The reconciliation checks against the live peers: the flows tests' hub, wired to Tryton, Karrio and
BottleCRM (tests/flows/conftest.py), shared with them. Nothing resets a peer; every test makes its
own Tryton party and sale, keyed by the flows session token."""

from __future__ import annotations

from tests.flows.conftest import hub, karrio, karrio_webhook, peers_up

__all__ = ["hub", "karrio", "karrio_webhook", "peers_up"]
