"""ship-to-invoice: delivered (and, for customers who require it, proof of delivery received) ->
billing released once no exception is open -> the TMS's freight cost recorded in the ERP -> the ERP
invoice posted with its freight line.

No invoice goes out before POD: the customer's ``hold_invoice_until_pod`` rule (default on) holds
billing until the POD milestone arrives, and any open shipment exception (a delay, a failed
delivery, a customs hold) holds it too. Waiting past the SLA (POD_SLA_S, 7 days) escalates
the run. A shipment cancelled before delivery bills nothing: the later steps skip and the run
completes. Compensation of the posted invoice is a full credit note (an invoice posted in error;
the canonical invoice is then CANCELLED, so no adjustment is noted against it); a freight
adjustment after invoicing is its own flow (freight_adjustment), which issues a credit or debit
note, never a second invoice.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import Sum

from canonical.models import Invoice, Order, Shipment
from connectors.errors import PermanentError
from hub.connections.models import Connection
from hub.workflows import definitions
from hub.workflows.definitions import Done, Flow, Step, StepContext, Wait
from hub.workflows.flows import common
from hub.workflows.models import FlowConfig
from hub.workflows.triggers import source, without_run

KEY = "ship_to_invoice"
POD_SLA_S = 7 * 24 * 3600  # seconds a shipment may go without delivery and POD before escalation
RECHECK_S = 300.0  # seconds between looks while waiting (milestones on the shipment wake it sooner)


def _shipment(ctx: StepContext) -> Shipment:
    shipment = Shipment.objects.select_related("customer").filter(reference=ctx.run.business_key).first()
    if shipment is None:
        raise PermanentError(f"no canonical shipment {ctx.run.business_key!r}")
    return shipment


def _order(shipment: Shipment) -> Order:
    line = shipment.lines.select_related("order_line__order").first()
    if line is None:
        raise PermanentError(f"shipment {shipment.reference} has no order lines: no order to invoice")
    return line.order_line.order


def _cancelled(ctx: StepContext) -> bool:
    """The shipment was cancelled before delivery: nothing is billed (the later steps skip)."""
    return bool(ctx.output("await_delivery", "cancelled"))


def await_delivery(ctx: StepContext) -> Done | Wait:
    shipment = _shipment(ctx)
    if shipment.status == Shipment.Status.CANCELLED:
        return Done({"cancelled": True})
    needs_pod = shipment.customer.hold_invoice_until_pod if shipment.customer_id else True
    if shipment.status != Shipment.Status.DELIVERED:
        return Wait(f"delivery of {shipment.reference} (now {shipment.status})", check_again_s=RECHECK_S)
    if needs_pod and shipment.pod_received_at is None:
        return Wait(f"proof of delivery for {shipment.reference}", check_again_s=RECHECK_S)
    return Done(
        {
            "delivered_at": shipment.delivered_at.isoformat() if shipment.delivered_at else None,
            "pod_received_at": shipment.pod_received_at.isoformat() if shipment.pod_received_at else None,
            "pod_required": needs_pod,
        }
    )


def billing_hold(ctx: StepContext) -> Done | Wait:
    if _cancelled(ctx):
        return Done({"skipped": "shipment cancelled"})
    shipment = _shipment(ctx)
    kinds = common.open_exceptions(shipment)
    if kinds:
        return Wait(f"billing held: open exception(s) {', '.join(kinds)}", check_again_s=RECHECK_S)
    return Done({"released": True})


def freight_charged(shipment: Shipment) -> tuple[Decimal | None, str]:
    """The freight the TMS charged: recorded charges (excluding later adjustments), else the booked rate."""
    charges = shipment.charges.exclude(kind="ADJUSTMENT")
    total = charges.aggregate(total=Sum("amount"))["total"]
    if total is not None:
        return total, charges.first().currency
    return shipment.expected_freight_cost, shipment.currency


def record_freight_cost(ctx: StepContext) -> Done:
    if _cancelled(ctx):
        return Done({"skipped": "shipment cancelled"})
    shipment = _shipment(ctx)
    order = _order(shipment)
    amount, currency = freight_charged(shipment)
    if amount is None:
        return Done({"skipped": "no freight cost known from the TMS"})
    sale_id = common.erp_id(order, common.role_system(ctx.connections, "erp"), "order")
    effect = ctx.perform(
        connection="erp",
        operation="shipment.record_cost",
        business_key=shipment.reference,
        payload={"sale_id": sale_id, "amount": str(amount), "currency": currency},
    )
    return Done({"amount": str(amount), "currency": currency, "erp_shipment": effect.external_id})


def post_invoice(ctx: StepContext) -> Done:
    if _cancelled(ctx):
        return Done({"skipped": "shipment cancelled"})
    shipment = _shipment(ctx)
    order = _order(shipment)
    erp_system = common.role_system(ctx.connections, "erp")
    sale_id = common.erp_id(order, erp_system, "order")
    amount, currency = freight_charged(shipment)
    payload: dict[str, Any] = {"sale_id": sale_id}
    if amount is not None:
        payload["freight_amount"] = str(amount)
        payload["currency"] = currency
    effect = ctx.perform(
        connection="erp", operation="invoice.post", business_key=shipment.reference, payload=payload
    )
    result = effect.result or {}
    number = result.get("number") or f"{erp_system}-{effect.external_id}"
    lines = invoice_lines(order, freight=amount, erp_lines=result.get("lines") or [])
    invoice = common.invoice_record(
        reference=number,
        kind=Invoice.Kind.INVOICE,
        order=order,
        shipment=shipment,
        currency=result.get("currency") or currency,
        erp_system=erp_system,
        erp_id=effect.external_id,
        lines=lines,
    )
    Order.objects.filter(pk=order.pk).update(status=Order.Status.INVOICED)
    return Done(
        {
            "invoice": invoice.reference,
            "erp_invoice_id": effect.external_id,
            "total": str(common.lines_total(lines)),
            "erp_total": result.get("total_amount"),
            "freight": payload.get("freight_amount"),
        }
    )


def invoice_lines(order: Order, *, freight: Decimal | None, erp_lines: list[dict[str, Any]]) -> list[dict]:
    """What the hub bills for a shipment's order: one line per order line (its product, quantity and
    agreed unit price) and a freight line of the freight the TMS charged (``freight``) or, when the
    hub knows none, of the freight line the ERP billed from the sale (its ``lines`` answer). These
    are the canonical invoice's lines; reconciliation (invoice_amounts) compares them with the ERP's
    posted invoice, so an invoice edited in the ERP before posting shows."""
    lines: list[dict[str, Any]] = [
        {
            "line_number": number,
            "description": line.product.name[:200] or line.product.sku,
            "product": line.product,
            "quantity": line.quantity,
            "unit_price": line.unit_price,
        }
        for number, line in enumerate(order.lines.select_related("product").order_by("line_number"), start=1)
    ]
    if freight is None:
        billed = [Decimal(str(line["amount"])) for line in erp_lines if line.get("freight")]
        freight = sum(billed, Decimal("0.00")) if billed else None
    if freight is not None:
        lines.append(
            {
                "line_number": len(lines) + 1,
                "description": common.FREIGHT_DESCRIPTION,
                "product": None,
                "quantity": Decimal("1"),
                "unit_price": Decimal(str(freight)).quantize(Decimal("0.01")),
            }
        )
    return lines


def credit_invoice(ctx: StepContext) -> dict[str, Any]:
    """An invoice posted in error: credit it in full (a credit note, linked to it)."""
    if not ctx.output("post_invoice", "invoice"):
        return {"skipped": "nothing was invoiced"}
    invoice = Invoice.objects.get(reference=ctx.output("post_invoice", "invoice"))
    erp_id = ctx.output("post_invoice", "erp_invoice_id")
    reference = f"cancel:{invoice.reference}"
    effect = ctx.perform(
        connection="erp",
        operation="invoice.credit",
        business_key=reference,
        payload={"invoice_id": int(erp_id), "adjustment_reference": reference},
    )
    erp_system = common.role_system(ctx.connections, "erp")
    note = common.invoice_record(
        reference=(effect.result or {}).get("number") or f"{erp_system}-{effect.external_id}",
        kind=Invoice.Kind.CREDIT_NOTE,
        order=invoice.order,
        shipment=invoice.shipment,
        currency=invoice.currency,
        erp_system=erp_system,
        erp_id=effect.external_id,
        corrects=invoice,
        lines=[  # the whole invoice, negated
            {
                "line_number": line.line_number,
                "description": line.description,
                "product": line.product,
                "quantity": line.quantity,
                "unit_price": -line.unit_price,
            }
            for line in invoice.lines.select_related("product").order_by("line_number")
        ],
    )
    Invoice.objects.filter(pk=invoice.pk).update(status=Invoice.Status.CANCELLED)
    return {"credit_note": note.reference, "erp_credit_note_id": effect.external_id}


FLOW = definitions.register(
    Flow(
        key=KEY,
        version=1,
        description="Delivered + POD -> billing released (no open exception) -> freight cost and invoice in the ERP.",
        steps=(
            Step("await_delivery", await_delivery, sla_s=POD_SLA_S),
            Step("billing_hold", billing_hold),
            Step("record_freight_cost", record_freight_cost),
            Step("post_invoice", post_invoice, compensate=credit_invoice),
        ),
        requires={"erp": ("shipment.record_cost", "invoice.post", "invoice.credit")},
    )
)


@source(KEY)
def booked_shipments(config: FlowConfig) -> list[tuple[str, dict, str]]:
    """Shipments booked in the flow's TMS for an order (they carry its id) that have no run."""
    tms = Connection.objects.filter(slug=config.connections.get("tms")).first()
    if tms is None:
        return []
    shipments = (
        Shipment.objects.filter(
            external_refs__system=common.ref_system(tms),
            external_refs__entity="shipment",
            lines__isnull=False,
        )
        .exclude(status=Shipment.Status.CANCELLED)
        .distinct()
    )
    rows = without_run(shipments.order_by("created_at"), KEY, "reference")
    return [(shipment.reference, {}, shipment.reference) for shipment in rows]
