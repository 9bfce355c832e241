"""Secrets at rest: Fernet tokens under CROSSDOCK_ENCRYPTION_KEY (MultiFernet, so keys rotate).

Rotation: prepend a new key to CROSSDOCK_ENCRYPTION_KEY (new first, old after), deploy, run
`manage.py rotate_secrets` to re-encrypt every stored secret under the new key, then drop the old key.
"""

from __future__ import annotations

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class SecretUnreadableError(Exception):
    """A stored secret was encrypted with a key no longer configured."""


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.CROSSDOCK_ENCRYPTION_KEYS))


def encrypt(plain: str) -> str:
    return fernet().encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadableError(
            "a stored secret cannot be decrypted with any CROSSDOCK_ENCRYPTION_KEY; was a key removed too early?"
        ) from None


def rotate(token: str) -> str:
    """Re-encrypt ``token`` under the primary (first) key."""
    try:
        return fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadableError("a stored secret cannot be decrypted with any configured key") from None
