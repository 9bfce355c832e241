from django.apps import AppConfig


class ReconciliationConfig(AppConfig):
    name = "reconciliation"
    verbose_name = "Reconciliation"

    def ready(self) -> None:
        from hub.core import work
        from hub.core.queues import Queue
        from hub.core.schedule import Periodic, periodic_register
        from reconciliation import checks, services

        work.register(
            work.WorkQueue(
                name=services.RUNS,
                task="reconciliation.run",
                claim=services.run_execute,
                due=services.reconciliation_runs_due,
            )
        )
        for check in checks.all_checks():
            periodic_register(
                f"reconcile:{check.name}",
                Periodic(
                    task="reconciliation.scheduled",
                    every_s=check.every_s,
                    queue=Queue.RECONCILIATION,
                    args=[check.name],
                    operator_edits=True,
                ),
            )
