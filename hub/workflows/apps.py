from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "hub.workflows"
    label = "workflows"
    verbose_name = "Workflows"

    def ready(self) -> None:
        from hub.workflows import flows  # noqa: F401  registers the flow definitions
