"""`/health/`: 200 when PostgreSQL and the broker answer, else a 503 problem naming what is down.

Anonymous callers learn which part fails, never the exception text (it can name hosts, ports and
users); an admin API key or a superuser session gets the details.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import OperationalError

from celery_app import app as celery_app
from hub.core import probes
from tests.factories.canonical import CarrierFactory

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"
# Nothing listens on port 1: the connection is refused at once.
DEAD_BROKER = "redis://127.0.0.1:1/0"


def test_health_is_200_when_database_and_broker_answer(client):
    response = client.get("/health/")
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


@pytest.fixture
def dead_broker(monkeypatch):
    # probes.check_broker opens a fresh producer connection on the app's broker_write_url, which
    # Celery reads from CELERY_BROKER_WRITE_URL, then conf.broker_write_url, then the broker URL.
    monkeypatch.delenv("CELERY_BROKER_WRITE_URL", raising=False)
    monkeypatch.setitem(celery_app.conf, "broker_write_url", DEAD_BROKER)
    assert celery_app.conf.broker_write_url == DEAD_BROKER


def test_health_is_503_problem_naming_the_broker_when_it_is_down(client, dead_broker):
    response = client.get("/health/")
    assert response.status_code == 503, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == 503
    assert "broker" in body["detail"]
    assert "database" not in body["detail"]
    assert body["checks"] == {"database": "ok", "broker": "failing"}
    assert "127.0.0.1" not in response.content.decode()
    assert "Error" not in response.content.decode()


class _DownConnection:
    """Stands in for django.db.connection when PostgreSQL cannot be reached."""

    def cursor(self):
        raise OperationalError("connection to server at 127.0.0.1 port 5432 failed: Connection refused")


def test_health_is_503_problem_naming_the_database_when_it_is_down(client, monkeypatch):
    monkeypatch.setattr(probes, "connection", _DownConnection())
    response = client.get("/health/")
    assert response.status_code == 503, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert "database" in body["detail"]
    assert "broker" not in body["detail"]
    assert body["checks"] == {"database": "failing", "broker": "ok"}
    assert "OperationalError" not in response.content.decode()
    assert "5432" not in response.content.decode()


def test_admin_key_gets_the_exception_text(client, monkeypatch, admin_caller):
    monkeypatch.setattr(probes, "connection", _DownConnection())
    response = client.get("/health/", HTTP_AUTHORIZATION=f"Token {admin_caller.key}")
    assert response.status_code == 503, response.content
    checks = response.json()["checks"]
    assert checks["database"].startswith("database unreachable: OperationalError: connection to server")
    assert checks["broker"] == "ok"


def test_admin_key_gets_the_broker_exception_text(client, dead_broker, admin_caller):
    response = client.get("/health/", HTTP_AUTHORIZATION=f"Token {admin_caller.key}")
    assert response.status_code == 503, response.content
    assert response.json()["checks"]["broker"].startswith("broker unreachable: ")


def test_partner_key_bad_key_and_staff_login_get_no_exception_text(client, dead_broker, make_caller):
    partner = make_caller("partner", partner_code=CarrierFactory().scac)
    for header in (f"Token {partner.key}", "Token not-a-key", "Basic YWRtaW46YWRtaW4="):
        response = client.get("/health/", HTTP_AUTHORIZATION=header)
        assert response.status_code == 503, response.content
        assert response.json()["checks"]["broker"] == "failing", header
    client.force_login(User.objects.create_user("clerk", is_staff=True))
    assert client.get("/health/").json()["checks"]["broker"] == "failing"


def test_superuser_session_gets_the_exception_text(client, dead_broker):
    client.force_login(User.objects.create_superuser("root", password="x-long-unguessable-9"))
    assert client.get("/health/").json()["checks"]["broker"].startswith("broker unreachable: ")


def test_loopback_alone_gets_no_exception_text(client, dead_broker):
    # Behind a reverse proxy on the same host every caller arrives from 127.0.0.1.
    response = client.get("/health/", REMOTE_ADDR="127.0.0.1")
    assert response.json()["checks"]["broker"] == "failing"


def test_health_refuses_post(client):
    assert client.post("/health/").status_code == 405
