"""Production settings: DEBUG is refused on a real database, HTTPS hardening behind one flag, the
trusted proxy count, login lockout and password rules. Each case starts the real settings module in a
fresh interpreter with its own environment (``django.setup()``), as a server would."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.support.settings_process import settings_run

PRINT_SETTINGS = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps({
    "DEBUG": s.DEBUG,
    "SECURE_HSTS_SECONDS": s.SECURE_HSTS_SECONDS,
    "SECURE_SSL_REDIRECT": s.SECURE_SSL_REDIRECT,
    "SECURE_PROXY_SSL_HEADER": s.SECURE_PROXY_SSL_HEADER,
    "SESSION_COOKIE_SECURE": s.SESSION_COOKIE_SECURE,
    "CSRF_COOKIE_SECURE": s.CSRF_COOKIE_SECURE,
    "SECURE_REDIRECT_EXEMPT": s.SECURE_REDIRECT_EXEMPT,
    "NUM_PROXIES": s.REST_FRAMEWORK.get("NUM_PROXIES"),
    "AXES_FAILURE_LIMIT": s.AXES_FAILURE_LIMIT,
    "AXES_COOLOFF_TIME": s.AXES_COOLOFF_TIME.total_seconds(),
    "AXES_LOCKOUT_PARAMETERS": s.AXES_LOCKOUT_PARAMETERS,
    "AUTH_PASSWORD_VALIDATORS": [v["NAME"] for v in s.AUTH_PASSWORD_VALIDATORS],
}))
"""
POSTGRES = "postgres://postgres@127.0.0.1:5432/settings_check"


def _run(code: str, **overrides: str | None) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter: the test environment plus ``overrides`` (None unsets)."""
    return settings_run(
        code,
        unset=("DEBUG", "CROSSDOCK_ALLOW_DEBUG_WITH_DATABASE"),
        unset_prefixes=("CROSSDOCK_HTTPS", "CROSSDOCK_HSTS", "CROSSDOCK_NUM_PROXIES", "CROSSDOCK_LOGIN"),
        **overrides,
    )


def _settings(**overrides: str | None) -> dict:
    result = _run(PRINT_SETTINGS, **overrides)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_debug_on_a_database_server_is_refused_with_a_clear_message():
    result = _run("import django; django.setup()", DEBUG="1", DATABASE_URL=POSTGRES)
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured: DEBUG=1"), result.stderr
    assert "CROSSDOCK_ALLOW_DEBUG_WITH_DATABASE=1" in last_line


def test_debug_on_a_database_server_starts_with_the_explicit_override():
    values = _settings(DEBUG="1", DATABASE_URL=POSTGRES, CROSSDOCK_ALLOW_DEBUG_WITH_DATABASE="1")
    assert values["DEBUG"] is True


def test_debug_on_the_embedded_default_is_allowed(tmp_path):
    values = _settings(
        DEBUG="1",
        DATABASE_URL=None,
        CELERY_BROKER_URL=None,
        CROSSDOCK_REDIS_URL=None,
        CROSSDOCK_VAR_DIR=str(tmp_path),
    )
    assert values["DEBUG"] is True


def test_production_defaults_are_no_debug_and_no_https_redirect():
    values = _settings()
    assert values["DEBUG"] is False
    assert values["SECURE_SSL_REDIRECT"] is False
    assert values["SECURE_HSTS_SECONDS"] == 0
    assert values["NUM_PROXIES"] == 0


def test_https_flag_turns_on_hsts_secure_cookies_redirect_and_the_proxy_header():
    values = _settings(CROSSDOCK_HTTPS="1")
    assert values["SECURE_HSTS_SECONDS"] == 31_536_000
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SESSION_COOKIE_SECURE"] is True
    assert values["CSRF_COOKIE_SECURE"] is True
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    # Load balancers probe /health/ over plain HTTP: it answers rather than redirecting.
    assert values["SECURE_REDIRECT_EXEMPT"] == [r"^health/$"]


def test_hsts_seconds_can_be_shortened_while_trying_https_out():
    assert _settings(CROSSDOCK_HTTPS="1", CROSSDOCK_HSTS_SECONDS="300")["SECURE_HSTS_SECONDS"] == 300


def test_num_proxies_comes_from_the_environment():
    assert _settings(CROSSDOCK_NUM_PROXIES="1")["NUM_PROXIES"] == 1


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"CROSSDOCK_HTTPS": "maybe"}, "CROSSDOCK_HTTPS"),
        ({"CROSSDOCK_NUM_PROXIES": "-1"}, "CROSSDOCK_NUM_PROXIES"),
        ({"CROSSDOCK_LOGIN_FAILURE_LIMIT": "0"}, "CROSSDOCK_LOGIN_FAILURE_LIMIT"),
        ({"CROSSDOCK_ALLOW_DEBUG_WITH_DATABASE": "perhaps"}, "CROSSDOCK_ALLOW_DEBUG_WITH_DATABASE"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_bad_security_setting_fails_start_up_naming_the_variable(overrides, variable):
    result = _run("import django; django.setup()", **overrides)
    assert result.returncode != 0
    assert variable in result.stderr.strip().splitlines()[-1], result.stderr


def test_login_lockout_is_per_user_and_address_with_a_cool_off():
    values = _settings(CROSSDOCK_LOGIN_FAILURE_LIMIT="7", CROSSDOCK_LOGIN_COOLOFF_MINUTES="30")
    assert values["AXES_FAILURE_LIMIT"] == 7
    assert values["AXES_COOLOFF_TIME"] == 30 * 60
    assert values["AXES_LOCKOUT_PARAMETERS"] == [["username", "ip_address"]]


def test_the_four_standard_password_validators_are_on():
    assert _settings()["AUTH_PASSWORD_VALIDATORS"] == [
        "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
        "django.contrib.auth.password_validation.MinimumLengthValidator",
        "django.contrib.auth.password_validation.CommonPasswordValidator",
        "django.contrib.auth.password_validation.NumericPasswordValidator",
    ]
