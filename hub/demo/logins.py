"""The local demo's logins: a staff login and an admin API key (``manage.py demo_logins``)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction

from hub.connections.models import ApiClient
from hub.connections.services import api_client_create, api_client_rotate_key


@dataclass(frozen=True)
class DemoLogins:
    username: str
    password: str
    api_key: str


def demo_logins_ensure(*, username: str = "admin", client_name: str = "demo-admin") -> DemoLogins:
    """A staff login and an admin API key for the local demo; both renewed on every run."""
    password = secrets.token_urlsafe(12)
    user_model = get_user_model()
    with transaction.atomic():
        user, _ = user_model.objects.get_or_create(
            username=username, defaults={"is_staff": True, "is_superuser": True}
        )
        user.is_staff = user.is_superuser = user.is_active = True
        user.set_password(password)
        user.save()
        client = ApiClient.objects.filter(name=client_name).first()
        key = (
            api_client_rotate_key(client=client)
            if client
            else api_client_create(name=client_name, admin=True).key
        )
    return DemoLogins(username=username, password=password, api_key=key)
