"""Broker and Redis settings: RabbitMQ as the broker still needs Redis, and says so at start-up."""

from __future__ import annotations

import json
import subprocess

from tests.support.settings_process import settings_run

AMQP = "amqp://guest:guest@127.0.0.1:5672/cd_settings_check"  # never connected to here
REDIS = "redis://127.0.0.1:6379/15"  # never connected to here
SHOW = (
    "import json, django; django.setup(); from django.conf import settings as s; print(json.dumps({"
    "'cache': s.CACHES['default']['LOCATION'], 'results': s.CELERY_RESULT_BACKEND, "
    "'transport': s.CELERY_BROKER_TRANSPORT_OPTIONS, 'redis': s.CROSSDOCK_REDIS_URL}))"
)


def _run(code: str, **overrides: str | None) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter with the test environment plus ``overrides`` (None unsets)."""
    return settings_run(
        code,
        unset=("CELERY_BROKER_URL_FILE", "CROSSDOCK_REDIS_URL_FILE", "CELERY_RESULT_BACKEND_FILE"),
        **overrides,
    )


def test_rabbitmq_broker_without_a_redis_url_fails_start_up_naming_crossdock_redis_url():
    result = _run(
        "import django; django.setup()",
        CELERY_BROKER_URL=AMQP,
        CROSSDOCK_REDIS_URL=None,
        CELERY_RESULT_BACKEND=None,
    )

    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert "ImproperlyConfigured" in last_line and "CROSSDOCK_REDIS_URL" in last_line, result.stderr


def test_rabbitmq_broker_keeps_cache_and_results_in_crossdock_redis_url():
    result = _run(SHOW, CELERY_BROKER_URL=AMQP, CROSSDOCK_REDIS_URL=REDIS, CELERY_RESULT_BACKEND=None)

    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout.strip().splitlines()[-1])
    assert shown == {"cache": REDIS, "results": REDIS, "transport": {}, "redis": REDIS}


def test_redis_broker_is_also_the_cache_and_result_backend_by_default():
    broker = "redis://127.0.0.1:6379/14"
    result = _run(SHOW, CELERY_BROKER_URL=broker, CROSSDOCK_REDIS_URL=None, CELERY_RESULT_BACKEND=None)

    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout.strip().splitlines()[-1])
    assert shown["cache"] == shown["results"] == shown["redis"] == broker
    assert shown["transport"] == {"visibility_timeout": 3600}
