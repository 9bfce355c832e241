from django.core.management.base import BaseCommand

from hub.core.services import demo_logins_ensure


class Command(BaseCommand):
    help = "Create (or renew) the demo admin login and admin API key; prints both."

    def handle(self, *args, **options):
        logins = demo_logins_ensure()
        self.stdout.write(f"admin login: {logins.username} / {logins.password}")
        self.stdout.write(f"admin API key: {logins.api_key}")
