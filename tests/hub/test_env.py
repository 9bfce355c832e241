"""Settings from environment variables: a bad value stops start-up with a message naming the variable."""

from __future__ import annotations

import subprocess

import pytest
from django.core.exceptions import ImproperlyConfigured

from hub.core.env import env_bool, env_int, env_list, env_rate, env_secret, env_str
from tests.support.settings_process import settings_run

# --- env_bool ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"), [("1", True), ("TRUE", True), (" on ", True), ("0", False), ("no", False)]
)
def test_env_bool_reads_true_and_false_spellings(raw, expected):
    assert env_bool("FLAG", not expected, environ={"FLAG": raw}) is expected


def test_env_bool_unset_or_blank_is_the_default():
    assert env_bool("FLAG", True, environ={}) is True
    assert env_bool("FLAG", False, environ={"FLAG": "  "}) is False


def test_env_bool_rejects_maybe_naming_the_variable():
    with pytest.raises(ImproperlyConfigured, match=r"^FEATURE_X='maybe' is not a boolean"):
        env_bool("FEATURE_X", False, environ={"FEATURE_X": "maybe"})


# --- env_int ----------------------------------------------------------------------------------------


def test_env_int_reads_a_number_and_defaults_when_unset():
    assert env_int("WORKERS", 4, environ={"WORKERS": "12"}) == 12
    assert env_int("WORKERS", 4, environ={}) == 4


def test_env_int_rejects_abc_naming_the_variable():
    with pytest.raises(ImproperlyConfigured, match=r"^WORKERS='abc' is not an integer"):
        env_int("WORKERS", 4, environ={"WORKERS": "abc"})


def test_env_int_rejects_values_below_the_minimum():
    with pytest.raises(ImproperlyConfigured, match=r"^PAGE_SIZE=0 is below the minimum of 1"):
        env_int("PAGE_SIZE", 50, minimum=1, maximum=1000, environ={"PAGE_SIZE": "0"})


def test_env_int_rejects_values_above_the_maximum():
    with pytest.raises(ImproperlyConfigured, match=r"^PAGE_SIZE=1001 is above the maximum of 1000"):
        env_int("PAGE_SIZE", 50, minimum=1, maximum=1000, environ={"PAGE_SIZE": "1001"})


def test_env_int_accepts_the_bounds_themselves():
    assert env_int("N", 5, minimum=1, maximum=10, environ={"N": "1"}) == 1
    assert env_int("N", 5, minimum=1, maximum=10, environ={"N": "10"}) == 10


# --- env_list ---------------------------------------------------------------------------------------


def test_env_list_splits_on_commas_and_strips_items():
    assert env_list("HOSTS", [], environ={"HOSTS": "a.example, b.example"}) == ["a.example", "b.example"]


def test_env_list_unset_returns_a_copy_of_the_default():
    default = ["localhost"]
    result = env_list("HOSTS", default, environ={})
    assert result == default
    assert result is not default


@pytest.mark.parametrize("raw", ["a,,b", "a,", ",a", "a, ,b"])
def test_env_list_rejects_empty_items_naming_the_variable(raw):
    with pytest.raises(ImproperlyConfigured, match=r"^HOSTS=.* has an empty item"):
        env_list("HOSTS", [], environ={"HOSTS": raw})


# --- env_secret -------------------------------------------------------------------------------------


def test_env_secret_reads_the_variable_directly():
    assert env_secret("API_TOKEN", environ={"API_TOKEN": "s3cret"}) == "s3cret"
    assert env_secret("API_TOKEN", "fallback", environ={}) == "fallback"


def test_env_secret_reads_name_file_and_strips_the_trailing_newline(tmp_path):
    secret_file = tmp_path / "token"
    secret_file.write_text("from-a-file\n")
    assert env_secret("API_TOKEN", environ={"API_TOKEN_FILE": str(secret_file)}) == "from-a-file"


def test_env_secret_refuses_both_name_and_name_file(tmp_path):
    secret_file = tmp_path / "token"
    secret_file.write_text("from-a-file")
    with pytest.raises(ImproperlyConfigured, match=r"API_TOKEN and API_TOKEN_FILE are both set"):
        env_secret("API_TOKEN", environ={"API_TOKEN": "direct", "API_TOKEN_FILE": str(secret_file)})


def test_env_secret_missing_file_names_the_file_variable(tmp_path):
    missing = tmp_path / "absent"
    with pytest.raises(ImproperlyConfigured, match=r"^API_TOKEN_FILE=.*absent.* cannot be read"):
        env_secret("API_TOKEN", environ={"API_TOKEN_FILE": str(missing)})


def test_env_secret_empty_file_is_an_error(tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ImproperlyConfigured, match=r"^API_TOKEN_FILE=.* is empty"):
        env_secret("API_TOKEN", environ={"API_TOKEN_FILE": str(empty)})


# --- env_rate and env_str ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"), [("600/min", (600, 60)), ("10/s", (10, 1)), ("5000/hour", (5000, 3600))]
)
def test_env_rate_parses_requests_per_window(raw, expected):
    assert env_rate("API_RATE", "1/min", environ={"API_RATE": raw}) == expected


def test_env_rate_unset_uses_the_default():
    assert env_rate("API_RATE", "1200/min", environ={}) == (1200, 60)


@pytest.mark.parametrize("raw", ["fast", "600", "600/fortnight", "x/min", "0/min"])
def test_env_rate_rejects_what_is_not_a_rate_naming_the_variable(raw):
    with pytest.raises(ImproperlyConfigured, match=r"^API_RATE="):
        env_rate("API_RATE", "1/min", environ={"API_RATE": raw})


def test_env_str_treats_blank_as_unset():
    assert env_str("NAME", "default", environ={"NAME": "   "}) == "default"
    assert env_str("NAME", "default", environ={"NAME": " value "}) == "value"


# --- Start-up with a bad environment ----------------------------------------------------------------


def _start(**overrides: str | None) -> subprocess.CompletedProcess:
    """`django.setup()` in a fresh interpreter with the test environment plus ``overrides`` (None unsets)."""
    return settings_run(
        unset=(
            "SECRET_KEY_FILE",
            "DATABASE_URL_FILE",
            "CELERY_BROKER_URL_FILE",
            "CROSSDOCK_ENCRYPTION_KEY_FILE",
        ),
        **overrides,
    )


def test_start_up_succeeds_with_the_test_environment():
    result = _start()
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"DEBUG": "maybe"}, "DEBUG"),
        ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL"),
        ({"CELERY_BROKER_URL": "ftp://x"}, "CELERY_BROKER_URL"),
        ({"CROSSDOCK_ENCRYPTION_KEY": "notakey"}, "CROSSDOCK_ENCRYPTION_KEY"),
        ({"SECRET_KEY": None, "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/x"}, "SECRET_KEY"),
        ({"SECRET_KEY": "too-short"}, "SECRET_KEY"),
        ({"CROSSDOCK_API_RATE": "fast"}, "CROSSDOCK_API_RATE"),
        ({"CROSSDOCK_PAGE_SIZE": "0"}, "CROSSDOCK_PAGE_SIZE"),
        ({"ALLOWED_HOSTS": "a,,b"}, "ALLOWED_HOSTS"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_bad_environment_fails_start_up_naming_the_variable(overrides, variable):
    result = _start(**overrides)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    last_line = result.stderr.strip().splitlines()[-1]
    assert variable in last_line, result.stderr
