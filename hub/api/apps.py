from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "hub.api"
    label = "hub_api"
    verbose_name = "API"

    def ready(self) -> None:
        from hub.api.v1 import schema  # noqa: F401  (registers the OpenAPI extensions)
