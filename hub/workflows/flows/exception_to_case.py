"""exception-to-case: a shipment exception (a delay, a failed delivery, a customs hold, a missed
pickup...) -> one CRM case per shipment and exception type -> a comment for each later event on the
shipment while it is open -> the case closed when the exception is resolved.

One run per exception episode (business key: the exception's id). The customer's CRM account is
upserted first (through the ledger: free when order-to-ship already wrote it), since the case hangs
off it. Events are picked by event time (from the opening to the resolution), so events that
arrived in the same batch as the opening, or late, are commented too. Billing is held meanwhile by
ship-to-invoice's billing_hold step. Compensating a run whose case was closed too early reopens the
case (``case.reopen``).
"""

from __future__ import annotations

from typing import Any

from django.db.models import CharField
from django.db.models.functions import Cast

from canonical.models import ShipmentEvent, ShipmentException
from connectors.errors import PermanentError
from hub.workflows import definitions
from hub.workflows.definitions import Done, Flow, Step, StepContext, Wait
from hub.workflows.flows import common
from hub.workflows.models import FlowConfig
from hub.workflows.triggers import source, without_run

KEY = "exception_to_case"
RECHECK_S = 600.0  # seconds between looks while the exception is open (its shipment's events wake it)


def _exception(ctx: StepContext) -> ShipmentException:
    exc = (
        ShipmentException.objects.select_related("shipment__customer").filter(pk=ctx.run.business_key).first()
    )
    if exc is None:
        raise PermanentError(f"no shipment exception {ctx.run.business_key}")
    return exc


def case_key(exc: ShipmentException) -> str:
    """The ledger's business key of the episode's ``case.open`` (one case per exception episode)."""
    return f"{exc.shipment.reference}:{exc.kind}:{exc.opened_at.isoformat()}"


def _case_write(
    ctx: StepContext,
    exc: ShipmentException,
    *,
    operation: str,
    business_key: str,
    event_id: str,
    **fields: Any,
) -> Any:
    """One write to the run's open case (comment, close, reopen) through the ledger: the case, the
    shipment and exception type it is about, the ``event_id`` the CRM dedupes on, then ``fields``."""
    return ctx.perform(
        connection="crm",
        operation=operation,
        business_key=business_key,
        payload={
            "case_id": ctx.output("open_case", "case"),
            "shipment": {"reference": exc.shipment.reference},
            "exception_type": exc.kind,
            "event_id": event_id,
            **fields,
        },
    )


def case_open_payload(exc: ShipmentException) -> dict[str, Any]:
    """What ``case.open`` is sent for the exception (reconciliation opens a missing case with it too)."""
    shipment = exc.shipment
    customer = shipment.customer
    return {
        "customer_code": customer.code if customer is not None else "",
        "shipment": {"reference": shipment.reference},
        "exception_type": exc.kind,
        "opened_at": exc.opened_at.isoformat(),
        "description": exc.description,
        "reason_code": exc.reason_code,
        "shipment_status": shipment.status,
    }


def open_case(ctx: StepContext) -> Done:
    exc = _exception(ctx)
    customer = exc.shipment.customer
    if customer is not None:
        # The case hangs off the customer's account: make sure it exists (a no-op through the ledger
        # when order-to-ship already wrote it; a shipment may also come from elsewhere).
        ctx.perform(
            connection="crm",
            operation="account.upsert",
            business_key=customer.code,
            payload=common.customer_payload(customer),
        )
    effect = ctx.perform(
        connection="crm", operation="case.open", business_key=case_key(exc), payload=case_open_payload(exc)
    )
    return Done({"case": effect.external_id})


def _events_while_open(exc: ShipmentException):
    """The shipment's events from the opening to the resolution (by event time, whatever order they
    arrived in), without the event that opened it."""
    events = ShipmentEvent.objects.filter(shipment=exc.shipment, occurred_at__gte=exc.opened_at)
    if exc.resolved_at is not None:
        events = events.filter(occurred_at__lte=exc.resolved_at)
    return events.exclude(dedupe_key=exc.source_key).order_by("occurred_at", "created_at")


def follow_until_resolved(ctx: StepContext) -> Done | Wait:
    """Comment each later event on the shipment once (the ledger returns the ones already written
    without calling the CRM); finish when the exception is resolved."""
    exc = _exception(ctx)
    case_id = ctx.output("open_case", "case")
    for event in _events_while_open(exc):
        place = f" at {event.location_code}" if event.location_code else ""
        _case_write(
            ctx,
            exc,
            operation="case.comment",
            business_key=f"{case_id}:{event.dedupe_key}",
            event_id=event.dedupe_key,
            comment=f"{event.event_type}{place} at {event.occurred_at.isoformat()}",
            shipment_status=exc.shipment.status,
        )
    if exc.status == ShipmentException.Status.OPEN:
        return Wait(f"resolution of {exc.kind} on {exc.shipment.reference}", check_again_s=RECHECK_S)
    return Done({"resolved_at": exc.resolved_at.isoformat() if exc.resolved_at else None})


def close_case(ctx: StepContext) -> Done:
    exc = _exception(ctx)
    case_id = ctx.output("open_case", "case")
    effect = _case_write(
        ctx,
        exc,
        operation="case.close",
        business_key=f"{case_id}:close",
        event_id=f"resolved:{exc.pk}",
        resolution=exc.resolution or "the carrier reported the exception resolved",
        resolved_at=exc.resolved_at.isoformat() if exc.resolved_at else None,
    )
    return Done({"closed": effect.external_id})


def reopen_case(ctx: StepContext) -> dict[str, Any]:
    exc = _exception(ctx)
    case_id = ctx.output("open_case", "case")
    effect = _case_write(
        ctx,
        exc,
        operation="case.reopen",
        business_key=f"{case_id}:reopen:{ctx.run.pk}",
        event_id=f"reopen:{ctx.run.pk}",
        reason="the case was closed before the exception was over",
    )
    return {"reopened": effect.external_id, "status": (effect.result or {}).get("status")}


FLOW = definitions.register(
    Flow(
        key=KEY,
        version=1,
        description="Shipment exception -> one CRM case per shipment and type, commented, closed on resolution.",
        steps=(
            Step("open_case", open_case),
            Step("follow_until_resolved", follow_until_resolved),
            Step("close_case", close_case, compensate=reopen_case),
        ),
        requires={"crm": ("account.upsert", "case.open", "case.comment", "case.close", "case.reopen")},
    )
)


@source(KEY)
def open_exceptions(config: FlowConfig) -> list[tuple[str, dict, str]]:
    """Exceptions (open, or resolved before a run could start) that have no run."""
    exceptions = ShipmentException.objects.select_related("shipment").filter(
        created_at__gte=config.created_at
    )
    keyed = exceptions.order_by("created_at").annotate(key=Cast("pk", CharField()))
    rows = without_run(keyed, KEY, "key")
    return [(str(exc.pk), {}, exc.shipment.reference) for exc in rows]
