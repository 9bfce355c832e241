"""The live reconciliation tests use the flows' peers and hub (tests/flows/conftest.py): the same
session token, connections and worker loop, so the shared peers see nothing new in shape."""

from __future__ import annotations

from tests.flows.conftest import hub, karrio, karrio_webhook, peers_up

__all__ = ["hub", "karrio", "karrio_webhook", "peers_up"]
