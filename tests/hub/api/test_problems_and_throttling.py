"""RFC 9457 problem details for malformed and unknown requests; per-client rate limits counted in Redis."""

from __future__ import annotations

import time

import pytest
import redis
from django.conf import settings
from rest_framework.test import APIClient

from hub.api.v1.throttling import ApiClientRateThrottle

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"
REDIS_CACHE = "hub.core.cache.ReusingRedisCache"  # Django's RedisCache, reusing client objects


def test_malformed_json_is_400_malformed_request_problem(admin_caller):
    response = admin_caller.http.post(
        "/api/v1/carriers/", data='{"scac": "ACME", "name": ', content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["type"] == "urn:crossdock:problem:malformed-request"
    assert body["status"] == 400
    assert body["detail"]


def test_unknown_api_path_is_404_problem(admin_caller):
    response = admin_caller.http.get("/api/v1/nope/")
    assert response.status_code == 404
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["type"] == "urn:crossdock:problem:not-found"
    assert "/api/v1/nope/" in body["detail"]


def test_unknown_record_id_is_404_problem(admin_caller):
    response = admin_caller.http.get("/api/v1/shipments/00000000-0000-4000-8000-000000000000/")
    assert response.status_code == 404
    assert response["Content-Type"] == PROBLEM


def test_cache_backend_is_redis_in_the_test_settings():
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    assert settings.CACHES["default"]["BACKEND"] == REDIS_CACHE
    assert isinstance(caches["default"], RedisCache)
    assert settings.CACHES["default"]["LOCATION"].startswith(("redis://", "rediss://"))


def _wait_for_fresh_window(window_s: int = 60, margin_s: float = 5.0) -> None:
    """The throttle counts in fixed windows: start well inside one so the test cannot straddle two."""
    into = time.time() % window_s
    if into > window_s - margin_s:
        time.sleep(window_s - into + 0.05)


def test_client_over_its_rate_gets_429_with_retry_after_and_others_are_unaffected(make_caller):
    limited = make_caller("limited", admin=True)
    limited.client.rate_limit_per_minute = 3
    limited.client.save(update_fields=["rate_limit_per_minute"])
    bystander = make_caller("bystander", admin=True)

    _wait_for_fresh_window()
    statuses = [limited.http.get("/api/v1/carriers/").status_code for _ in range(3)]
    assert statuses == [200, 200, 200]

    response = limited.http.get("/api/v1/carriers/")
    assert response.status_code == 429, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["type"] == "urn:crossdock:problem:rate-limited"
    retry_after = response["Retry-After"]
    assert retry_after.isdigit(), retry_after
    assert 0 < int(retry_after) <= 60
    assert body["retry_after"] == int(retry_after)

    assert bystander.http.get("/api/v1/carriers/").status_code == 200


def test_rate_limit_counters_live_in_redis(make_caller):
    caller = make_caller("counted", admin=True)
    _wait_for_fresh_window()
    for _ in range(2):
        assert caller.http.get("/api/v1/carriers/").status_code == 200

    server = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])
    keys = server.keys(f"*throttle:*client:{caller.client.pk}:*")
    assert len(keys) == 1, keys
    assert int(server.get(keys[0])) == 2
    assert 0 < server.ttl(keys[0]) <= 61


def test_throttle_class_is_the_default_for_the_api():
    assert settings.REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] == [
        f"{ApiClientRateThrottle.__module__}.{ApiClientRateThrottle.__name__}"
    ]


def test_malformed_record_id_is_404_problem_not_500(admin_caller):
    response = admin_caller.http.get("/api/v1/shipments/not-a-uuid/")
    assert response.status_code == 404
    assert response["Content-Type"] == PROBLEM


def test_page_past_the_end_is_404_problem(admin_caller):
    response = admin_caller.http.get("/api/v1/carriers/", {"page": 99})
    assert response.status_code == 404
    assert response["Content-Type"] == PROBLEM
    assert response.json()["type"] == "urn:crossdock:problem:not-found"


def test_forwarded_for_does_not_split_one_callers_budget(settings):
    """With no trusted proxy (CROSSDOCK_NUM_PROXIES=0) X-Forwarded-For is the caller's to forge: the
    budget follows the socket address, so rotating the header buys no extra requests."""
    assert settings.REST_FRAMEWORK["NUM_PROXIES"] == 0
    settings.CROSSDOCK_INBOUND_RATE = (2, 60)  # requests per window (seconds)
    _wait_for_fresh_window()
    http = APIClient()
    statuses = [
        http.post(
            "/api/v1/inbound/no-such-connection/",
            data=b"{}",
            content_type="application/json",
            HTTP_X_FORWARDED_FOR=f"203.0.113.{i}",
        ).status_code
        for i in range(1, 4)
    ]
    assert statuses == [401, 401, 429], statuses
