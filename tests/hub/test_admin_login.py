"""The admin login form locks an account after repeated failures (django-axes, database handler), and
new passwords must pass Django's four standard validators."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client

from hub.demo.logins import demo_logins_ensure

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-staple-42"


def _login(http: Client, username: str, password: str, address: str = "198.51.100.7"):
    return http.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password, "next": "/admin/"},
        REMOTE_ADDR=address,
    )


def _logged_in(http: Client) -> bool:
    return "_auth_user_id" in http.session


@pytest.fixture
def operator_user() -> User:
    return User.objects.create_user("operator", password=PASSWORD, is_staff=True)


def test_the_right_password_logs_in(operator_user):
    http = Client()
    response = _login(http, "operator", PASSWORD)
    assert response.status_code == 302, response.content
    assert _logged_in(http)


def test_repeated_failures_lock_the_account_even_for_the_right_password(operator_user):
    http = Client()
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        response = _login(http, "operator", "wrong-password")
        assert response.status_code == 200  # the form again, with its error
    assert _login(http, "operator", "wrong-password").status_code == 429

    locked = _login(http, "operator", PASSWORD)
    assert locked.status_code == 429, locked.content
    assert b"too many login attempts" in locked.content
    assert not _logged_in(http)
    attempt = AccessAttempt.objects.get(username="operator")
    assert attempt.failures_since_start >= limit
    assert attempt.ip_address == "198.51.100.7"


def test_the_lock_is_per_user_and_address(operator_user):
    User.objects.create_user("other", password=PASSWORD, is_staff=True)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(Client(), "operator", "wrong-password")
    # The same user from another address, and another user from the same address, still log in.
    elsewhere = Client()
    assert _login(elsewhere, "operator", PASSWORD, address="203.0.113.9").status_code == 302
    assert _logged_in(elsewhere)
    neighbour = Client()
    assert _login(neighbour, "other", PASSWORD).status_code == 302
    assert _logged_in(neighbour)


def test_the_admin_unlocks_with_axes_reset(operator_user):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(Client(), "operator", "wrong-password")
    call_command("axes_reset_username", "operator")
    http = Client()
    assert _login(http, "operator", PASSWORD).status_code == 302
    assert _logged_in(http)


@pytest.mark.parametrize("weak", ["short1", "password123", "84736291045", "operator1"])
def test_weak_passwords_are_rejected(weak, operator_user):
    with pytest.raises(ValidationError):
        password_validation.validate_password(weak, user=operator_user)


def test_generated_demo_password_passes_the_validators_and_logs_in():
    logins = demo_logins_ensure()
    user = User.objects.get(username=logins.username)
    password_validation.validate_password(logins.password, user=user)
    http = Client()
    assert _login(http, logins.username, logins.password).status_code == 302
    assert _logged_in(http)


def test_create_api_client_still_works(capsys):
    call_command("create_api_client", "ops-script", "--admin")
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("cdk_")


def test_demo_logins_command_prints_a_valid_login_and_lifts_a_lockout(capsys):
    call_command("demo_logins")
    username, password = capsys.readouterr().out.splitlines()[0].removeprefix("admin login: ").split(" / ")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(Client(), username, "wrong-password")
    assert _login(Client(), username, password).status_code == 429

    call_command("demo_logins")
    username, password = capsys.readouterr().out.splitlines()[0].removeprefix("admin login: ").split(" / ")
    http = Client()
    assert _login(http, username, password).status_code == 302
    assert _logged_in(http)
