"""delivered_invoiced: every delivered shipment is invoiced in the ERP within its SLA, and nothing
is invoiced before proof of delivery for a customer whose billing waits for it.

For each shipment of an ERP order (its order has the ERP's sale id) the ERP's customer invoices of
that sale are read through the connector, a page of shipments at a time:

- ``invoiced_without_pod`` (error, not repairable): the customer's billing waits for POD
  (``hold_invoice_until_pod``), no POD was received, yet the ERP (or the hub) has a posted invoice;
  the billing hold did not hold and ops must decide (credit it, or record the POD);
- ``not_invoiced`` (warning; error past twice the SLA; repairable): delivered, with POD where the
  customer needs it, no open exception, and still no posted ERP invoice ``sla_hours`` after the later
  of delivery and POD. The repair posts the sale's invoice through the ledger
  (``invoice.post``, business key ``reconcile:delivered_invoiced:<shipment>``) with the freight the
  TMS charged, as ship-to-invoice does, and records the canonical invoice with its lines;
- ``billing_held`` (warning, not repairable): past the SLA but an open shipment exception holds
  billing (ship-to-invoice waits for it to be resolved);
- ``erp_invoice_not_posted`` (error, not repairable): the hub recorded the invoice as posted but the
  ERP has none posted (cancelled by hand): invoice_amounts shows it, ops decides.

Options: ``sla_hours`` (48), ``window_days`` (90: shipments created in that many days are examined).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from canonical.models import ExternalRef, Invoice, Order, Shipment, ShipmentException, ShipmentLine
from hub.ledger.services import side_effect_perform
from hub.workflows.flows import common
from hub.workflows.flows import ship_to_invoice as flow
from reconciliation.checks import invoicing
from reconciliation.checks.base import Check, CheckContext, Finding, NotRepairable, register

NAME = "delivered_invoiced"
SYSTEMS = ("hub", "erp")


@dataclass(frozen=True)
class Facts:
    """What the hub and the ERP say about one shipment's billing."""

    reference: str
    status: str
    needs_pod: bool
    delivered_at: datetime | None
    pod_received_at: datetime | None
    erp_invoices: list[dict[str, Any]]  # the sale's customer invoices in the ERP (any state)
    hub_invoices: list[str]  # references of the hub's posted invoices for the shipment
    open_exceptions: list[str]
    sale_id: int


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def compare(facts: Facts, *, now: datetime, sla: timedelta) -> Finding:
    """One shipment's billing against the rules above. Pure."""
    f = facts
    posted = [i for i in f.erp_invoices if i["state"] in invoicing.POSTED]
    expected: dict[str, Any] = {
        "status": f.status,
        "delivered_at": _when(f.delivered_at),
        "pod_received_at": _when(f.pod_received_at),
        "pod_required": f.needs_pod,
        "hub_invoices": f.hub_invoices,
        "open_exceptions": f.open_exceptions,
    }
    found = {"sale_id": f.sale_id, "erp_invoices": f.erp_invoices}
    ids = tuple(str(i["id"]) for i in posted) or (str(f.sale_id),)
    base = {"systems": SYSTEMS, "expected": expected, "found": found, "external_ids": ids}
    if f.needs_pod and f.pod_received_at is None and (posted or f.hub_invoices):
        numbers = ", ".join(i.get("number") or str(i["id"]) for i in posted) or ", ".join(f.hub_invoices)
        return Finding(
            f.reference,
            ok=False,
            kind="invoiced_without_pod",
            summary=f"shipment {f.reference} ({f.status}) is invoiced ({numbers}) without proof of delivery",
            severity="error",
            **base,
        )
    delivered = f.status == Shipment.Status.DELIVERED
    if not delivered or (f.needs_pod and f.pod_received_at is None) or posted:
        return Finding(f.reference, ok=True, systems=SYSTEMS, external_ids=ids)
    ready_at = (
        max(t for t in (f.delivered_at, f.pod_received_at) if t)
        if (f.delivered_at or f.pod_received_at)
        else None
    )
    if ready_at is not None and now < ready_at + sla:
        return Finding(f.reference, ok=True, systems=SYSTEMS, external_ids=ids)  # not due yet
    late = "" if ready_at is None else f" ({(now - ready_at).total_seconds() / 3600:.0f} h after delivery)"
    if f.open_exceptions:
        return Finding(
            f.reference,
            ok=False,
            kind="billing_held",
            summary=f"shipment {f.reference} is not invoiced{late}: billing held by open exception(s) "
            f"{', '.join(f.open_exceptions)}",
            **base,
        )
    if f.hub_invoices:
        return Finding(
            f.reference,
            ok=False,
            kind="erp_invoice_not_posted",
            summary=f"shipment {f.reference}: the hub has invoice {', '.join(f.hub_invoices)} posted, the ERP "
            "has no posted invoice for the sale",
            severity="error",
            **base,
        )
    overdue = ready_at is None or now >= ready_at + 2 * sla
    return Finding(
        f.reference,
        ok=False,
        kind="not_invoiced",
        summary=f"shipment {f.reference} is delivered and not invoiced in the ERP{late}",
        severity="error" if overdue else "warning",
        repairable=True,
        **base,
    )


@register
class DeliveredInvoiced(Check):
    name = NAME
    title = "Delivered shipments invoiced (and not before POD)"
    systems = SYSTEMS
    every_s = 3600
    defaults = {"sla_hours": 48, "window_days": 90}
    page_size = 200  # shipments per page: two ERP calls per page

    def _shipments(self, ctx: CheckContext):
        since = timezone.now() - timedelta(days=float(ctx.options["window_days"]))
        shipments = Shipment.objects.filter(created_at__gte=since, lines__isnull=False).exclude(
            status=Shipment.Status.CANCELLED
        )
        keys = ctx.keys()
        if keys is not None:
            shipments = shipments.filter(reference__in=keys)
        return shipments.distinct()

    def estimate(self, ctx: CheckContext) -> int | None:
        return self._shipments(ctx).count()

    def examine(self, ctx: CheckContext) -> Iterator[Finding]:
        reader = invoicing.erp_reader(ctx)
        sla = timedelta(hours=float(ctx.options["sla_hours"]))
        ctx.totals.update(examined=0, without_erp_sale=0)
        last = None
        while True:
            page_qs = self._shipments(ctx).select_related("customer").order_by("pk")
            if last is not None:
                page_qs = page_qs.filter(pk__gt=last)
            page = list(page_qs[: self.page_size])
            if not page:
                return
            last = page[-1].pk
            ids = [s.pk for s in page]
            orders: dict[Any, Any] = {}
            for shipment_id, order_id in ShipmentLine.objects.filter(shipment_id__in=ids).values_list(
                "shipment_id", "order_line__order_id"
            ):
                orders.setdefault(shipment_id, order_id)
            sales = {
                object_id: int(external_id)
                for object_id, external_id in ExternalRef.objects.filter(
                    system=reader.system, entity="order", object_id__in=set(orders.values())
                ).values_list("object_id", "external_id")
                if str(external_id).isdigit()
            }
            hub_invoices: dict[Any, list[str]] = {}
            for shipment_id, reference in Invoice.objects.filter(
                shipment_id__in=ids,
                kind=Invoice.Kind.INVOICE,
                status__in=[Invoice.Status.POSTED, Invoice.Status.PAID],
            ).values_list("shipment_id", "reference"):
                hub_invoices.setdefault(shipment_id, []).append(reference)
            exceptions: dict[Any, list[str]] = {}
            for shipment_id, kind in ShipmentException.objects.filter(
                shipment_id__in=ids, status=ShipmentException.Status.OPEN
            ).values_list("shipment_id", "kind"):
                exceptions.setdefault(shipment_id, []).append(kind)
            erp = reader.sales_invoices(sales.values())
            now = timezone.now()
            for shipment in page:
                sale_id = sales.get(orders.get(shipment.pk))
                if sale_id is None:
                    ctx.totals["without_erp_sale"] += 1  # not billed through the ERP
                    continue
                ctx.totals["examined"] += 1
                facts = Facts(
                    reference=shipment.reference,
                    status=shipment.status,
                    needs_pod=shipment.customer.hold_invoice_until_pod if shipment.customer_id else True,
                    delivered_at=shipment.delivered_at,
                    pod_received_at=shipment.pod_received_at,
                    erp_invoices=erp.get(sale_id, []),
                    hub_invoices=sorted(hub_invoices.get(shipment.pk, [])),
                    open_exceptions=sorted(exceptions.get(shipment.pk, [])),
                    sale_id=sale_id,
                )
                yield compare(facts, now=now, sla=sla)

    def repair(self, discrepancy: Any, ctx: CheckContext) -> dict[str, Any]:
        """Post the shipment's sale invoice through the ledger (once per shipment, whoever repeats
        it) and record the canonical invoice with its lines, as ship-to-invoice's last step does."""
        if discrepancy.kind != "not_invoiced":
            raise NotRepairable(f"{discrepancy.kind} is for ops to resolve: {discrepancy.summary}")
        reader = invoicing.erp_reader(ctx)
        shipment = (
            Shipment.objects.select_related("customer").filter(reference=discrepancy.business_key).first()
        )
        if shipment is None:
            raise NotRepairable(f"the hub has no shipment {discrepancy.business_key} any more")
        if common.open_exceptions(shipment):
            raise NotRepairable(
                f"billing of {shipment.reference} is held by open exception(s) "
                f"{', '.join(common.open_exceptions(shipment))}: resolve them first"
            )
        line = shipment.lines.select_related("order_line__order").first()
        if line is None:
            raise NotRepairable(f"shipment {shipment.reference} has no order to invoice")
        order = line.order_line.order
        sale_id = common.erp_id(order, reader.system, "order")
        amount, currency = flow.freight_charged(shipment)
        payload: dict[str, Any] = {"sale_id": sale_id}
        if amount is not None:
            payload["freight_amount"] = str(amount)
            payload["currency"] = currency
        business_key = f"reconcile:{NAME}:{shipment.reference}"
        plan = {
            "operation": "invoice.post",
            "connection": reader.connection.slug,
            "business_key": business_key,
        }
        if ctx.dry_run:
            return {"writes": [{**plan, "payload": payload}]}
        effect = side_effect_perform(
            connection=reader.connection, operation="invoice.post", business_key=business_key, payload=payload
        )
        result = effect.result or {}
        invoice = _invoice_record(order, shipment, effect, reader.system, amount, currency)
        return {
            "writes": [
                {
                    "side_effect": str(effect.pk),
                    "operation": "invoice.post",
                    "external_id": effect.external_id,
                    "number": result.get("number"),
                }
            ],
            "invoice": invoice.reference,
        }


def _invoice_record(
    order: Order, shipment: Shipment, effect: Any, system: str, amount: Any, currency: str
) -> Invoice:
    result = effect.result or {}
    with transaction.atomic():
        invoice = common.invoice_record(
            reference=result.get("number") or f"{system}-{effect.external_id}",
            kind=Invoice.Kind.INVOICE,
            order=order,
            shipment=shipment,
            currency=result.get("currency") or currency,
            erp_system=system,
            erp_id=effect.external_id,
            lines=flow.invoice_lines(order, freight=amount, erp_lines=result.get("lines") or []),
        )
        Order.objects.filter(pk=order.pk).update(status=Order.Status.INVOICED)
    return invoice
