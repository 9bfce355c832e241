"""Move credential headers (Authorization, X-Api-Key, ...) out of webhook connections' plain
``config.headers`` into their encrypted secret, as connection_save now does on every save.

The rule and the secret's JSON form are copied here as they are today (connectors/webhook), so this
migration keeps meaning what it meant when it ran. Not reversible into plain text on purpose: going
back leaves the headers in the secret, where the previous code ignores them (it would then sign with
the JSON text, so re-enter the headers in config after a rollback).
"""

from __future__ import annotations

import json

from django.db import migrations

CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
CREDENTIAL_WORDS = (
    "token",
    "secret",
    "key",
    "password",
    "passwd",
    "auth",
    "credential",
    "session",
    "signature",
)


def _is_credential(name: str) -> bool:
    lowered = name.strip().lower()
    return lowered in CREDENTIAL_HEADERS or any(word in lowered for word in CREDENTIAL_WORDS)


def _read(secret: str | None) -> tuple[str | None, dict[str, str]]:
    if not secret:
        return None, {}
    if secret.lstrip().startswith("{"):
        try:
            data = json.loads(secret)
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("headers"), dict):
            signing = data.get("signing_secret")
            return (signing if isinstance(signing, str) and signing else None), dict(data["headers"])
    return secret, {}


def move_credential_headers(apps, schema_editor):
    from hub.core import crypto  # the live key ring: secrets are encrypted with today's keys

    Connection = apps.get_model("connections", "Connection")
    for connection in Connection.objects.filter(connector="webhook").iterator():
        config = connection.config if isinstance(connection.config, dict) else {}
        headers = config.get("headers")
        if not isinstance(headers, dict):
            continue
        moved = {k: v for k, v in headers.items() if isinstance(k, str) and _is_credential(k)}
        if not moved:
            continue
        stored = crypto.decrypt(connection.secret_encrypted) if connection.secret_encrypted else None
        signing, secret_headers = _read(stored)
        secret_headers.update({k: str(v) for k, v in moved.items() if v})
        connection.config = {**config, "headers": {k: v for k, v in headers.items() if k not in moved}}
        connection.secret_encrypted = crypto.encrypt(
            json.dumps({"signing_secret": signing, "headers": secret_headers}, sort_keys=True)
        )
        connection.save(update_fields=["config", "secret_encrypted"])


class Migration(migrations.Migration):
    dependencies = [
        ("connections", "0005_connection_document_kinds"),
    ]

    operations = [
        migrations.RunPython(move_credential_headers, migrations.RunPython.noop, elidable=False),
    ]
