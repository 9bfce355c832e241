"""`/health/`: 200 when PostgreSQL and the broker answer, else a 503 problem naming what is down."""

from __future__ import annotations

import pytest
from django.db import OperationalError

from celery_app import app as celery_app
from hub.core import health

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"
# Nothing listens on port 1: the connection is refused at once.
DEAD_BROKER = "redis://127.0.0.1:1/0"


def test_health_is_200_when_database_and_broker_answer(client):
    response = client.get("/health/")
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


def test_health_is_503_problem_naming_the_broker_when_it_is_down(client, monkeypatch):
    # health.check_broker opens a fresh producer connection on the app's broker_write_url, which
    # Celery reads from CELERY_BROKER_WRITE_URL, then conf.broker_write_url, then the broker URL.
    monkeypatch.delenv("CELERY_BROKER_WRITE_URL", raising=False)
    monkeypatch.setitem(celery_app.conf, "broker_write_url", DEAD_BROKER)
    assert celery_app.conf.broker_write_url == DEAD_BROKER

    response = client.get("/health/")
    assert response.status_code == 503, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == 503
    assert "broker" in body["detail"]
    assert "database" not in body["detail"]
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"].startswith("broker unreachable")


class _DownConnection:
    """Stands in for django.db.connection when PostgreSQL cannot be reached."""

    def cursor(self):
        raise OperationalError("connection to server at 127.0.0.1 port 5432 failed: Connection refused")


def test_health_is_503_problem_naming_the_database_when_it_is_down(client, monkeypatch):
    monkeypatch.setattr(health, "connection", _DownConnection())
    response = client.get("/health/")
    assert response.status_code == 503, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert "database" in body["detail"]
    assert "broker" not in body["detail"]
    assert "OperationalError" in body["checks"]["database"]
    assert body["checks"]["broker"] == "ok"


def test_health_refuses_post(client):
    assert client.post("/health/").status_code == 405
