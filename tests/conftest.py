"""Shared fixtures. Tests run against real PostgreSQL and Redis (see `./crossdock test`)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from hub.connections.models import ApiClient
from hub.connections.services import api_client_create
from hub.core import http

pytest_plugins = ["tests.e2e.worker", "tests.support.registry"]


def _clear_own_cache_keys() -> None:
    """Delete Crossdock's cache keys only. ``cache.clear()`` would FLUSHDB, and when the cache shares
    its Redis database with the broker that would also drop queued tasks and queue bindings."""
    client_holder = getattr(cache, "_cache", None)
    if client_holder is None or not hasattr(client_holder, "get_client"):
        cache.clear()  # not Redis (e.g. a local cache): nothing else lives there
        return
    client = client_holder.get_client(write=True)
    keys = list(client.scan_iter(match=cache.make_key("") + "*", count=1000))
    if keys:
        client.delete(*keys)


def pytest_configure(config):
    """Password hashing at test speed in this process: Django's PBKDF2 default costs about half a
    second per login or new user on this class of machine, and the admin, lockout and API tests make
    hundreds. What the tests check (lockout, permissions, validators) does not depend on the hasher;
    worker and web subprocesses keep the production hashers."""
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def pytest_collection_modifyitems(config, items):
    """Run end-to-end tests last: their real worker process lives for the rest of the session and
    would otherwise consume wake-ups meant for service tests that claim work themselves."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate-limit counters, breaker state and wake-up flags never leak from one test to the next."""
    _clear_own_cache_keys()
    yield


@pytest.fixture(autouse=True)
def _private_networks_refused(request, settings):
    """The outbound URL policy (SSRF guard) is on in every test, whatever the environment says; a
    test whose receiver listens on 127.0.0.1 opts in with ``private_networks``. Tests marked
    ``peer`` talk to the peer systems on 127.0.0.1, so the marker is their opt-in (it covers the
    connections they save and every client they build, in tests/flows and tests/connectors/*)."""
    settings.CROSSDOCK_ALLOW_PRIVATE_NETWORKS = request.node.get_closest_marker("peer") is not None


@pytest.fixture
def private_networks(settings):
    """Opt in: this test's receiver or peer listens on 127.0.0.1 (lifts the SSRF guard for it)."""
    settings.CROSSDOCK_ALLOW_PRIVATE_NETWORKS = True


@pytest.fixture
def dns(monkeypatch) -> dict[str, list[str]]:
    """Play DNS through the hub's resolver hook: ``dns["peer.example"] = ["93.184.215.14"]``. Names
    not in the dict resolve as usual; changing an entry mid-test is a DNS answer that changes."""
    answers: dict[str, list[str]] = {}
    system = http.resolve

    def resolve(host: str) -> list[str]:
        return list(answers[host]) if host in answers else system(host)

    monkeypatch.setattr(http, "resolve", resolve)
    return answers


@dataclass
class Caller:
    """An HTTP client authenticated as one API client."""

    client: ApiClient
    key: str
    http: APIClient


def _caller(name: str, **kwargs) -> Caller:
    issued = api_client_create(name=name, **kwargs)
    http = APIClient()
    http.credentials(HTTP_AUTHORIZATION=f"Token {issued.key}")
    return Caller(client=issued.client, key=issued.key, http=http)


@pytest.fixture
def make_caller(db):
    """make_caller(name, admin=True) or make_caller(name, partner_code="SCAC")."""
    return _caller


@pytest.fixture
def admin_caller(make_caller) -> Caller:
    return make_caller("test-admin", admin=True)


@pytest.fixture
def anonymous() -> APIClient:
    return APIClient()
