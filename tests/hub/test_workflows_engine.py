"""The workflow engine (hub/workflows/services.py) on a small test flow that writes through the
ledger to the test connector's record store: idempotent start, waits and signals, SLA escalation,
retries with back-off, permanent failures, compensation (automatic and by an operator), cancel,
a worker killed mid-step, and runs that keep their flow version across a deploy."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from canonical.errors import ConflictError, ValidationFailed
from connectors.errors import PermanentError, TransientError
from hub.connections.services import connection_save
from hub.ledger.models import SideEffect
from hub.workflows import definitions
from hub.workflows.definitions import Done, Flow, Step, Wait
from hub.workflows.models import WorkflowRun, WorkflowStep
from hub.workflows.services import (
    workflow_advance,
    workflow_cancel,
    workflow_compensate,
    workflow_resume,
    workflow_retry_step,
    workflow_start,
    workflows_due,
    workflows_wake,
)

pytestmark = pytest.mark.django_db(transaction=True)

FACTS: dict[str, bool] = {}  # the external fact the wait step looks for, by business key
ESCALATED: list[str] = []


def _create(ctx):
    effect = ctx.perform(
        connection="wf-peer",
        operation="record.create",
        business_key=f"create:{ctx.run.business_key}",
        payload={"key": f"create:{ctx.run.business_key}", "name": ctx.inputs["name"]},
    )
    return Done({"record": effect.external_id})


def _undo_create(ctx):
    record = ctx.output("create", "record")
    from tests.support.ledger_connector import PEER

    PEER.records.pop(record, None)
    return {"deleted": record}


def _wait_fact(ctx):
    if FACTS.get(ctx.run.business_key):
        return Done({"seen": True})
    return Wait(f"the fact for {ctx.run.business_key}", check_again_s=3600)


def _link(ctx):
    if ctx.inputs.get("reject_link"):
        raise PermanentError("the ERP refused the link")
    return Done({"linked": ctx.output("create", "record")})


V1 = Flow(
    key="test_flow",
    version=1,
    steps=(
        Step("create", _create, compensate=_undo_create, retry_base_s=0.01),
        Step("wait_fact", _wait_fact, sla_s=60),
        Step("link", _link),
    ),
    compensate_on_failure=True,
    on_escalate=lambda ctx: ESCALATED.append(ctx.run.business_key),
)


@pytest.fixture
def flow(test_peer_connector):
    connection_save(data={"slug": "wf-peer", "system": "erp", "connector": "testpeer", "config": {}})
    definitions.register(V1)
    FACTS.clear()
    ESCALATED.clear()
    yield test_peer_connector.PEER
    definitions._FLOWS.pop(("test_flow", 1), None)
    definitions._FLOWS.pop(("test_flow", 2), None)


def _steps(run):
    return [(s.name, s.status) for s in WorkflowStep.objects.filter(run=run).order_by("sequence")]


def test_start_is_idempotent_per_business_key(flow):
    run, created = workflow_start(flow="test_flow", business_key="SO-1", inputs={"name": "A"})
    again, created_again = workflow_start(flow="test_flow", business_key="SO-1", inputs={"name": "B"})
    assert (created, created_again, again.pk) == (True, False, run.pk)
    assert WorkflowRun.objects.count() == 1
    assert _steps(run) == [("create", "pending"), ("wait_fact", "pending"), ("link", "pending")]


def test_a_run_waits_for_its_fact_and_completes_when_woken(flow):
    run, _ = workflow_start(flow="test_flow", business_key="SO-2", inputs={"name": "A"})
    run = workflow_advance(run_id=run.pk)
    assert run.status == "waiting"
    assert _steps(run) == [("create", "done"), ("wait_fact", "waiting"), ("link", "pending")]
    assert WorkflowStep.objects.get(run=run, name="wait_fact").waiting_for == "the fact for SO-2"
    assert run.pk not in workflows_due()  # not before its wake-up time

    FACTS["SO-2"] = True
    assert workflows_wake(business_keys=["SO-2"]) == 1
    assert run.pk in workflows_due()
    run = workflow_advance(run_id=run.pk)
    assert run.status == "completed"
    assert run.context == {
        "create": {"record": "rec-1"},
        "wait_fact": {"seen": True},
        "link": {"linked": "rec-1"},
    }
    assert [a.action for a in run.actions.all()] == ["started", "completed"]
    assert flow.writes == 1


def test_a_wait_past_its_sla_is_escalated_once(flow):
    run, _ = workflow_start(flow="test_flow", business_key="SO-3", inputs={"name": "A"})
    run = workflow_advance(run_id=run.pk)
    step = WorkflowStep.objects.get(run=run, name="wait_fact")
    assert run.wake_at == step.sla_due_at  # it looks again when the SLA ends
    WorkflowStep.objects.filter(pk=step.pk).update(sla_due_at=timezone.now() - timedelta(seconds=1))
    WorkflowRun.objects.filter(pk=run.pk).update(wake_at=timezone.now())
    workflow_advance(run_id=run.pk)
    WorkflowRun.objects.filter(pk=run.pk).update(wake_at=timezone.now())
    workflow_advance(run_id=run.pk)
    step.refresh_from_db()
    assert step.escalated_at is not None
    assert ESCALATED == ["SO-3"]
    assert [a.action for a in run.actions.all()] == ["started", "escalated"]


def test_a_transient_error_is_retried_with_back_off_and_the_write_is_made_once(flow):
    flow.fail_next.append(TransientError("peer restarting"))
    run, _ = workflow_start(flow="test_flow", business_key="SO-4", inputs={"name": "A"})
    run = workflow_advance(run_id=run.pk)
    step = WorkflowStep.objects.get(run=run, name="create")
    assert (run.status, step.status, step.attempts, step.error) == (
        "running",
        "pending",
        1,
        "peer restarting",
    )
    assert run.wake_at > timezone.now() - timedelta(seconds=1)
    WorkflowRun.objects.filter(pk=run.pk).update(wake_at=timezone.now())
    run = workflow_advance(run_id=run.pk)
    assert run.status == "waiting"
    assert flow.writes == 1


def test_a_permanent_failure_compensates_the_completed_steps(flow):
    FACTS["SO-5"] = True
    run, _ = workflow_start(flow="test_flow", business_key="SO-5", inputs={"name": "A", "reject_link": True})
    run = workflow_advance(run_id=run.pk)
    assert run.status == "compensated"
    assert _steps(run) == [("create", "compensated"), ("wait_fact", "done"), ("link", "failed")]
    assert WorkflowStep.objects.get(run=run, name="create").compensation == {"deleted": "rec-1"}
    assert flow.records == {}
    assert "the ERP refused the link" in run.error


def test_an_operator_retries_a_failed_step_with_a_reason(flow):
    definitions._FLOWS[("test_flow", 1)] = Flow(
        key="test_flow", version=1, steps=V1.steps
    )  # no auto-compensation
    FACTS["SO-6"] = True
    run, _ = workflow_start(flow="test_flow", business_key="SO-6", inputs={"name": "A", "reject_link": True})
    run = workflow_advance(run_id=run.pk)
    assert run.status == "failed"
    with pytest.raises(ValidationFailed, match="a reason is required"):
        workflow_retry_step(run_id=run.pk, reason=" ", actor="ops")
    WorkflowRun.objects.filter(pk=run.pk).update(inputs={"name": "A"})  # the ERP side was fixed
    workflow_retry_step(run_id=run.pk, reason="customer unblocked in the ERP", actor="ops")
    run = workflow_advance(run_id=run.pk)
    assert run.status == "completed"
    retry = run.actions.get(action="retry")
    assert (retry.step, retry.reason, retry.actor) == ("link", "customer unblocked in the ERP", "ops")
    with pytest.raises(ConflictError):
        workflow_retry_step(run_id=run.pk, reason="again", actor="ops")


def test_an_operator_compensates_or_cancels_a_waiting_run(flow):
    run, _ = workflow_start(flow="test_flow", business_key="SO-7", inputs={"name": "A"})
    workflow_advance(run_id=run.pk)
    workflow_compensate(run_id=run.pk, reason="order cancelled by the customer", actor="ops")
    run = workflow_advance(run_id=run.pk)
    assert run.status == "compensated"
    assert _steps(run) == [("create", "compensated"), ("wait_fact", "skipped"), ("link", "skipped")]

    other, _ = workflow_start(flow="test_flow", business_key="SO-8", inputs={"name": "A"})
    workflow_advance(run_id=other.pk)
    workflow_resume(run_id=other.pk, reason="look now", actor="ops")
    workflow_cancel(run_id=other.pk, reason="duplicate order", actor="ops")
    other.refresh_from_db()
    assert other.status == "cancelled"
    assert _steps(other) == [("create", "done"), ("wait_fact", "skipped"), ("link", "skipped")]
    assert workflow_advance(run_id=other.pk) is None  # a cancelled run is never advanced
    with pytest.raises(ConflictError):
        workflow_resume(run_id=other.pk, reason="x", actor="ops")


def test_a_worker_killed_mid_step_is_resumed_and_the_peer_gets_one_record(flow):
    run, _ = workflow_start(flow="test_flow", business_key="SO-9", inputs={"name": "A"})
    # The killed worker: it leased the run, marked the step running, wrote to the peer through the
    # ledger's first half and died before recording anything.
    from hub.connections.models import Connection
    from hub.ledger.services import side_effect_begin

    WorkflowRun.objects.filter(pk=run.pk).update(lease_until=timezone.now() + timedelta(seconds=300))
    WorkflowStep.objects.filter(run=run, name="create").update(status="running", attempts=1)
    side_effect_begin(
        connection=Connection.objects.get(slug="wf-peer"),
        operation="record.create",
        business_key="create:SO-9",
        payload={"key": "create:SO-9", "name": "A"},
    )
    flow.records["rec-0"] = {"key": "create:SO-9", "name": "A"}
    flow.writes += 1
    assert workflow_advance(run_id=run.pk) is None  # its lease still holds

    WorkflowRun.objects.filter(pk=run.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    SideEffect.objects.filter(business_key="create:SO-9").update(lease_until=None)  # both leases ran out
    assert run.pk in workflows_due()
    run = workflow_advance(run_id=run.pk)
    assert run.status == "waiting"
    assert run.context["create"] == {"record": "rec-0"}
    assert (flow.writes, len(flow.records)) == (1, 1)
    assert SideEffect.objects.get(business_key="create:SO-9").found_by_lookup is True


def test_a_run_keeps_its_flow_version_when_a_new_version_is_deployed(flow):
    run, _ = workflow_start(flow="test_flow", business_key="SO-10", inputs={"name": "A"})
    workflow_advance(run_id=run.pk)
    definitions.register(Flow(key="test_flow", version=2, steps=(Step("only", lambda ctx: Done({"v": 2})),)))
    FACTS["SO-10"] = True
    workflows_wake(business_keys=["SO-10"])
    run = workflow_advance(run_id=run.pk)
    assert (run.flow_version, run.status, sorted(run.context)) == (
        1,
        "completed",
        ["create", "link", "wait_fact"],
    )
    new, _ = workflow_start(flow="test_flow", business_key="SO-11", inputs={})
    assert new.flow_version == 2
    assert workflow_advance(run_id=new.pk).context == {"only": {"v": 2}}


def test_an_unexpected_error_in_a_step_is_retried_then_fails_the_step(flow):
    def boom(ctx):
        raise KeyError("no such thing")

    definitions.register(
        Flow(key="test_flow", version=2, steps=(Step("boom", boom, max_attempts=2, retry_base_s=0.01),))
    )
    run, _ = workflow_start(flow="test_flow", business_key="SO-12", inputs={})
    run = workflow_advance(run_id=run.pk)
    step = WorkflowStep.objects.get(run=run)
    assert (run.status, step.status, step.attempts) == ("running", "pending", 1)
    assert step.error == "unexpected KeyError: 'no such thing'"
    WorkflowRun.objects.filter(pk=run.pk).update(wake_at=timezone.now())
    run = workflow_advance(run_id=run.pk)
    assert run.status == "failed"
    assert "gave up after 2 attempts" in WorkflowStep.objects.get(run=run).error


def test_a_wake_during_an_advance_is_kept_instead_of_the_next_scheduled_look(flow):
    def look(ctx):
        workflows_wake(subjects=["S-13"])  # a milestone for the shipment lands while the step looks
        return Wait("the milestone", check_again_s=3600)

    definitions.register(Flow(key="test_flow", version=2, steps=(Step("look", look),)))
    run, _ = workflow_start(flow="test_flow", business_key="SO-13", inputs={}, subject="S-13")
    run = workflow_advance(run_id=run.pk)
    assert run.status == "waiting"
    assert run.wake_at <= timezone.now()  # due again now, not in an hour
