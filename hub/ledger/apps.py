from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "hub.ledger"
    label = "ledger"
    verbose_name = "Side-effect ledger"

    def ready(self) -> None:
        from hub.core import work
        from hub.ledger import services

        work.register(
            work.WorkQueue(
                name=services.WRITES,
                task="hub.ledger.retry",
                claim=services.side_effect_retry,
                due=services.side_effects_due,
            )
        )
