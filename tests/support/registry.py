"""Registering a test-only connector for the duration of one test."""

from __future__ import annotations

import pytest

from connectors import registry


@pytest.fixture
def test_peer_connector(monkeypatch):
    """The ``testpeer`` connector (tests/support/ledger_connector.py), registered and reset."""
    from tests.support import ledger_connector

    monkeypatch.setitem(registry.BUILTINS, ledger_connector.KEY, "tests.support.ledger_connector:CONNECTOR")
    registry._targets.cache_clear()
    registry.get.cache_clear()
    ledger_connector.PEER.reset()
    yield ledger_connector
    ledger_connector.PEER.reset()
    monkeypatch.undo()
    registry._targets.cache_clear()
    registry.get.cache_clear()


@pytest.fixture
def crashing_connector(monkeypatch):
    """The ``testcrash`` connector (tests/support/crashing_connector.py): its parse raises RuntimeError."""
    from tests.support import crashing_connector

    monkeypatch.setitem(
        registry.BUILTINS, crashing_connector.KEY, "tests.support.crashing_connector:CONNECTOR"
    )
    registry._targets.cache_clear()
    registry.get.cache_clear()
    crashing_connector.CALLS["parse"] = 0
    crashing_connector.RAISE_NEXT.clear()
    yield crashing_connector
    crashing_connector.RAISE_NEXT.clear()
    monkeypatch.undo()
    registry._targets.cache_clear()
    registry.get.cache_clear()
