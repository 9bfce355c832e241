"""order_shipped against the live peers: a sale confirmed in Tryton while the hub was down (never
polled) is found once older than its SLA, taken in through the ERP connection's inbox, and shipped
by order-to-ship as usual; a link a person removed from the sale is written again through the
ledger. Each second run finds the sale, Karrio and the hub agreeing and writes nothing."""

from __future__ import annotations

import time

import pytest

from canonical.models import ExternalRef, Order, Shipment
from hub.inbox.models import InboundMessage
from hub.ledger.models import SideEffect
from reconciliation.models import Discrepancy
from tests.flows.conftest import SLUGS
from tests.reconciliation.live.support import configure, discrepancies, execute

pytestmark = [pytest.mark.peer, pytest.mark.django_db(transaction=True)]

CHECK = "order_shipped"
SLA_S = 2  # the tiny SLA: seconds a sale must be unchanged before the check expects it shipped


def test_a_sale_confirmed_while_the_hub_was_down_is_taken_in_and_shipped(hub):
    configure(
        CHECK,
        auto_repair=True,
        connections={"erp": SLUGS["erp"], "tms": SLUGS["tms"]},
        sla_hours=SLA_S / 3600,
        window_days=1,
    )
    sale = hub.sale()  # confirmed in Tryton; the hub does not poll
    time.sleep(SLA_S + 1)

    first = execute(CHECK, sale.order)
    assert (first.examined, first.new, first.repaired) == (1, 1, 1)
    assert first.report["totals"]["in_hub"] == 0
    (found,) = discrepancies(CHECK, sale.order)
    assert (found.kind, found.status) == ("missing_in_hub", Discrepancy.Status.REPAIRED)
    assert found.expected["erp"]["sale_id"] == sale.id and str(sale.id) in found.external_ids
    (received,) = found.repair["inbound"]
    assert received["created"] is True
    message = InboundMessage.objects.get(pk=received["message"])
    assert (message.connection.slug, message.idempotency_key.startswith(f"sale:{sale.id}:")) == (
        SLUGS["erp"],
        True,
    )

    # The inbox takes it in; the trigger starts order-to-ship; the run ships and links it.
    hub.settle()
    run = hub.run("order_to_ship", sale.order)
    assert run.status == "completed", (run.error, list(run.steps.values("name", "status", "error")))
    assert Order.objects.get(reference=sale.order).status == Order.Status.RELEASED
    shipment = Shipment.objects.get(reference=sale.shipment)
    karrio = hub.karrio_shipment(sale)
    assert ExternalRef.objects.filter(
        system="karrio", external_id=karrio["id"], object_id=shipment.pk
    ).exists()
    assert hub.sale_read(sale.id, ["reference"])["reference"] == karrio["id"]

    time.sleep(SLA_S + 1)  # the link-back changed the sale: let it age past the SLA again
    writes, messages = SideEffect.objects.count(), InboundMessage.objects.count()
    second = execute(CHECK, sale.order)
    assert (second.examined, second.ok, second.new, second.repaired) == (1, 1, 0, 0)
    assert second.report["totals"] == {"sales": 1, "in_hub": 1, "shipped": 1}
    assert len(discrepancies(CHECK, sale.order)) == 1
    assert (SideEffect.objects.count(), InboundMessage.objects.count()) == (writes, messages)
    assert len(hub.karrio.records("shipments", reference=sale.shipment)) == 1


def test_a_link_removed_from_the_sale_by_hand_is_written_again_through_the_ledger_once(hub):
    configure(
        CHECK,
        auto_repair=True,
        connections={"erp": SLUGS["erp"], "tms": SLUGS["tms"]},
        sla_hours=SLA_S / 3600,
        window_days=1,
    )
    sale, run = hub.ship()
    assert run.status == "completed", run.error
    karrio = hub.karrio_shipment(sale)

    # Someone clears the sale's reference in Tryton (the Karrio shipment id order-to-ship wrote).
    hub.tryton.call("model.sale.sale.write", [sale.id], {"reference": None})
    assert hub.sale_read(sale.id, ["reference"])["reference"] is None
    time.sleep(SLA_S + 1)

    first = execute(CHECK, sale.order)
    assert (first.new, first.repaired) == (1, 1)
    (found,) = discrepancies(CHECK, sale.order)
    assert (found.kind, found.found["missing_links"]) == ("unlinked", ["erp->tms"])
    assert found.found["erp"]["link_fields"] == {"reference": None}
    (write,) = found.repair["writes"]
    effect = SideEffect.objects.get(pk=write["side_effect"])
    assert (effect.operation, effect.business_key) == (
        "sale.link_shipment",
        f"reconcile:{CHECK}:{sale.order}:{found.pk.hex}",
    )
    assert hub.sale_read(sale.id, ["reference"])["reference"] == karrio["id"]

    time.sleep(SLA_S + 1)
    writes = SideEffect.objects.count()
    second = execute(CHECK, sale.order)
    assert (second.ok, second.new, second.repaired) == (1, 0, 0)
    assert len(discrepancies(CHECK, sale.order)) == 1
    assert SideEffect.objects.count() == writes
    assert (
        SideEffect.objects.filter(operation="sale.link_shipment").count() == 2
    )  # the flow's and the repair's
