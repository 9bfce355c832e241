"""Hub-wide services: the beat schedule and the demo bootstrap."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from hub.connections.models import ApiClient
from hub.connections.services import api_client_create, api_client_rotate_key
from hub.core.schedule import PERIODIC_TASKS


def periodic_tasks_sync() -> tuple[int, int, int]:
    """Upsert every PeriodicTask in PERIODIC_TASKS and disable ones we no longer define.

    Idempotent. Returns (created, updated, disabled).
    """
    created = updated = disabled = 0
    with transaction.atomic():
        for name, entry in PERIODIC_TASKS.items():
            interval, _ = IntervalSchedule.objects.get_or_create(
                every=entry.every_s, period=IntervalSchedule.SECONDS
            )
            _, was_created = PeriodicTask.objects.update_or_create(
                name=f"crossdock:{name}",
                defaults={
                    "task": entry.task,
                    "interval": interval,
                    "queue": entry.queue.value,
                    "args": json.dumps(entry.args),
                    "enabled": True,
                },
            )
            created += was_created
            updated += not was_created
        stale = PeriodicTask.objects.filter(name__startswith="crossdock:", enabled=True).exclude(
            name__in=[f"crossdock:{name}" for name in PERIODIC_TASKS]
        )
        disabled = stale.update(enabled=False)
    return created, updated, disabled


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
