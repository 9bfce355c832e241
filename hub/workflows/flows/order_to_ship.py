"""order-to-ship: a confirmed ERP order -> TMS order and shipment -> TMS ids linked back to the ERP
sale -> the CRM account shows the customer and the shipment's status.

Started by the trigger scan for every confirmed order that came from the flow's ERP connection.
The canonical shipment is made before the TMS booking, so the TMS's webhooks about the booking
(Karrio sends them while the booking call is still running) find it. The CRM note waits (at most
TMS_CONFIRMATION_WAIT_S) for the TMS's own confirmation milestone, so it shows the booked status
and is the same note a CRM subscription writes for that change (one note per shipment sequence).

If the ERP refuses the link-back (a permanent error: the sale is gone, the order was cancelled),
the run compensates: the TMS shipment is cancelled and the canonical shipment with it. Each write
goes through the side-effect ledger, so a worker killed mid-step never books a second shipment.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from canonical.models import Order, Shipment
from connectors.errors import PermanentError
from hub.connections.models import Connection
from hub.workflows import definitions
from hub.workflows.definitions import Done, Flow, Step, StepContext, Wait
from hub.workflows.flows import common
from hub.workflows.models import FlowConfig
from hub.workflows.triggers import source, without_run

KEY = "order_to_ship"
TMS_CONFIRMATION_WAIT_S = 120.0  # seconds the CRM note waits for the TMS's booking milestone
TMS_CONFIRMATION_RECHECK_S = 15.0  # seconds between looks meanwhile (the milestone wakes it sooner)


def _order(ctx: StepContext) -> Order:
    order = Order.objects.select_related("customer", "ship_to").filter(reference=ctx.inputs["order"]).first()
    if order is None:
        raise PermanentError(f"no canonical order {ctx.inputs['order']!r}")
    return order


def book_tms_shipment(ctx: StepContext) -> Done:
    order = _order(ctx)
    if order.status == Order.Status.CANCELLED:
        raise PermanentError(f"order {order.reference} was cancelled in the ERP: nothing to ship")
    reference = common.shipment_reference(order)
    shipment = common.shipment_for_order(order=order, reference=reference)
    ctx.follow(shipment.reference)
    effect = ctx.perform(
        connection="tms",
        operation="shipment.create",
        business_key=reference,
        payload=common.order_payload(order, shipment_ref=reference),
    )
    result = effect.result or {}
    common.shipment_booked(
        shipment=shipment,
        tms_system=common.role_system(ctx.connections, "tms"),
        tms_id=effect.external_id,
        tracking_number=result.get("tracking_number") or "",
        freight=result.get("total_charge"),
        currency=result.get("currency") or order.currency,
    )
    Order.objects.filter(pk=order.pk, status=Order.Status.CONFIRMED).update(status=Order.Status.RELEASED)
    return Done(
        {
            "shipment": shipment.reference,
            "tms_shipment_id": effect.external_id,
            "tracking_number": result.get("tracking_number"),
            "freight": result.get("total_charge"),
            "currency": result.get("currency"),
        }
    )


def cancel_tms_shipment(ctx: StepContext) -> dict[str, Any]:
    reference = ctx.output("book_tms_shipment", "shipment")
    effect = ctx.perform(
        connection="tms",
        operation="shipment.cancel",
        business_key=reference,
        payload={"external_id": ctx.output("book_tms_shipment", "tms_shipment_id"), "reference": reference},
    )
    shipment = Shipment.objects.filter(reference=reference).first()
    if shipment is not None:
        common.shipment_cancel(shipment=shipment, why="order-to-ship compensated")
    # Not shipped after all: the order is back to confirmed (its run is over, so nothing restarts it).
    Order.objects.filter(reference=ctx.inputs["order"], status=Order.Status.RELEASED).update(
        status=Order.Status.CONFIRMED
    )
    return {"cancelled": effect.external_id, "status": (effect.result or {}).get("status")}


def link_erp_sale(ctx: StepContext) -> Done:
    order = _order(ctx)
    if order.status == Order.Status.CANCELLED:
        raise PermanentError(f"order {order.reference} was cancelled in the ERP: its shipment is undone")
    sale_id = common.erp_id(order, common.role_system(ctx.connections, "erp"), "order")
    effect = ctx.perform(
        connection="erp",
        operation="sale.link_shipment",
        business_key=order.reference,
        payload={
            "sale_id": sale_id,
            "tms_shipment_id": ctx.output("book_tms_shipment", "tms_shipment_id"),
            "tracking_number": ctx.output("book_tms_shipment", "tracking_number"),
            "carrier": ctx.inputs.get("options", {}).get("carrier_name", ""),
        },
    )
    return Done({"sale_id": sale_id, "linked": effect.external_id})


def show_in_crm(ctx: StepContext) -> Done | Wait:
    order = _order(ctx)
    shipment = Shipment.objects.get(reference=ctx.output("book_tms_shipment", "shipment"))
    started = ctx.step.started_at or timezone.now()
    if shipment.status == Shipment.Status.PLANNED and timezone.now() < started + timedelta(
        seconds=TMS_CONFIRMATION_WAIT_S
    ):
        return Wait(
            f"the TMS's booking confirmation for {shipment.reference}",
            check_again_s=TMS_CONFIRMATION_RECHECK_S,
        )
    account = ctx.perform(
        connection="crm",
        operation="account.upsert",
        business_key=order.customer.code,
        payload=common.customer_payload(order.customer),
    )
    latest = shipment.events.order_by("-occurred_at", "-created_at").first()
    status = ctx.perform(
        connection="crm",
        operation="shipment.status",
        business_key=f"{shipment.reference}:{shipment.sequence}",
        payload={
            "customer_code": order.customer.code,
            "shipment": {"reference": shipment.reference},
            "status": shipment.status,
            "sequence": shipment.sequence,
            "event_type": latest.event_type if latest else "",
            "occurred_at": latest.occurred_at.isoformat() if latest else None,
        },
    )
    return Done(
        {
            "account": account.external_id,
            "status_note": status.external_id,
            "status": shipment.status,
            "sequence": shipment.sequence,
        }
    )


FLOW = definitions.register(
    Flow(
        key=KEY,
        version=1,
        description="Confirmed ERP order -> TMS shipment -> ERP link-back -> CRM account and status.",
        steps=(
            Step("book_tms_shipment", book_tms_shipment, compensate=cancel_tms_shipment),
            Step("link_erp_sale", link_erp_sale),
            Step("show_in_crm", show_in_crm),
        ),
        compensate_on_failure=True,
        requires={
            "erp": ("sale.link_shipment",),
            "tms": ("shipment.create", "shipment.cancel"),
            "crm": ("account.upsert", "shipment.status"),
        },
    )
)


@source(KEY)
def confirmed_orders(config: FlowConfig) -> list[tuple[str, dict, str]]:
    """Confirmed orders from the flow's ERP connection (they carry its sale id) that have no run."""
    erp = Connection.objects.filter(slug=config.connections.get("erp")).first()
    if erp is None:
        return []
    orders = Order.objects.filter(
        status=Order.Status.CONFIRMED,
        external_refs__system=common.ref_system(erp),
        external_refs__entity="order",
    )
    rows = without_run(orders.order_by("created_at"), KEY, "reference")
    return [(order.reference, {"order": order.reference}, "") for order in rows]
