"""Strict readers for settings taken from environment variables.

Every reader raises :class:`ImproperlyConfigured` naming the variable when its value cannot be parsed,
so a typo stops start-up instead of silently falling back to a default. ``env_secret`` also reads
``<NAME>_FILE`` (a path to a file holding the value), for Docker/Kubernetes secrets.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _raw(name: str, environ: Mapping[str, str] | None) -> str | None:
    value = (environ if environ is not None else os.environ).get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def env_str(name: str, default: str | None = None, *, environ: Mapping[str, str] | None = None) -> str | None:
    value = _raw(name, environ)
    return default if value is None else value


def env_bool(name: str, default: bool, *, environ: Mapping[str, str] | None = None) -> bool:
    value = _raw(name, environ)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name}={value!r} is not a boolean: use one of {sorted(_TRUE)} or {sorted(_FALSE)}"
    )


def env_int(
    name: str,
    default: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    value = _raw(name, environ)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is below the minimum of {minimum}")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name}={number} is above the maximum of {maximum}")
    return number


def env_list(name: str, default: list[str], *, environ: Mapping[str, str] | None = None) -> list[str]:
    value = _raw(name, environ)
    if value is None:
        return list(default)
    items = [item.strip() for item in value.split(",")]
    if any(not item for item in items):
        raise ImproperlyConfigured(f"{name}={value!r} has an empty item: separate values with single commas")
    return items


def env_secret(
    name: str, default: str | None = None, *, environ: Mapping[str, str] | None = None
) -> str | None:
    """The value of ``NAME``, or the content of the file named by ``NAME_FILE``.

    Setting both is an error: which one wins would be a guess.
    """
    direct = _raw(name, environ)
    path = _raw(f"{name}_FILE", environ)
    if direct is not None and path is not None:
        raise ImproperlyConfigured(f"{name} and {name}_FILE are both set: set only one")
    if path is not None:
        try:
            with open(path, encoding="utf-8") as fh:
                content = fh.read().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={path!r} cannot be read: {exc.strerror}") from None
        if not content:
            raise ImproperlyConfigured(f"{name}_FILE={path!r} is empty")
        return content
    return default if direct is None else direct


def env_rate(name: str, default: str, *, environ: Mapping[str, str] | None = None) -> tuple[int, int]:
    """A rate like ``600/min`` as (requests, window in seconds)."""
    value = _raw(name, environ) or default
    windows = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}
    try:
        count_text, unit = value.split("/", 1)
        count = int(count_text)
        window = windows[unit.strip().lower()]
    except (ValueError, KeyError):
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a rate: write <requests>/<s|min|hour>, e.g. 600/min"
        ) from None
    if count < 1:
        raise ImproperlyConfigured(f"{name}={value!r}: the request count must be at least 1")
    return count, window
