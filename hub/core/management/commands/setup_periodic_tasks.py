from django.core.management.base import BaseCommand

from hub.core.services import periodic_tasks_sync


class Command(BaseCommand):
    help = "Create or update Crossdock's periodic tasks in django-celery-beat (idempotent)."

    def handle(self, *args, **options):
        created, updated, disabled = periodic_tasks_sync()
        self.stdout.write(f"periodic tasks: {created} created, {updated} updated, {disabled} disabled")
