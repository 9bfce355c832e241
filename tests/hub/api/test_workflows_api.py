"""``/api/v1/workflows/``: start (201, then 200 for the same business key), the step timeline, the
operator actions with a reason, problem details for bad requests, admin-only access."""

from __future__ import annotations

import pytest

from hub.workflows import definitions
from hub.workflows.definitions import Done, Flow, Step, Wait
from hub.workflows.services import workflow_advance
from tests.factories.canonical import CarrierFactory

pytestmark = pytest.mark.django_db(transaction=True)

FLOW = Flow(
    key="api_flow",
    version=1,
    steps=(Step("first", lambda ctx: Done({"ok": True})), Step("wait", lambda ctx: Wait("approval"))),
)


@pytest.fixture(autouse=True)
def flow():
    definitions.register(FLOW)
    yield
    definitions._FLOWS.pop(("api_flow", 1), None)


def test_start_then_the_same_business_key_returns_the_existing_run(make_caller):
    admin = make_caller("ops", admin=True)
    first = admin.http.post("/api/v1/workflows/", {"flow": "api_flow", "business_key": "SO-1"}, format="json")
    again = admin.http.post("/api/v1/workflows/", {"flow": "api_flow", "business_key": "SO-1"}, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert [step["name"] for step in first.json()["steps"]] == ["first", "wait"]
    assert first.json()["actions"][0]["actor"] == "api:ops"


def test_a_run_shows_its_steps_as_a_timeline_and_an_operator_cancels_it_with_a_reason(make_caller):
    admin = make_caller("ops", admin=True)
    run_id = admin.http.post(
        "/api/v1/workflows/", {"flow": "api_flow", "business_key": "SO-2"}, format="json"
    ).json()["id"]
    workflow_advance(run_id=run_id)
    detail = admin.http.get(f"/api/v1/workflows/{run_id}/").json()
    assert detail["status"] == "waiting"
    assert [(st["name"], st["status"], st["waiting_for"]) for st in detail["steps"]] == [
        ("first", "done", ""),
        ("wait", "waiting", "approval"),
    ]
    listed = admin.http.get("/api/v1/workflows/", {"status": "waiting", "flow": "api_flow"}).json()
    assert [row["id"] for row in listed["results"]] == [run_id]

    missing_reason = admin.http.post(f"/api/v1/workflows/{run_id}/cancel/", {}, format="json")
    assert missing_reason.status_code == 400
    assert missing_reason["Content-Type"].startswith("application/problem+json")
    cancelled = admin.http.post(
        f"/api/v1/workflows/{run_id}/cancel/", {"reason": "duplicate order"}, format="json"
    )
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    assert cancelled.json()["actions"][-1] == {
        **cancelled.json()["actions"][-1],
        "action": "cancel",
        "reason": "duplicate order",
    }
    conflict = admin.http.post(f"/api/v1/workflows/{run_id}/retry/", {"reason": "again"}, format="json")
    assert conflict.status_code == 409
    assert "only a failed step can be retried" in conflict.json()["detail"]


def test_an_unknown_flow_is_a_400_naming_the_known_ones(make_caller):
    admin = make_caller("ops", admin=True)
    response = admin.http.post("/api/v1/workflows/", {"flow": "nope", "business_key": "X"}, format="json")
    assert response.status_code == 400
    assert "unknown flow 'nope'; known:" in response.content.decode()


def test_only_admin_clients_see_workflows(make_caller, client):
    partner = make_caller("carrier", partner_code=CarrierFactory().scac)
    assert partner.http.get("/api/v1/workflows/").status_code == 403
    assert client.get("/api/v1/workflows/").status_code == 401
