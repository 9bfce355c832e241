"""`manage.py create_api_client NAME [--admin | --partner CODE]`: the key is the last line printed."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from hub.connections.services import api_client_create
from hub.core.errors import DomainError


class Command(BaseCommand):
    help = "Create an API client and print its key (shown once) as the last line."

    def add_arguments(self, parser):
        parser.add_argument("name")
        role = parser.add_mutually_exclusive_group(required=True)
        role.add_argument("--admin", action="store_true", help="may read and write every record")
        role.add_argument(
            "--partner", metavar="CODE", help="carrier SCAC or customer code the client is bound to"
        )

    def handle(self, *args, name: str, admin: bool, partner: str | None, **options):
        try:
            issued = api_client_create(name=name, admin=admin, partner_code=partner)
        except DomainError as exc:
            raise CommandError(exc.detail) from None
        client = issued.client
        bound = client.carrier or client.customer
        scope = f"partner of {bound}" if bound else "admin"
        self.stdout.write(
            f"Created API client {client.name!r} ({scope}). Store the key now; it is not shown again:"
        )
        self.stdout.write(issued.key)
