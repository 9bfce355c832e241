"""invoice_amounts: the hub's posted invoices against the ERP's invoices, line by line.

The hub records what it bills when ship-to-invoice posts an invoice: the order's lines at their
agreed prices and the freight the TMS charged (``ship_to_invoice.invoice_lines``). The ERP's
invoice (read by its id, in any state) must hold the same lines and total and still be posted: an
invoice edited in the ERP by hand before it was posted, or cancelled there after, opens a
discrepancy with the expected (hub) and found (ERP) amount of each line.

Compared: lines matched by key (product SKU, ``freight``, else description), quantity and amount
summed per key; the total of the lines (the ERP's untaxed amount: taxes are the ERP's own, shown in
``found`` but not compared); the currency; the ERP state (posted or paid). Examined: the hub's
invoices (kind INVOICE) that are POSTED or PAID and have an ERP id, in keyset pages.

Repaired: ``cancelled_in_erp`` only (when ops choose to repair it: a cancellation may have been
meant, and then the discrepancy is resolved or ignored with a reason). The sale is billed again
through the ledger (``invoice.recreate``, business key ``reconcile:invoice_amounts:<invoice>``:
Tryton's "Handle Invoice Exception" recreates the invoice from the sale, posted with the hub's
freight); the hub's invoice becomes CANCELLED and the new ERP invoice is recorded with the same
lines. Other kinds are not repairable: a posted invoice cannot change, so whether to credit, bill
the difference or accept it is for ops to decide.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from django.db import transaction

from canonical.models import ExternalRef, Invoice, InvoiceLine
from hub.ledger.services import side_effect_perform
from hub.workflows.flows import common
from reconciliation.checks import invoicing
from reconciliation.checks.base import Check, CheckContext, Finding, NotRepairable, register

NAME = "invoice_amounts"
SYSTEMS = ("hub", "erp")


def expected_of(invoice: Invoice, lines: list[InvoiceLine]) -> dict[str, Any]:
    """The hub's invoice in the compared shape."""
    rows = invoicing.hub_lines(lines)
    return {
        "number": invoice.reference,
        "currency": invoice.currency,
        "total": str(sum((Decimal(row["amount"]) for row in rows), Decimal("0.00"))),
        "lines": rows,
    }


def found_of(erp: dict[str, Any]) -> dict[str, Any]:
    """The ERP's invoice in the compared shape (its untaxed amount is the total of its lines)."""
    return {
        "id": erp["id"],
        "number": erp.get("number"),
        "state": erp["state"],
        "currency": erp.get("currency"),
        "total": str(invoicing.money(erp.get("untaxed_amount") or 0)),
        "tax": erp.get("tax_amount"),
        "total_with_tax": erp.get("total_amount"),
        "lines": [
            {key: line[key] for key in ("key", "quantity", "unit_price", "amount")} for line in erp["lines"]
        ],
    }


def line_differences(expected: list[dict[str, Any]], found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per line key, where quantity or amount differ: {"line", "expected", "found"} (None: the
    line is missing on that side). Pure."""
    want, have = invoicing.by_key(expected), invoicing.by_key(found)
    out = []
    for key in sorted(set(want) | set(have)):
        a, b = want.get(key), have.get(key)
        if a is not None and b is not None and a["quantity"] == b["quantity"] and a["amount"] == b["amount"]:
            continue
        out.append(
            {
                "line": key,
                "expected": _shown(a),
                "found": _shown(b),
            }
        )
    return out


def _shown(row: dict[str, Decimal] | None) -> dict[str, str] | None:
    return (
        None if row is None else {"quantity": invoicing.plain(row["quantity"]), "amount": str(row["amount"])}
    )


def compare(reference: str, expected: dict[str, Any], found: dict[str, Any] | None) -> Finding:
    """One hub invoice against the ERP's (None: the ERP has no invoice with the hub's id). Pure."""
    if found is None:
        return Finding(
            reference,
            ok=False,
            kind="missing_in_erp",
            summary=f"invoice {reference}: the ERP has no invoice with the hub's id",
            systems=SYSTEMS,
            expected=expected,
            severity="error",
        )
    ids = (str(found["id"]),)
    if found["state"] not in invoicing.POSTED:
        kind = "cancelled_in_erp" if found["state"] == "cancelled" else "not_posted_in_erp"
        return Finding(
            reference,
            ok=False,
            kind=kind,
            summary=f"invoice {reference} is {found['state']} in the ERP; the hub has it posted "
            f"for {expected['total']} {expected['currency']}",
            systems=SYSTEMS,
            expected=expected,
            found=found,
            severity="error",
            repairable=kind == "cancelled_in_erp",
            external_ids=ids,
        )
    differences = line_differences(expected["lines"], found["lines"])
    if found.get("currency") and found["currency"] != expected["currency"]:
        return Finding(
            reference,
            ok=False,
            kind="currency_differs",
            summary=f"invoice {reference}: the hub bills in {expected['currency']}, the ERP in {found['currency']}",
            systems=SYSTEMS,
            expected=expected,
            found=found,
            severity="error",
            external_ids=ids,
        )
    if differences or Decimal(expected["total"]) != Decimal(found["total"]):
        shown = ", ".join(
            f"{d['line']} {(d['expected'] or {}).get('amount', '-')} vs {(d['found'] or {}).get('amount', '-')}"
            for d in differences[:3]
        )
        return Finding(
            reference,
            ok=False,
            kind="amounts_differ",
            summary=f"invoice {reference}: hub {expected['total']}, ERP {found['total']} "
            f"{expected['currency']} ({shown})",
            systems=SYSTEMS,
            expected=expected,
            found={**found, "differences": differences},
            severity="error",
            external_ids=ids,
        )
    return Finding(reference, ok=True, systems=SYSTEMS, external_ids=ids)


@register
class InvoiceAmounts(Check):
    name = NAME
    title = "Invoice amounts: hub vs ERP"
    systems = SYSTEMS
    every_s = 6 * 3600
    defaults: dict[str, Any] = {}
    page_size = 200  # invoices per page: one ERP read of four calls per page

    def _invoices(self, ctx: CheckContext):
        invoices = Invoice.objects.filter(
            kind=Invoice.Kind.INVOICE, status__in=[Invoice.Status.POSTED, Invoice.Status.PAID]
        )
        keys = ctx.keys()
        if keys is not None:
            invoices = invoices.filter(reference__in=keys)
        return invoices

    def estimate(self, ctx: CheckContext) -> int | None:
        return self._invoices(ctx).count()

    def examine(self, ctx: CheckContext) -> Iterator[Finding]:
        reader = invoicing.erp_reader(ctx)
        ctx.totals.update(examined=0, without_erp_id=0)
        last = None
        while True:
            page_qs = self._invoices(ctx).order_by("pk")
            if last is not None:
                page_qs = page_qs.filter(pk__gt=last)
            page = list(page_qs[: self.page_size])
            if not page:
                return
            last = page[-1].pk
            erp_ids = dict(
                ExternalRef.objects.filter(
                    system=reader.system, entity="invoice", object_id__in=[i.pk for i in page]
                ).values_list("object_id", "external_id")
            )
            lines: dict[Any, list[InvoiceLine]] = {}
            for line in (
                InvoiceLine.objects.filter(invoice__in=page).select_related("product").order_by("line_number")
            ):
                lines.setdefault(line.invoice_id, []).append(line)
            wanted = {pk: int(v) for pk, v in erp_ids.items() if str(v).isdigit()}
            erp = reader.invoices(wanted.values())
            for invoice in page:
                if invoice.pk not in wanted:
                    ctx.totals["without_erp_id"] += 1  # not an ERP invoice: nothing to compare
                    continue
                ctx.totals["examined"] += 1
                expected = expected_of(invoice, lines.get(invoice.pk, []))
                found = erp.get(wanted[invoice.pk])
                yield compare(invoice.reference, expected, found_of(found) if found else None)

    def repair(self, discrepancy: Any, ctx: CheckContext) -> dict[str, Any]:
        """Bill the sale again for an invoice cancelled in the ERP (once, through the ledger) and
        record the new invoice in place of the cancelled one."""
        if discrepancy.kind != "cancelled_in_erp":
            raise NotRepairable(
                f"{discrepancy.kind}: a posted invoice cannot change; credit, bill the difference or "
                "accept it, then resolve with a reason"
            )
        reader = invoicing.erp_reader(ctx)
        invoice = (
            Invoice.objects.select_related("order", "shipment")
            .filter(reference=discrepancy.business_key)
            .first()
        )
        if invoice is None or invoice.order is None or invoice.shipment is None:
            raise NotRepairable(f"invoice {discrepancy.business_key} has no order and shipment to bill again")
        if invoice.status not in (Invoice.Status.POSTED, Invoice.Status.PAID):
            raise NotRepairable(f"the hub's invoice {invoice.reference} is {invoice.status} now")
        lines = list(invoice.lines.select_related("product").order_by("line_number"))
        freight = [line for line in lines if invoicing.line_key(line) == invoicing.FREIGHT_KEY]
        payload: dict[str, Any] = {
            "sale_id": common.erp_id(invoice.order, reader.system, "order"),
            "invoice_id": common.erp_id(invoice, reader.system, "invoice"),
            "currency": invoice.currency,
        }
        if freight:
            payload["freight_amount"] = str(sum(invoicing.money(f.quantity * f.unit_price) for f in freight))
        business_key = f"reconcile:{NAME}:{invoice.reference}"
        if ctx.dry_run:
            return {
                "writes": [
                    {
                        "operation": "invoice.recreate",
                        "connection": reader.connection.slug,
                        "business_key": business_key,
                        "payload": payload,
                    }
                ]
            }
        effect = side_effect_perform(
            connection=reader.connection,
            operation="invoice.recreate",
            business_key=business_key,
            payload=payload,
        )
        result = effect.result or {}
        with transaction.atomic():
            new = common.invoice_record(
                reference=result.get("number") or f"{reader.system}-{effect.external_id}",
                kind=Invoice.Kind.INVOICE,
                order=invoice.order,
                shipment=invoice.shipment,
                currency=result.get("currency") or invoice.currency,
                erp_system=reader.system,
                erp_id=effect.external_id,
                lines=[
                    {
                        "line_number": line.line_number,
                        "description": line.description,
                        "product": line.product,
                        "quantity": line.quantity,
                        "unit_price": line.unit_price,
                    }
                    for line in lines
                ],
            )
            Invoice.objects.filter(pk=invoice.pk).update(status=Invoice.Status.CANCELLED)
        return {
            "writes": [
                {
                    "side_effect": str(effect.pk),
                    "operation": "invoice.recreate",
                    "external_id": effect.external_id,
                    "number": result.get("number"),
                }
            ],
            "invoice": new.reference,
            "replaces": invoice.reference,
        }
