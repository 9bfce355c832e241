"""Hub-wide services: the beat schedule."""

from __future__ import annotations

import json

from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from hub.core.schedule import PERIODIC_TASKS


def periodic_tasks_sync() -> tuple[int, int, int]:
    """Upsert every PeriodicTask in PERIODIC_TASKS and disable ones we no longer define. Entries ops
    own (``operator_edits``) are created when missing and otherwise left as edited.

    Idempotent. Returns (created, updated, disabled).
    """
    created = updated = disabled = 0
    with transaction.atomic():
        for name, entry in PERIODIC_TASKS.items():
            # first(), not get_or_create: ops may have made a second schedule of the same interval.
            interval = IntervalSchedule.objects.filter(
                every=entry.every_s, period=IntervalSchedule.SECONDS
            ).order_by("pk").first() or IntervalSchedule.objects.create(
                every=entry.every_s, period=IntervalSchedule.SECONDS
            )
            defaults = {
                "task": entry.task,
                "interval": interval,
                "queue": entry.queue.value,
                "args": json.dumps(entry.args),
                "enabled": True,
            }
            if entry.operator_edits:
                _, was_created = PeriodicTask.objects.get_or_create(
                    name=f"crossdock:{name}", defaults=defaults
                )
            else:
                _, was_created = PeriodicTask.objects.update_or_create(
                    name=f"crossdock:{name}", defaults=defaults
                )
            created += was_created
            updated += not was_created
        stale = PeriodicTask.objects.filter(name__startswith="crossdock:", enabled=True).exclude(
            name__in=[f"crossdock:{name}" for name in PERIODIC_TASKS]
        )
        disabled = stale.update(enabled=False)
    return created, updated, disabled
