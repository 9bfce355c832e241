"""`manage.py demo_logins`: the local demo's admin login and admin API key, renewed on every run."""

from __future__ import annotations

from axes.utils import reset as axes_reset
from django.contrib.auth import get_user_model, password_validation
from django.core.management.base import BaseCommand

from hub.demo.logins import demo_logins_ensure


class Command(BaseCommand):
    help = (
        "Create (or renew) the demo admin login and admin API key; prints both. The password is "
        "generated, passes AUTH_PASSWORD_VALIDATORS, and any login lockout of the admin is lifted."
    )

    def handle(self, *args, **options):
        logins = demo_logins_ensure()
        user = get_user_model().objects.get(username=logins.username)
        # A generated password should always pass; if the rules ever tighten past it, say so here
        # rather than hand out a login the rules reject.
        password_validation.validate_password(logins.password, user=user)
        # Renewing the password is the demo's way back in: a lockout from earlier guesses ends too.
        axes_reset(username=logins.username)
        self.stdout.write(f"admin login: {logins.username} / {logins.password}")
        self.stdout.write(f"admin API key: {logins.api_key}")
