from django.apps import AppConfig


class ConnectionsConfig(AppConfig):
    name = "hub.connections"
    label = "connections"
    verbose_name = "Connections and API clients"

    def ready(self) -> None:
        from hub.connections import admin_pipeline  # noqa: F401  registers its admins
