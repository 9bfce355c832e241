"""`manage.py rotate_secrets`: re-encrypt every stored connection secret under the first key of
CROSSDOCK_ENCRYPTION_KEY. Run it after prepending a new key; then the old key can be removed."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from hub.connections.services import connection_secrets_rotate
from hub.core.crypto import SecretUnreadableError


class Command(BaseCommand):
    help = "Re-encrypt stored secrets under the primary CROSSDOCK_ENCRYPTION_KEY (idempotent)."

    def handle(self, *args, **options):
        try:
            count = connection_secrets_rotate()
        except SecretUnreadableError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"re-encrypted {count} secret(s) under the primary key")
