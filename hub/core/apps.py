from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "hub.core"
    label = "hub_core"
    verbose_name = "Hub core"
