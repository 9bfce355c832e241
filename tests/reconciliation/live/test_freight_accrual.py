"""freight_accrual against the live Tryton: a shipment delivered in November without its carrier
invoice gets one posted accrual move at the November close; when the carrier's invoice (a 210, as a
canonical freight charge) arrives, one reversing move is posted. Counted in Tryton and in the ledger."""

from __future__ import annotations

from decimal import Decimal

import pytest

from canonical.models import Shipment
from connectors.tryton import accruals
from hub.ledger.models import SideEffect
from reconciliation import services
from tests.reconciliation.live.support import discrepancies, run_check

pytestmark = [pytest.mark.peer, pytest.mark.django_db(transaction=True)]
PERIOD_END = "2026-11-30"
OPTIONS = {"expense_account": "5.1.3", "accrual_account": "2.2.1"}


def moves(hub, reference: str) -> list[dict]:
    """Tryton's account moves carrying the hub's accrual markers for the shipment."""
    return hub.tryton.call(
        "model.account.move.search_read",
        [["description", "like", f"%[crossdock freight.%{reference}@%"]],
        0,
        None,
        [["id", "ASC"]],
        ["description", "state", "date", "lines"],
    )


def lines(hub, move: dict) -> list[tuple[int, Decimal, Decimal]]:
    rows = hub.tryton.call("model.account.move.line.read", move["lines"], ["account", "debit", "credit"])
    return sorted((r["account"], Decimal(str(r["debit"])), Decimal(str(r["credit"]))) for r in rows)


def test_a_delivery_without_its_carrier_invoice_is_accrued_at_period_end_and_reversed_when_it_arrives(hub):
    sale, _ = hub.ship()
    hub.milestone(sale.shipment, "DELIVERED", "2026-11-20T15:00:00Z")
    shipment = Shipment.objects.get(reference=sale.shipment)
    assert shipment.status == "DELIVERED"
    cost = shipment.expected_freight_cost  # the TMS's quote at booking (order-to-ship)
    assert cost is not None and cost > 0
    scope = {"references": [sale.shipment], "period_end": PERIOD_END}

    run_check("freight_accrual", scope=scope, options=OPTIONS)
    (found,) = discrepancies("freight_accrual", sale.shipment)
    assert (found.kind, found.repairable, found.expected["period"]) == ("accrual_missing", True, "2026-11")
    services.discrepancy_repair(discrepancy_id=found.pk, actor="ops", reason="November close")

    (accrual,) = moves(hub, sale.shipment)
    assert accrual["state"] == "posted" and accrual["date"].isoformat() == PERIOD_END
    assert accrual["description"].endswith(f"[crossdock freight.accrue {sale.shipment}@2026-11]")
    again = run_check("freight_accrual", scope=scope)
    assert (again.ok, again.new) == (1, 0)
    carrier = shipment.carrier.scac if shipment.carrier_id else "-"
    assert again.report["totals"]["accrued"] == {carrier: {"count": 1, "amount": str(cost)}}
    assert SideEffect.objects.filter(operation=accruals.ACCRUE).count() == 1

    # The carrier's invoice (its 210) arrives in December.
    hub.receive(
        {
            "kind": "freight_charge",
            "invoice_number": f"CI-{sale.order}",
            "shipment": {"reference": sale.shipment},
            "currency": "USD",
            "charges": [{"kind": "LINEHAUL", "amount": str(cost), "description": "linehaul"}],
        }
    )
    run_check("freight_accrual", scope=scope)
    (_, due) = discrepancies("freight_accrual", sale.shipment)
    assert (due.kind, due.repairable) == ("reversal_missing", True)
    services.discrepancy_repair(discrepancy_id=due.pk, actor="ops", reason="invoice arrived")

    accrual_move, reversal = moves(hub, sale.shipment)
    assert reversal["state"] == "posted" and reversal["date"].isoformat() > PERIOD_END
    assert lines(hub, reversal) == sorted((a, c, d) for a, d, c in lines(hub, accrual_move))
    final = run_check("freight_accrual", scope=scope)
    assert (final.ok, final.new) == (1, 0)
    assert final.report["totals"]["reversed"] == {carrier: {"count": 1, "amount": str(cost)}}
    assert len(discrepancies("freight_accrual", sale.shipment)) == 2
    assert SideEffect.objects.filter(operation=accruals.REVERSE).count() == 1
    assert len(moves(hub, sale.shipment)) == 2
