"""Workflow runs in the admin: the step timeline and an operator action that asks for a reason."""

from __future__ import annotations

import pytest
from django.urls import reverse

from hub.workflows import definitions
from hub.workflows.definitions import Done, Flow, Step, Wait
from hub.workflows.models import WorkflowRun
from hub.workflows.services import workflow_advance, workflow_start

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def flow():
    definitions.register(
        Flow(
            key="admin_flow",
            version=1,
            steps=(Step("book", lambda c: Done({"id": "B1"})), Step("pod", lambda c: Wait("POD for S-1"))),
        )
    )
    yield
    definitions._FLOWS.pop(("admin_flow", 1), None)


def test_the_run_page_shows_its_steps_and_a_cancel_asks_why(admin_client):
    run, _ = workflow_start(flow="admin_flow", business_key="S-1", inputs={})
    workflow_advance(run_id=run.pk)
    page = admin_client.get(reverse("admin:workflows_workflowrun_change", args=[run.pk])).content.decode()
    assert "POD for S-1" in page and "book" in page and "waiting" in page

    changelist = reverse("admin:workflows_workflowrun_changelist")
    ask = admin_client.post(changelist, {"action": "cancel", "_selected_action": [str(run.pk)]})
    assert ask.status_code == 200 and "Kept in the run" in ask.content.decode()
    assert WorkflowRun.objects.get(pk=run.pk).status == "waiting"
    done = admin_client.post(
        changelist,
        {
            "action": "cancel",
            "_selected_action": [str(run.pk)],
            "confirm": "yes",
            "reason": "customer cancelled",
        },
    )
    assert done.status_code == 302
    run.refresh_from_db()
    assert run.status == "cancelled"
    assert run.actions.get(action="cancel").reason == "customer cancelled"
