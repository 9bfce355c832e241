"""Fixtures for the Tryton connector's live tests: the peer is brought up once per session
(``peers/tryton.sh ensure``), reset to its seeded snapshot, and shared; each test makes its own
sales, so tests do not depend on each other's data."""

from __future__ import annotations

import pytest

from connectors.base import OperationContext
from connectors.mapping import MappingSet
from connectors.tryton import CONNECTOR, DEFAULT_MAPPINGS, Config
from connectors.tryton.client import TrytonClient
from hub.core.http import SafeHttpClient
from tests.connectors.tryton.peer import config_data
from tests.support.peers import peer_ready

READ_TIMEOUT_S = 60.0  # seconds per RPC: confirm/post take ~1-2 s, more when the machine is busy


@pytest.fixture(scope="session")
def tryton_env() -> dict[str, str]:
    return peer_ready("tryton", timeout=600)


def _make_ctx(env: dict[str, str], *, password: str | None = None, **config: object) -> OperationContext:
    return OperationContext(
        config=Config.model_validate(config_data(env, **{"settle_s": 0, **config})),
        secret=env["TRYTON_PASSWORD"] if password is None else password,
        client=SafeHttpClient(read_timeout_s=READ_TIMEOUT_S),
        mappings=MappingSet.from_data(DEFAULT_MAPPINGS["outbound"]),
        connection_slug="tryton-test",
    )


@pytest.fixture
def make_ctx(tryton_env):
    """make_ctx(page_size=1, settle_s=3, password="wrong", ...): a context with other settings."""
    return lambda **kwargs: _make_ctx(tryton_env, **kwargs)


@pytest.fixture
def ctx(tryton_env) -> OperationContext:
    return _make_ctx(tryton_env)


@pytest.fixture
def tryton(ctx) -> TrytonClient:
    """The JSON-RPC client, for test setup and for reading the peer's records back."""
    return TrytonClient.from_context(ctx)


@pytest.fixture
def connector():
    return CONNECTOR.instance()
