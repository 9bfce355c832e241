"""``manage.py reconcile [--check NAME] [--dry-run]``: run checks now, in this process, with progress."""

from __future__ import annotations

import sys
import threading
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from canonical.errors import DomainError
from reconciliation import checks, services
from reconciliation.models import ReconciliationRun

POLL_S = 0.5  # seconds between progress updates
BAR = 30  # characters of the progress bar


class Command(BaseCommand):
    help = "Run reconciliation checks now (all, or one) and print what they found."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--check", help="One check by name (default: every registered check).")
        parser.add_argument(
            "--dry-run", action="store_true", help="Find and report; record and repair nothing."
        )

    def handle(self, *args, check: str | None = None, dry_run: bool = False, **options) -> None:
        names = [check] if check else [c.name for c in checks.all_checks()]
        failed = 0
        for name in names:
            try:
                run = services.run_start(check=name, dry_run=dry_run, actor="cli:reconcile")
            except DomainError as exc:
                raise CommandError(exc.detail) from None
            done = threading.Event()
            # Executed here; if a worker took the queued run first, this just follows its progress.
            worker = threading.Thread(target=self._execute, args=(run.pk, done), daemon=True)
            worker.start()
            while not done.wait(POLL_S):
                run.refresh_from_db()
                if run.status not in (ReconciliationRun.Status.QUEUED, ReconciliationRun.Status.RUNNING):
                    break
                self._progress(run)
            worker.join(timeout=5)
            run.refresh_from_db()
            while run.status in (ReconciliationRun.Status.QUEUED, ReconciliationRun.Status.RUNNING):
                time.sleep(POLL_S)  # a worker holds it: wait for its end
                run.refresh_from_db()
                self._progress(run)
            self._progress(run, final=True)
            failed += run.status == ReconciliationRun.Status.FAILED
        if failed:
            raise CommandError(f"{failed} check(s) failed; see the runs' errors")

    @staticmethod
    def _execute(run_id, done: threading.Event) -> None:
        try:
            services.run_execute(run_id=run_id)
        finally:
            connections.close_all()
            done.set()

    def _progress(self, run: ReconciliationRun, *, final: bool = False) -> None:
        total = run.total or 0
        if final:
            filled = BAR
        elif total:
            filled = min(BAR, BAR * run.examined // total)
        else:  # the check cannot say how many keys it will examine: a moving marker
            filled = run.examined % BAR
        bar = "#" * filled + "." * (BAR - filled)
        of = f"/{total}" if total else ""
        line = (
            f"{run.check_name:<20} [{bar}] examined {run.examined}{of}, ok {run.ok},"
            f" disagree {run.new + run.still_open} (new {run.new}), closed {run.closed}, repaired {run.repaired}"
        )
        if final:
            status = f"{run.status}{' (dry run)' if run.dry_run else ''}"
            self.stdout.write(f"\r{line} - {status}" + (f": {run.error}" if run.error else ""))
        elif sys.stdout.isatty():
            self.stdout.write(f"\r{line}", ending="")
