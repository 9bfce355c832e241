"""API client lifecycle: create (key shown once), rotate, authenticate; connections and subscriptions."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone
from pydantic import AnyUrl
from pydantic import ValidationError as PydanticValidationError

from canonical.contracts.v1 import EventType
from canonical.models import Carrier, Customer
from connectors import registry, webhook
from hub.connections.models import ApiClient, Connection, Subscription
from hub.core import crypto
from hub.core.errors import ConflictError, NotFoundError, ValidationFailed
from hub.core.http import UrlPolicyError, url_policy_check

logger = logging.getLogger(__name__)

KEY_PREFIX = "cdk_"
# Updating last_used_at on every request would make every read a write; once a minute is enough.
LAST_USED_RESOLUTION = timedelta(seconds=60)
AUTH_CACHE_S = 5.0  # seconds a web process trusts a key it has looked up
AUTH_CACHE_MAX = 10_000  # keys remembered per process before the memo is emptied
CONNECTION_CACHE_S = 5.0  # seconds a web process trusts a connection it has looked up by slug

_auth_cache: dict[str, tuple[float, ApiClient]] = {}
_connection_cache: dict[str, tuple[float, Connection]] = {}


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedKey:
    client: ApiClient
    key: str  # the only time the plain key exists


def api_client_create(*, name: str, admin: bool = False, partner_code: str | None = None) -> IssuedKey:
    """Create an API client and return it with its key.

    ``partner_code`` is a carrier SCAC or a customer code; a SCAC wins when both exist.
    Raises ``NotFoundError`` for an unknown partner code, ``ConflictError`` for a taken name.
    """
    if admin == (partner_code is not None):
        raise ValueError("give exactly one of admin=True or partner_code")
    carrier = customer = None
    if partner_code is not None:
        carrier = Carrier.objects.filter(scac=partner_code).first()
        if carrier is None:
            customer = Customer.objects.filter(code=partner_code).first()
        if carrier is None and customer is None:
            raise NotFoundError(
                f"no carrier with SCAC {partner_code!r} and no customer with code {partner_code!r}"
            )
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    try:
        with transaction.atomic():
            client = ApiClient.objects.create(
                name=name,
                role=ApiClient.Role.ADMIN if admin else ApiClient.Role.PARTNER,
                carrier=carrier,
                customer=customer,
                key_prefix=key[:10],
                key_digest=_digest(key),
            )
    except IntegrityError:
        raise ConflictError(f"an API client named {name!r} already exists") from None
    return IssuedKey(client=client, key=key)


def api_client_rotate_key(*, client: ApiClient) -> str:
    """Replace the client's key; the old one stops working (within AUTH_CACHE_S). Returns the new key."""
    _auth_cache.clear()
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    ApiClient.objects.filter(pk=client.pk).update(key_prefix=key[:10], key_digest=_digest(key))
    return key


def api_client_deactivate(*, client_ids) -> int:
    """Deactivate clients (their keys stop working within AUTH_CACHE_S). Idempotent; returns how many."""
    _auth_cache.clear()
    return ApiClient.objects.filter(pk__in=list(client_ids), is_active=True).update(
        is_active=False, updated_at=timezone.now()
    )


def api_client_authenticate(*, key: str) -> ApiClient | None:
    """The active client holding ``key``, or None. Records the time of use (coarsely).

    Each web process remembers a successful lookup for AUTH_CACHE_S seconds, so a key revoked in
    another process stops working within that time (at once in the process that revoked it).
    """
    digest = _digest(key)
    now_m = time.monotonic()
    hit = _auth_cache.get(digest)
    if hit is not None and hit[0] > now_m:
        client = hit[1]
    else:
        client = (
            ApiClient.objects.select_related("carrier", "customer")
            .filter(key_digest=digest, is_active=True)
            .first()
        )
        if client is None:
            _auth_cache.pop(digest, None)
            return None
        if len(_auth_cache) > AUTH_CACHE_MAX:
            _auth_cache.clear()
        _auth_cache[digest] = (now_m + AUTH_CACHE_S, client)
    now = timezone.now()
    if client.last_used_at is None or now - client.last_used_at > LAST_USED_RESOLUTION:
        ApiClient.objects.filter(pk=client.pk).update(last_used_at=now)
        client.last_used_at = now
    return client


# --- Connections and subscriptions -----------------------------------------------------------------

_CONFIG_CACHE: dict[tuple[str, str], object] = {}


def _validate_config(*, connector_key: str, config: dict) -> object:
    try:
        spec = registry.get(connector_key)
    except registry.UnknownConnectorError as exc:
        raise ValidationFailed(str(exc), errors=[{"field": "connector", "message": str(exc)}]) from None
    try:
        parsed = spec.config_schema.model_validate(config or {})
    except PydanticValidationError as exc:
        errors = [
            {
                "field": "config." + ".".join(str(p) for p in err["loc"]) if err["loc"] else "config",
                "message": err["msg"],
            }
            for err in exc.errors()
        ]
        raise ValidationFailed(
            "; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors
        ) from None
    # Every URL in the config (``url``, x12's ``outbound_url``, ...) is checked against the
    # outbound URL policy now, and again on every connect (hub/core/http.py).
    for name in type(parsed).model_fields:
        url = getattr(parsed, name)
        if not isinstance(url, AnyUrl):
            continue
        try:
            url_policy_check(str(url))
        except UrlPolicyError as exc:
            raise ValidationFailed(
                exc.detail, errors=[{"field": f"config.{name}", "message": exc.detail}]
            ) from None
    return parsed


def drop_folder_refusal(path: str) -> str | None:
    """Why ``path`` may not be (or no longer be) a drop folder, or None when it may.

    It must be absolute and lie inside CROSSDOCK_DROP_ROOT once ``..`` and symbolic links are
    resolved, and no component below the root may be a symbolic link (a link could later be
    pointed anywhere). Reads the file system; the folder itself need not exist yet.
    """
    if not path.startswith("/"):
        return "must be an absolute path"
    root = Path(settings.CROSSDOCK_DROP_ROOT).resolve()
    lexical = Path(os.path.normpath(path))
    if not lexical.resolve().is_relative_to(root):
        return f"must be inside CROSSDOCK_DROP_ROOT ({root})"
    for component in (lexical, *lexical.parents):
        if (
            component.is_symlink()
            and component.resolve() != root
            and component.resolve().is_relative_to(root)
        ):
            return f"{component} is a symbolic link: use the real folder"
    return None


def _validate_transports(connection: Connection) -> None:
    spec = registry.get(connection.connector)
    errors = []
    if connection.drop_folder:
        refusal = drop_folder_refusal(connection.drop_folder)
        if refusal:
            errors.append({"field": "drop_folder", "message": refusal})
        if "parse" not in spec.capabilities:
            errors.append(
                {"field": "drop_folder", "message": f"connector {spec.key!r} cannot read inbound files"}
            )
    if connection.poll_interval_s is not None and "poll" not in spec.capabilities:
        errors.append({"field": "poll_interval_s", "message": f"connector {spec.key!r} cannot poll"})
    if errors:
        raise ValidationFailed("; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors)


def _validated_kinds(connection: Connection) -> list[str]:
    """The connection's document kinds, de-duplicated and sorted; each must be one its connector
    declares (a connection narrows its connector's kinds, never widens them). Empty: all of them."""
    spec = registry.get(connection.connector)
    kinds = connection.document_kinds if connection.document_kinds is not None else []
    if not isinstance(kinds, list) or not all(isinstance(kind, str) for kind in kinds):
        message = 'must be a list of canonical document kinds, e.g. ["milestone"]'
        raise ValidationFailed(
            f"document_kinds: {message}", errors=[{"field": "document_kinds", "message": message}]
        )
    wider = sorted(set(kinds) - spec.document_kinds)
    if wider:
        declared = ", ".join(sorted(spec.document_kinds)) or "none"
        message = (
            f"connector {spec.key!r} does not produce {', '.join(map(repr, wider))} documents "
            f"(it produces: {declared}); a connection may only narrow its connector's kinds"
        )
        raise ValidationFailed(
            f"document_kinds: {message}", errors=[{"field": "document_kinds", "message": message}]
        )
    return sorted(set(kinds))


def _move_credential_headers(connection: Connection, secret: str | None) -> str | None:
    """Webhook headers that carry credentials (Authorization, X-Api-Key, any name with token,
    secret, key, password, ...) go into the encrypted secret, never the plain config, which the API
    returns. Returns the secret to store (None: keep the stored one); see connectors/webhook."""
    config = connection.config
    if connection.connector != "webhook" or not isinstance(config, dict):
        return secret
    headers = config.get("headers")
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        return secret  # not a header map: the config validation below names the field
    stored = crypto.decrypt(connection.secret_encrypted) if connection.secret_encrypted else None
    new_secret, plain = webhook.secret_with_headers(stored=stored, given=secret, config_headers=headers)
    if plain != headers:
        connection.config = {**config, "headers": plain}
    return new_secret


def connection_save(
    *,
    instance: Connection | None = None,
    data: dict,
    secret: str | None = None,
) -> Connection:
    """Create or update a connection. The connector key and its config are validated (400 naming
    the field); an outbound URL is checked against the URL policy; ``document_kinds`` must narrow
    the connector's declared kinds; ``secret`` is encrypted at rest (``""`` clears it, ``None``
    keeps it); a webhook's credential headers are moved from the config into the encrypted secret."""
    connection = instance or Connection()
    for name, value in data.items():
        setattr(connection, name, value)
    secret = _move_credential_headers(connection, secret)
    _validate_config(connector_key=connection.connector, config=connection.config)
    _validate_transports(connection)
    connection.document_kinds = _validated_kinds(connection)
    if secret is not None:
        connection.secret_encrypted = crypto.encrypt(secret) if secret else ""
    try:
        with transaction.atomic():
            connection.save()
    except IntegrityError:
        raise ConflictError(f"a connection with slug {connection.slug!r} already exists") from None
    _connection_cache.clear()
    return connection


def connection_active_get(*, slug: str) -> Connection | None:
    """The active connection with this slug (remembered CONNECTION_CACHE_S seconds per process)."""
    now_m = time.monotonic()
    hit = _connection_cache.get(slug)
    if hit is not None and hit[0] > now_m:
        return hit[1]
    connection = Connection.objects.filter(slug=slug, is_active=True).first()
    if connection is None:
        _connection_cache.pop(slug, None)
        return None
    if len(_connection_cache) > AUTH_CACHE_MAX:
        _connection_cache.clear()
    _connection_cache[slug] = (now_m + CONNECTION_CACHE_S, connection)
    return connection


def connection_config(connection: Connection):
    """The connection's config parsed by its connector's schema (cached per config version)."""
    cache_key = (str(connection.pk), connection.updated_at.isoformat() if connection.updated_at else "")
    parsed = _CONFIG_CACHE.get(cache_key)
    if parsed is None:
        parsed = _validate_config(connector_key=connection.connector, config=connection.config)
        if len(_CONFIG_CACHE) > 1000:
            _CONFIG_CACHE.clear()
        _CONFIG_CACHE[cache_key] = parsed
    return parsed


def connection_secret(connection: Connection) -> str | None:
    return crypto.decrypt(connection.secret_encrypted) if connection.secret_encrypted else None


def signature_nonce_claim(*, connection: Connection, nonce: str, ttl_s: int) -> str | None:
    """Record a verified inbound signature as used, for ``ttl_s`` seconds (until its timestamp leaves
    the tolerance window). Returns the key to pass to ``signature_nonce_release``, or None when the
    signature was already used: a replay, to be refused.

    One ``SET NX EX`` in Redis, so two web processes receiving the same request race on one key and
    exactly one wins. If the cache is unreachable the request is let through (availability first,
    as for rate limits) and a warning logged: the idempotency key still stores it once.
    """
    key = f"signature-nonce:{connection.pk}:{hashlib.sha256(nonce.encode()).hexdigest()}"
    try:
        added = cache.add(key, 1, timeout=ttl_s)
    except Exception as exc:  # the cache being down must not make inbound calls fail
        logger.warning("signature nonce not recorded (cache unavailable): %s", exc)
        return key
    return key if added else None


def signature_nonce_release(*, key: str) -> None:
    """Forget a claimed nonce: the request it authenticated was not stored, so the sender's retry
    of the very same request must not be taken for a replay. Idempotent."""
    try:
        cache.delete(key)
    except Exception as exc:
        logger.warning("signature nonce not released (cache unavailable): %s", exc)


def connection_secrets_rotate() -> int:
    """Re-encrypt every stored secret under the primary key. Idempotent; returns rows rewritten."""
    count = 0
    with transaction.atomic():
        for connection in Connection.objects.select_for_update().exclude(secret_encrypted=""):
            Connection.objects.filter(pk=connection.pk).update(
                secret_encrypted=crypto.rotate(connection.secret_encrypted)
            )
            count += 1
    return count


def subscription_save(*, instance: Subscription | None = None, data: dict) -> Subscription:
    """Create or update a subscription; event types must be canonical ones (empty = all)."""
    subscription = instance or Subscription()
    for name, value in data.items():
        setattr(subscription, name, value)
    unknown = [t for t in subscription.event_types or [] if t not in EventType.__members__]
    if unknown:
        message = f"unknown event types {unknown}; use canonical types such as DELIVERED"
        raise ValidationFailed(message, errors=[{"field": "event_types", "message": message}])
    if subscription.connection_id is not None:
        spec_key = (
            Connection.objects.filter(pk=subscription.connection_id)
            .values_list("connector", flat=True)
            .first()
        )
        spec = registry.get(spec_key) if spec_key else None
        if spec is not None and "render" not in spec.capabilities and spec.connector.event_operation is None:
            message = (
                f"connection uses connector {spec_key!r}, which cannot deliver events (no render capability)"
            )
            raise ValidationFailed(message, errors=[{"field": "connection", "message": message}])
    subscription.save()
    return subscription
