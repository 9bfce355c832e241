"""freight-adjustment: a freight charge adjusted after the shipment was invoiced (a carrier's
re-rating, a detention charge) -> an ERP credit note (less freight) or debit note (more freight)
against the posted invoice: never a second invoice.

One run per adjustment charge (business key: the charge's id). Adjustments recorded before the
invoice is posted need no note: ship-to-invoice bills the freight as it stands then.
"""

from __future__ import annotations

from django.db.models import CharField, Exists, OuterRef
from django.db.models.functions import Cast

from canonical.models import FreightCharge, Invoice
from connectors.errors import PermanentError
from hub.workflows import definitions
from hub.workflows.definitions import Done, Flow, Step, StepContext
from hub.workflows.flows import common
from hub.workflows.models import FlowConfig
from hub.workflows.triggers import source, without_run

KEY = "freight_adjustment"


def issue_note(ctx: StepContext) -> Done:
    charge = FreightCharge.objects.select_related("shipment").filter(pk=ctx.run.business_key).first()
    if charge is None:
        raise PermanentError(f"no freight charge {ctx.run.business_key}")
    if not charge.amount:
        return Done({"skipped": "a zero adjustment needs no note"})
    invoice = (
        Invoice.objects.filter(
            shipment=charge.shipment, kind=Invoice.Kind.INVOICE, status=Invoice.Status.POSTED
        )
        .order_by("issued_at")
        .first()
    )
    if invoice is None:
        return Done({"skipped": "the shipment has no posted invoice"})
    if charge.currency != invoice.currency:
        raise PermanentError(
            f"adjustment {charge.pk} is in {charge.currency}, invoice {invoice.reference} in {invoice.currency}"
        )
    erp_system = common.role_system(ctx.connections, "erp")
    erp_invoice_id = common.erp_id(invoice, erp_system, "invoice")
    credit = charge.amount < 0
    operation = "invoice.credit" if credit else "invoice.debit"
    reference = f"adj:{charge.pk}"
    effect = ctx.perform(
        connection="erp",
        operation=operation,
        business_key=reference,
        payload={
            "invoice_id": erp_invoice_id,
            "adjustment_reference": reference,
            "amount": str(abs(charge.amount)),
        },
    )
    result = effect.result or {}
    note = common.invoice_record(
        reference=result.get("number") or f"{erp_system}-{effect.external_id}",
        kind=Invoice.Kind.CREDIT_NOTE if credit else Invoice.Kind.DEBIT_NOTE,
        order=invoice.order,
        shipment=invoice.shipment,
        currency=invoice.currency,
        erp_system=erp_system,
        erp_id=effect.external_id,
        corrects=invoice,
        lines=[  # one freight line: the adjustment (negative on a credit note)
            {
                "line_number": 1,
                "description": common.FREIGHT_DESCRIPTION,
                "product": None,
                "quantity": 1,
                "unit_price": charge.amount,
            }
        ],
    )
    return Done(
        {
            "note": note.reference,
            "kind": note.kind,
            "amount": str(charge.amount),
            "erp_note_id": effect.external_id,
            "total": result.get("total_amount"),
        }
    )


FLOW = definitions.register(
    Flow(
        key=KEY,
        version=1,
        description="Freight adjusted after invoicing -> ERP credit or debit note against the invoice.",
        steps=(Step("issue_note", issue_note),),
        requires={"erp": ("invoice.credit", "invoice.debit")},
    )
)


@source(KEY)
def adjustments_after_invoicing(config: FlowConfig) -> list[tuple[str, dict, str]]:
    posted = Invoice.objects.filter(
        shipment=OuterRef("shipment"),
        kind=Invoice.Kind.INVOICE,
        status=Invoice.Status.POSTED,
        issued_at__lte=OuterRef("created_at"),
    )
    charges = (
        FreightCharge.objects.select_related("shipment")
        .filter(kind=FreightCharge.Kind.ADJUSTMENT)
        .filter(Exists(posted))
        .order_by("created_at")
        .annotate(key=Cast("pk", CharField()))
    )
    rows = without_run(charges, KEY, "key")
    return [(str(charge.pk), {}, charge.shipment.reference) for charge in rows]
