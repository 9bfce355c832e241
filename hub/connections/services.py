"""API client lifecycle: create (key shown once), rotate, authenticate."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from canonical.models import Carrier, Customer
from hub.connections.models import ApiClient
from hub.core.errors import ConflictError, NotFoundError

KEY_PREFIX = "cdk_"
# Updating last_used_at on every request would make every read a write; once a minute is enough.
LAST_USED_RESOLUTION = timedelta(seconds=60)


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
    """Replace the client's key; the old one stops working at once. Returns the new key."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    ApiClient.objects.filter(pk=client.pk).update(key_prefix=key[:10], key_digest=_digest(key))
    return key


def api_client_authenticate(*, key: str) -> ApiClient | None:
    """The active client holding ``key``, or None. Records the time of use (coarsely)."""
    client = (
        ApiClient.objects.select_related("carrier", "customer")
        .filter(key_digest=_digest(key), is_active=True)
        .first()
    )
    if client is None:
        return None
    now = timezone.now()
    if client.last_used_at is None or now - client.last_used_at > LAST_USED_RESOLUTION:
        ApiClient.objects.filter(pk=client.pk).update(last_used_at=now)
        client.last_used_at = now
    return client
