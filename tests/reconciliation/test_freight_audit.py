"""freight_audit: carrier bills against the quote (or lane rate), with tolerance; a real X12 210
received through the hub's inbound path and audited (real PostgreSQL, no peer)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from canonical.models import FreightCharge
from hub.connections.services import connection_save
from hub.inbox import services as inbox
from reconciliation import services
from reconciliation.checks.freight_audit import FreightAudit, compare
from reconciliation.models import CheckConfig, Discrepancy
from tests.connectors.x12.support import FIXTURES
from tests.factories.canonical import CarrierFactory, LocationFactory, ShipmentFactory, StopFactory
from tests.factories.extra import FreightChargeFactory, RateFactory

OPTIONS = FreightAudit.defaults


def _compare(expected, billed, currency="USD", **options):
    return compare(
        "SHP-1",
        expected=None if expected is None else Decimal(expected),
        currency=currency,
        basis="quote",
        billed={c: Decimal(a) for c, a in billed.items()},
        options={**OPTIONS, **options},
    )


def test_a_bill_within_the_absolute_tolerance_agrees():
    assert _compare("100.00", {"USD": "104.99"}).ok
    assert _compare("100.00", {"USD": "95.00"}).ok  # 5.00 under: within tolerance_abs as well


def test_the_percentage_tolerance_applies_when_it_is_the_larger():
    assert _compare("1000.00", {"USD": "1019.99"}).ok  # 2 % of 1000 = 20.00 > 5.00
    finding = _compare("1000.00", {"USD": "1020.01"})
    assert (finding.ok, finding.kind, finding.severity) == (False, "overbilled", "warning")
    assert finding.found["difference"] == "20.01"
    assert finding.expected["tolerance"] == "20.00"


def test_overbilling_severity_grows_with_how_much():
    assert _compare("100.00", {"USD": "111.00"}).severity == "error"  # 11 % over
    assert _compare("100.00", {"USD": "130.00"}).severity == "critical"  # 30 % over
    assert _compare("100.00", {"USD": "130.00"}, critical_over_pct="50").severity == "error"


def test_underbilling_is_info_and_options_change_the_tolerance():
    finding = _compare("100.00", {"USD": "80.00"})
    assert (finding.kind, finding.severity, finding.found["difference"]) == ("underbilled", "info", "-20.00")
    assert _compare("100.00", {"USD": "80.00"}, tolerance_abs="25").ok


def test_another_currency_or_nothing_to_compare_with_is_said_so():
    assert _compare("100.00", {"EUR": "100.00"}).kind == "currency_differs"
    finding = _compare(None, {"USD": "100.00"})
    assert (finding.kind, finding.severity, finding.repairable) == ("no_expected_cost", "info", False)


def _run(**scope):
    run = services.run_start(check="freight_audit", scope=scope or None)
    services.run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    return run


@pytest.mark.django_db
def test_the_check_audits_against_the_quote_then_the_lane_rate_and_a_rerun_does_not_duplicate():
    quoted = ShipmentFactory(expected_freight_cost=Decimal("200.00"), currency="USD")
    FreightChargeFactory(shipment=quoted, amount=Decimal("180.00"), source_ref="INV1:1")
    FreightChargeFactory(shipment=quoted, kind="FUEL", amount=Decimal("42.00"), source_ref="INV1:2")
    carrier, origin, destination = CarrierFactory(), LocationFactory(), LocationFactory()
    laned = ShipmentFactory(carrier=carrier, expected_freight_cost=None, weight_kg=Decimal("100"))
    StopFactory(shipment=laned, sequence=1, kind="PICKUP", location=origin)
    StopFactory(shipment=laned, sequence=2, kind="DELIVERY", location=destination)
    RateFactory(
        carrier=carrier, origin=origin, destination=destination, basis="PER_KG", amount=Decimal("1.50"),
        currency="USD", valid_from=dt.date(2020, 1, 1),
    )  # fmt: skip
    FreightChargeFactory(shipment=laned, amount=Decimal("151.00"), currency="USD", source_ref="L:1")
    unquoted = ShipmentFactory(expected_freight_cost=None)
    FreightChargeFactory(shipment=unquoted, amount=Decimal("10.00"), source_ref="U:1")
    ShipmentFactory(expected_freight_cost=Decimal("50.00"))  # never billed: not examined

    run = _run()
    assert (run.examined, run.ok, run.new) == (3, 1, 2)
    over = Discrepancy.objects.get(business_key=quoted.reference)
    assert (over.kind, over.severity, over.repairable) == ("overbilled", "error", False)  # 222 vs 200: 11 %
    assert over.expected["amount"] == "200.00" and over.found["billed"] == {"USD": "222.00"}
    assert [c["amount"] for c in over.found["charges"]] == ["180.00", "42.00"]
    assert Discrepancy.objects.get(business_key=unquoted.reference).kind == "no_expected_cost"
    assert run.report["totals"]["billed_over"] == {"USD": "22.00"}

    again = _run()
    assert (again.new, again.still_open) == (0, 2)
    assert Discrepancy.objects.filter(check_name="freight_audit").count() == 2
    with pytest.raises(Exception, match="does not repair"):
        services.discrepancy_repair(discrepancy_id=over.pk, actor="ops", reason="try")


@pytest.mark.django_db
def test_a_credit_from_the_carrier_closes_the_discrepancy():
    shipment = ShipmentFactory(expected_freight_cost=Decimal("100.00"))
    FreightChargeFactory(shipment=shipment, amount=Decimal("150.00"), source_ref="I:1")
    _run()
    assert Discrepancy.objects.get(business_key=shipment.reference).status == "open"
    FreightChargeFactory(shipment=shipment, kind="ADJUSTMENT", amount=Decimal("-50.00"), source_ref="I:2")
    run = _run()
    assert run.closed == 1
    assert Discrepancy.objects.get(business_key=shipment.reference).status == "resolved"


@pytest.mark.django_db
def test_a_real_210_above_the_quote_received_through_the_inbound_path_opens_a_discrepancy():
    """CN's 210 (tests/fixtures/x12/210_cn_oopfactory_1.edi): shipment 291226 billed 2510.00
    line haul + 244.33 fuel = 2754.33 USD against a quote of 2500.00 (+10.2 %)."""
    shipment = ShipmentFactory(reference="291226", expected_freight_cost=Decimal("2500.00"), currency="USD")
    carrier_feed = connection_save(
        data={"slug": "cn-edi", "system": "carrier", "connector": "x12", "config": {}}
    )
    received = inbox.inbound_message_receive(
        connection=carrier_feed,
        body=(FIXTURES / "210_cn_oopfactory_1.edi").read_bytes(),
        content_type="application/edi-x12",
        headers={"content-type": "application/edi-x12"},
        idempotency_key=None,
        correlation_id="corr-210",
    )
    assert received.created
    inbox.inbox_drain(budget_s=30)
    charges = FreightCharge.objects.filter(shipment=shipment).order_by("source_ref")
    assert [(c.amount, c.source_system) for c in charges] == [
        (Decimal("2510.00"), "cn-edi"),
        (Decimal("244.33"), "cn-edi"),
    ]
    CheckConfig.objects.update_or_create(
        check_name="freight_audit", defaults={"options": {"tolerance_pct": "1"}}
    )

    run = _run(references=["291226"])
    assert (run.examined, run.new) == (1, 1)
    found = Discrepancy.objects.get(check_name="freight_audit", business_key="291226", status="open")
    assert (found.kind, found.severity) == ("overbilled", "error")
    assert found.expected["amount"] == "2500.00" and found.expected["tolerance"] == "25.00"
    assert found.found["billed"] == {"USD": "2754.33"}
    assert (found.found["difference"], found.found["difference_pct"]) == ("254.33", "10.2")
    assert found.systems == ["carrier", "hub"]
