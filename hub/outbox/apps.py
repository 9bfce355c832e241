from django.apps import AppConfig


class OutboxConfig(AppConfig):
    name = "hub.outbox"
    label = "outbox"
