from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "hub.workflows"
    label = "workflows"
    verbose_name = "Workflows"

    def ready(self) -> None:
        from hub.core import work
        from hub.workflows import (
            flows,  # noqa: F401  registers the flow definitions
            services,
            triggers,
        )

        work.register(
            work.WorkQueue(
                name=services.WORKFLOWS,
                task="hub.workflows.advance",
                claim=services.workflow_advance,
                due=services.workflows_due,
            )
        )
        work.hook_register("workflows_started", triggers.workflow_triggers_started)
