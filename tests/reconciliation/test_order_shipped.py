"""order_shipped's comparison (reconciliation/checks/order_shipped.py): what the hub holds for a page
of ERP sales, read from PostgreSQL, against what the ERP and the TMS say (plain data here; the live
peers are in tests/reconciliation/live)."""

from __future__ import annotations

import pytest

from canonical.models import Order, Shipment
from canonical.services import external_refs_attach
from hub.workflows.models import WorkflowRun
from hub.workflows.services import workflow_start
from reconciliation import checks
from reconciliation.checks.base import CheckContext
from reconciliation.checks.order_shipped import (
    HubSeen,
    SaleSeen,
    TmsSeen,
    _hub_seen,
    _peers,
    compare,
    link_expected,
)
from tests.factories.canonical import OrderFactory, ShipmentFactory
from tests.reconciliation.support import connections

pytestmark = pytest.mark.django_db


@pytest.fixture
def ctx(private_networks):
    connections()
    check = checks.get("order_shipped")
    return CheckContext(options=check.options({"connections": {"erp": "rec-erp", "tms": "rec-tms"}}))


def sale(sale_id=41, **link):
    return SaleSeen(
        sale_id=sale_id, number=str(sale_id), state="processing", modified_at="", link_fields=link
    )


def booked_order(reference="SO-41", *, sale_id="41", tms_id="shp_1", status=Order.Status.RELEASED):
    order = OrderFactory(reference=reference, status=status)
    external_refs_attach(record=order, refs=[{"system": "tryton", "external_id": sale_id}])
    shipment = ShipmentFactory(reference=f"SHP-{reference}", customer=order.customer)
    if tms_id:
        external_refs_attach(record=shipment, refs=[{"system": "karrio", "external_id": tms_id}])
    return order, shipment


def test_the_hub_side_of_a_page_of_sales_is_read_by_their_erp_ids(ctx):
    booked_order()
    OrderFactory(reference="SO-42")  # not from the ERP: no external ref
    run, _ = workflow_start(flow="order_to_ship", business_key="SO-41", inputs={"order": "SO-41"})

    seen = _hub_seen(_peers(ctx), ["41", "42", "43"])

    assert set(seen) == {"41"}
    assert seen["41"] == HubSeen(
        order="SO-41",
        order_status=Order.Status.RELEASED,
        shipment="SHP-SO-41",
        shipment_status=Shipment.Status.PLANNED,
        tms_ids=("shp_1",),
        run=str(run.pk),
        run_status=WorkflowRun.Status.RUNNING,
    )


def test_a_sale_the_hub_never_received_is_missing_in_hub_and_repairable(ctx):
    finding = compare("SO-41", sale(), HubSeen(), TmsSeen(), expected_link=None)

    assert (finding.ok, finding.kind, finding.repairable) == (False, "missing_in_hub", True)
    assert finding.expected["erp"]["sale_id"] == 41
    assert finding.systems == ("erp", "hub")


def test_an_order_without_a_tms_shipment_is_missing_shipment_unless_its_run_was_undone(ctx):
    booked_order(tms_id=None)
    hub = _hub_seen(_peers(ctx), ["41"])["41"]

    finding = compare("SO-41", sale(), hub, TmsSeen(), expected_link=None)
    assert (finding.kind, finding.repairable) == ("missing_shipment", True)
    assert "no order-to-ship run" in finding.summary

    undone = HubSeen(**{**hub.__dict__, "run_status": WorkflowRun.Status.COMPENSATED})
    finding = compare("SO-41", sale(), undone, TmsSeen(), expected_link=None)
    assert (finding.kind, finding.repairable) == ("missing_shipment", False)


def test_ids_not_recorded_on_either_side_are_unlinked_naming_the_missing_links(ctx):
    peers = _peers(ctx)
    booked_order(tms_id=None)
    hub = _hub_seen(peers, ["41"])["41"]
    tms = TmsSeen(shipment_id="shp_9", status="purchased", tracking_number="TRK9")
    expected = link_expected(peers.outbound, tms_id="shp_9")
    assert expected == {"reference": "shp_9"}  # the default outbound field map: sale.reference

    finding = compare("SO-41", sale(reference=None), hub, tms, expected_link=expected)
    assert (finding.kind, finding.repairable) == ("unlinked", True)
    assert finding.found["missing_links"] == ["hub->tms", "erp->tms"]

    finding = compare("SO-41", sale(reference="shp_9"), hub, tms, expected_link=expected)
    assert finding.found["missing_links"] == ["hub->tms"]


def test_a_sale_shipped_and_linked_both_ways_agrees(ctx):
    peers = _peers(ctx)
    booked_order(tms_id="shp_9")
    hub = _hub_seen(peers, ["41"])["41"]
    tms = TmsSeen(shipment_id="shp_9", status="purchased")

    finding = compare(
        "SO-41",
        sale(reference="shp_9"),
        hub,
        tms,
        expected_link=link_expected(peers.outbound, tms_id="shp_9"),
    )

    assert finding.ok and finding.business_key == "SO-41"


def test_an_order_cancelled_in_the_hub_for_a_live_sale_is_for_an_operator(ctx):
    booked_order(status=Order.Status.CANCELLED)
    hub = _hub_seen(_peers(ctx), ["41"])["41"]

    finding = compare("SO-41", sale(), hub, TmsSeen(), expected_link=None)

    assert (finding.kind, finding.repairable) == ("cancelled_in_hub", False)


def test_a_tms_shipment_the_hub_has_no_shipment_for_is_not_repaired_by_the_check(ctx):
    order = OrderFactory(reference="SO-41")
    external_refs_attach(record=order, refs=[{"system": "tryton", "external_id": "41"}])
    hub = _hub_seen(_peers(ctx), ["41"])["41"]

    finding = compare(
        "SO-41", sale(), hub, TmsSeen(shipment_id="shp_9"), expected_link={"reference": "shp_9"}
    )

    assert (finding.kind, finding.repairable) == ("missing_hub_shipment", False)


def test_a_scoped_run_estimates_its_references_without_asking_the_erp(ctx):
    ctx.scope = {"references": ["SO-41", "SO-42"]}
    assert checks.get("order_shipped").estimate(ctx) == 2
