"""freight-adjustment against the live ERP: a carrier re-rates a shipment after it was invoiced. Less
freight becomes a Tryton credit note, more freight a debit note, each against the posted invoice
and each made once; the sale never gets a second invoice. Counted in Tryton."""

from __future__ import annotations

import pytest

from canonical.models import FreightCharge, Invoice
from tests.flows.conftest import money

pytestmark = [pytest.mark.peer, pytest.mark.django_db(transaction=True)]


def _carrier_invoice(number: str, reference: str, amount: str) -> dict:
    """A carrier's freight invoice for the shipment (canonical ``freight_charge``) with one adjustment."""
    return {
        "kind": "freight_charge",
        "invoice_number": number,
        "shipment": {"reference": reference},
        "currency": "USD",
        "charges": [{"kind": "ADJUSTMENT", "amount": amount, "description": "re-rated by the carrier"}],
    }


def test_adjustments_after_invoicing_become_credit_and_debit_notes_never_a_second_invoice(hub):
    sale = hub.sale_delivered_without_pod_hold(lines=(("WIDGET", 1),))
    hub.settle()
    (invoice,) = hub.posted_invoices(sale.id)
    assert money(invoice["total_amount"]) == money("30.00")  # 20.00 + 10.00 freight

    hub.receive(_carrier_invoice(f"CI-{sale.order}-1", sale.shipment, "-4.00"))
    hub.settle()

    less = FreightCharge.objects.get(kind="ADJUSTMENT", amount=-4)
    run = hub.run("freight_adjustment", str(less.pk))
    assert run.status == "completed", run.error
    notes = [i for i in hub.invoices(sale.party_id) if i["id"] != invoice["id"]]
    (credit,) = notes
    assert (credit["reference"], credit["state"], money(credit["total_amount"])) == (
        f"adj:{less.pk}",
        "posted",
        money("-4.00"),
    )

    hub.receive(_carrier_invoice(f"CI-{sale.order}-2", sale.shipment, "6.50"))
    hub.settle()
    hub.settle()  # a second sweep starts nothing more

    more = FreightCharge.objects.get(kind="ADJUSTMENT", amount="6.50")
    assert hub.run("freight_adjustment", str(more.pk)).status == "completed"
    by_reference = {i["reference"]: i for i in hub.invoices(sale.party_id) if i["id"] != invoice["id"]}
    assert sorted(by_reference) == sorted([f"adj:{less.pk}", f"adj:{more.pk}"])
    debit = by_reference[f"adj:{more.pk}"]
    assert (debit["state"], money(debit["total_amount"])) == ("posted", money("6.50"))
    # The sale itself still has its one invoice; the party has that invoice plus the two notes.
    assert [i["id"] for i in hub.posted_invoices(sale.id)] == [invoice["id"]]
    assert len(hub.invoices(sale.party_id)) == 3
    original = Invoice.objects.get(kind=Invoice.Kind.INVOICE)
    assert sorted(original.corrections.values_list("kind", flat=True)) == ["CREDIT_NOTE", "DEBIT_NOTE"]
    # Each note is recorded with its amount, as Tryton posted it.
    for note in original.corrections.all():
        total = sum(money(line.quantity * line.unit_price) for line in note.lines.all())
        assert total == money(
            by_reference[f"adj:{less.pk}" if note.kind == "CREDIT_NOTE" else f"adj:{more.pk}"]["total_amount"]
        )
