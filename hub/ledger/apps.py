from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "hub.ledger"
    label = "ledger"
    verbose_name = "Side-effect ledger"
