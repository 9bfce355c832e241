"""Fixtures for the BottleCRM connector's live tests: the peer is brought up once per session
(``peers/bottlecrm.sh ensure``), reset to a clean org from its template database, and shared; each
test uses its own customer codes and shipment references, so tests do not depend on each other."""

from __future__ import annotations

import uuid

import pytest

from connectors.base import OperationContext
from connectors.bottlecrm import CONNECTOR
from connectors.bottlecrm.client import CrmApi
from hub.core.http import SafeHttpClient
from tests.connectors.bottlecrm.peer import api, make_ctx
from tests.support.peers import peer_ready

READ_TIMEOUT_S = 30.0  # seconds per call: writes take 50-300 ms, more while the machine is busy


@pytest.fixture(scope="session")
def crm_env() -> dict[str, str]:
    return peer_ready("bottlecrm")


@pytest.fixture
def ctx(crm_env) -> OperationContext:
    return make_ctx(crm_env, SafeHttpClient(read_timeout_s=READ_TIMEOUT_S))


@pytest.fixture
def make_context(crm_env):
    """make_context(secret="wrong", internal_comments=False, ...): a context with other settings."""
    return lambda **kwargs: make_ctx(crm_env, SafeHttpClient(read_timeout_s=READ_TIMEOUT_S), **kwargs)


@pytest.fixture
def crm(crm_env) -> CrmApi:
    """The CRM's REST API, for reading its own records back (counting them)."""
    return api(crm_env, SafeHttpClient(read_timeout_s=READ_TIMEOUT_S))


@pytest.fixture
def connector():
    return CONNECTOR.instance()


@pytest.fixture
def unique() -> str:
    """A suffix that makes this test's customer codes, names and shipment references its own."""
    return uuid.uuid4().hex[:8].upper()
