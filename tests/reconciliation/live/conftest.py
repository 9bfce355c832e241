"""The billing checks against the live peers: the hub wired to Tryton, Karrio and BottleCRM by the
flows' fixtures (tests/flows/conftest.py: a session token in every reference, nothing reset)."""

from __future__ import annotations

from tests.flows.conftest import hub, karrio, karrio_webhook, peers_up  # noqa: F401  the fixtures
