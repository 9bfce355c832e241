"""freight_accrual: the period close decision per shipment (pure), the hub's candidates and the
ledger's record of accruals (real PostgreSQL), the run's scope and the accrual moves' lines."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from canonical.errors import ValidationFailed
from canonical.models import FreightCharge
from connectors.tryton import accruals
from hub.ledger.models import SideEffect
from reconciliation import services
from reconciliation.checks.base import CheckContext
from reconciliation.checks.freight_accrual import (
    Facts,
    FreightAccrual,
    _candidates,
    _facts,
    accrual_key,
    assess,
    cutoff,
    period_end_default,
    period_end_of,
    reversal_key,
)
from tests.factories.canonical import CarrierFactory, ShipmentFactory
from tests.factories.extra import FreightChargeFactory
from tests.factories.pipeline import ConnectionFactory

END = dt.date(2026, 11, 30)
OPTIONS = FreightAccrual().options({"expense_account": "5.1.3"})


def facts(**overrides) -> Facts:
    values = {
        "reference": "SHP-1",
        "carrier": "SPDY",
        "delivered_at": "2026-11-20T10:00:00+00:00",
        "expected_cost": Decimal("120.00"),
        "currency": "USD",
        "charge_before_cutoff": False,
        "charge_arrived_at": None,
        "accruals": {},
        "reversed_periods": frozenset(),
        **overrides,
    }
    return Facts(**values)


def test_the_default_period_end_is_the_last_day_of_the_previous_month():
    assert period_end_default(dt.date(2026, 12, 3)) == dt.date(2026, 11, 30)
    assert period_end_default(dt.date(2027, 1, 1)) == dt.date(2026, 12, 31)
    ctx = CheckContext(options=OPTIONS, scope={"period_end": "2026-10-31"})
    assert period_end_of(ctx) == dt.date(2026, 10, 31)
    with pytest.raises(ValidationFailed):
        period_end_of(CheckContext(options={**OPTIONS, "period_end": "soon"}))


def test_delivered_without_invoice_is_accrued_once_for_the_period_at_its_expected_cost():
    finding, writes = assess(facts(), period="2026-11", period_end=END, options=OPTIONS)
    assert (finding.ok, finding.kind, finding.repairable) == (False, "accrual_missing", True)
    (write,) = writes
    assert (write.operation, write.business_key) == (
        "freight.accrue",
        "reconcile:freight_accrual:SHP-1@2026-11",
    )
    assert (
        write.payload | {"amount": "120.00", "date": "2026-11-30", "expense_account": "5.1.3"}
        == write.payload
    )


def test_an_invoice_before_the_period_end_needs_no_accrual():
    finding, writes = assess(
        facts(charge_before_cutoff=True), period="2026-11", period_end=END, options=OPTIONS
    )
    assert finding.ok and writes == []


def test_a_standing_accrual_is_not_booked_again_in_a_later_period():
    row = {"payload": {"amount": "120.00", "period": "2026-10"}, "external_id": "40"}
    finding, writes = assess(
        facts(accruals={"2026-10": row}), period="2026-11", period_end=END, options=OPTIONS
    )
    assert finding.ok and writes == []


def test_the_invoice_arriving_asks_for_the_reversal_of_the_standing_accrual_dated_its_arrival():
    row = {"payload": {"shipment": "SHP-1", "period": "2026-11", "amount": "120.00"}, "external_id": "40"}
    arrived = dt.datetime(2026, 12, 2, 9, tzinfo=dt.UTC)
    finding, writes = assess(
        facts(accruals={"2026-11": row}, charge_arrived_at=arrived),
        period="2026-11",
        period_end=END,
        options=OPTIONS,
    )
    assert (finding.kind, finding.repairable) == ("reversal_missing", True)
    (write,) = writes
    assert (write.operation, write.business_key) == (
        "freight.accrual_reverse",
        reversal_key("SHP-1", "2026-11"),
    )
    assert write.payload["date"] == "2026-12-02"
    reversed_ = facts(
        accruals={"2026-11": row}, charge_arrived_at=arrived, reversed_periods=frozenset({"2026-11"})
    )
    assert assess(reversed_, period="2026-11", period_end=END, options=OPTIONS)[0].ok


def test_an_invoice_that_came_after_the_period_end_but_before_the_accrual_gets_both_moves():
    arrived = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)
    _, writes = assess(facts(charge_arrived_at=arrived), period="2026-11", period_end=END, options=OPTIONS)
    assert [w.operation for w in writes] == ["freight.accrue", "freight.accrual_reverse"]


def test_no_expected_cost_is_listed_but_not_repairable():
    finding, writes = assess(facts(expected_cost=None), period="2026-11", period_end=END, options=OPTIONS)
    assert (finding.kind, finding.repairable, writes) == ("accrual_missing", False, [])


def test_the_reversal_swaps_the_accruals_debit_and_credit():
    lines = accruals.accrual_lines(expense=108, accrual=71, amount=Decimal("12.50"), label="x")
    assert [(line["account"], line["debit"], line["credit"]) for line in lines] == [
        (108, Decimal("12.50"), Decimal("0")),
        (71, Decimal("0"), Decimal("12.50")),
    ]
    back = accruals.reversal_lines(lines, label="y")
    assert [(line["account"], line["debit"], line["credit"]) for line in back] == [
        (108, Decimal("0"), Decimal("12.50")),
        (71, Decimal("12.50"), Decimal("0")),
    ]
    payload = {"shipment": "SHP-1", "period": "2026-11", "carrier": "SPDY"}
    assert accruals.description(accruals.ACCRUE, payload).endswith("[crossdock freight.accrue SHP-1@2026-11]")
    assert accruals.marker(accruals.REVERSE, payload) == "[crossdock freight.accrual_reverse SHP-1@2026-11]"


@pytest.mark.django_db
def test_candidates_are_delivered_by_the_period_end_without_a_charge_by_then():
    end = cutoff(END)
    carrier = CarrierFactory(scac="SPDY")
    due = ShipmentFactory(status="DELIVERED", delivered_at=end - dt.timedelta(days=3), carrier=carrier)
    late_delivery = ShipmentFactory(status="DELIVERED", delivered_at=end + dt.timedelta(hours=1))
    invoiced = ShipmentFactory(status="DELIVERED", delivered_at=end - dt.timedelta(days=3))
    charge = FreightChargeFactory(shipment=invoiced)
    FreightCharge.objects.filter(pk=charge.pk).update(created_at=end - dt.timedelta(days=1))
    late_invoice = ShipmentFactory(status="DELIVERED", delivered_at=end - dt.timedelta(days=3))
    FreightChargeFactory(shipment=late_invoice)  # arrives now, after the period end: still accrued
    ShipmentFactory(status="IN_TRANSIT")
    picked = set(_candidates(END, 92).values_list("reference", flat=True))
    assert picked == {due.reference, late_invoice.reference}
    assert late_delivery.reference not in picked

    erp = ConnectionFactory(slug="erp-test", system="erp", connector="tryton")
    SideEffect.objects.create(
        connection=erp,
        operation="freight.accrue",
        business_key=accrual_key(due.reference, "2026-11"),
        status="done",
        external_id="40",
        payload={"shipment": due.reference, "period": "2026-11", "amount": "120.00"},
    )
    (fact,) = _facts([due], erp, end)
    assert (fact.carrier, set(fact.accruals), fact.reversed_periods) == ("SPDY", {"2026-11"}, frozenset())
    assert fact.charge_arrived_at is None


@pytest.mark.django_db
def test_a_run_takes_a_period_end_in_its_scope_and_other_checks_do_not():
    run = services.run_start(check="freight_accrual", scope={"period_end": "2026-10-31"})
    assert run.scope == {"period_end": "2026-10-31"}
    with pytest.raises(ValidationFailed):
        services.run_start(check="cases_match", scope={"period_end": "2026-10-31"})
