from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "hub.ops"
    label = "ops"
    verbose_name = "Operations console"
