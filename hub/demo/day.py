"""Demo day: about 20 orders through ERP -> TMS -> CRM -> ERP, with the things a real day brings
(a delay, a failed delivery, a webhook delivered twice, a milestone arriving late, a shipment still
without proof of delivery, a freight adjustment after invoicing), then a readable summary.

The driver only plays the outside world (hub/demo/world.py) and waits; Crossdock's web, worker and
beat processes do the work: poll the ERP, run the flows, take Karrio's webhooks, keep the CRM and the
ERP in step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db.models import Q

from canonical.models import FreightCharge, Invoice, Order, Shipment, ShipmentEvent, ShipmentException
from canonical.services import record_create
from hub.connections.models import ApiClient
from hub.connections.services import api_client_create, api_client_rotate_key
from hub.deadletters.models import DeadLetter
from hub.demo.setup import POD, TMS, Wiring
from hub.demo.world import World
from hub.inbox.models import InboundMessage
from hub.ledger.models import SideEffect
from hub.workflows.models import WorkflowRun

ORDERS = 20
STAGE_TIMEOUT_S = 420.0  # seconds one stage may take before the demo reports it stuck
POLL_S = 1.0


class Stuck(RuntimeError):
    pass


def wait_for(
    what: str,
    check: Callable[[], tuple[bool, str]],
    say: Callable[[str], None],
    timeout: float = STAGE_TIMEOUT_S,
):
    """Poll ``check`` (-> (done, progress text)) until done; print progress when it changes."""
    deadline, last = time.monotonic() + timeout, ""
    while True:
        done, progress = check()
        if progress != last:
            say(f"    {what}: {progress}")
            last = progress
        if done:
            return
        if time.monotonic() > deadline:
            raise Stuck(
                f"{what} did not finish within {timeout:.0f} s (last: {progress}); see the admin and var/log"
            )
        time.sleep(POLL_S)


@dataclass
class Day:
    stamp: str
    sale_ids: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def orders(self):
        return Order.objects.filter(reference__startswith=f"SO-{self.stamp}-")

    def shipments(self):
        return Shipment.objects.filter(reference__startswith=f"SHP-SO-{self.stamp}-")


def _runs(day: Day, flow: str):
    prefix = f"SHP-SO-{day.stamp}-" if flow != "order_to_ship" else f"SO-{day.stamp}-"
    if flow in ("exception_to_case", "freight_adjustment"):
        return WorkflowRun.objects.filter(flow=flow, subject__startswith=f"SHP-SO-{day.stamp}-")
    return WorkflowRun.objects.filter(flow=flow, business_key__startswith=prefix)


def demo_day(
    *, world: World, wiring: Wiring, stamp: str, say: Callable[[str], None], orders: int = ORDERS
) -> dict:
    day = Day(stamp=stamp)
    start = datetime.now(tz=UTC).replace(microsecond=0)

    say(f"1. The ERP: {orders} sales confirmed (ACME Corp and Globex Ltd)")
    for number in range(orders):
        party = "ACME Corp" if number % 3 else "Globex Ltd"
        lines = [("WIDGET", 1 + number % 4)] + ([("CABLE", 10)] if number % 5 == 0 else [])
        day.sale_ids.append(world.sale(party=party, lines=lines))
    wait_for(
        "orders polled from the ERP",
        lambda: (day.orders().count() >= orders, f"{day.orders().count()}/{orders}"),
        say,
    )

    say("2. order-to-ship: a TMS shipment per order, linked back to the ERP sale, the CRM account updated")
    wait_for(
        "order-to-ship runs completed",
        lambda: (
            _runs(day, "order_to_ship").filter(status="completed").count() >= orders,
            _summary_of(_runs(day, "order_to_ship")),
        ),
        say,
    )
    shipments = list(day.shipments().order_by("reference"))
    trackers = {
        s.reference: SideEffect.objects.get(
            connection=wiring.tms, operation="shipment.create", business_key=s.reference
        ).result.get("tracker_id")
        for s in shipments
    }

    say("3. The carrier scans the parcels (Karrio tracking events -> webhooks -> milestones)")
    delayed, failed, late, no_pod = (shipments[i].reference for i in (1, 2, 3, 4))
    for index, shipment in enumerate(shipments):
        tracker = trackers[shipment.reference]
        t0 = start + timedelta(minutes=index)
        world.scan(tracker, "picked_up", "PU", t0 + timedelta(hours=1), "Montreal, QC")
        if shipment.reference == delayed:
            world.scan(
                tracker,
                "delivery_delayed",
                "DD",
                t0 + timedelta(hours=3),
                "Kingston, ON",
                reason="weather_delay",
            )
        world.scan(tracker, "in_transit", "IT", t0 + timedelta(hours=4), "Kingston, ON")
        if shipment.reference == late:
            continue  # its out-for-delivery scan arrives after the delivery (below)
        world.scan(tracker, "out_for_delivery", "OD", t0 + timedelta(hours=6), "Ottawa, ON")
        if shipment.reference == failed:
            world.scan(
                tracker,
                "delivery_failed",
                "NA",
                t0 + timedelta(hours=7),
                "Ottawa, ON",
                reason="consignee_not_available",
            )
            world.scan(tracker, "out_for_delivery", "OD", t0 + timedelta(hours=26), "Ottawa, ON")
            world.scan(tracker, "delivered", "DL", t0 + timedelta(hours=27), "Ottawa, ON")
            continue
        world.scan(tracker, "delivered", "DL", t0 + timedelta(hours=8), "Ottawa, ON")
    late_tracker = trackers[late]
    world.scan(late_tracker, "delivered", "DL", start + timedelta(hours=9), "Ottawa, ON")
    world.scan(
        late_tracker, "out_for_delivery", "OD", start + timedelta(hours=7), "Ottawa, ON"
    )  # arrives late
    # A webhook delivered twice (a network retry): Crossdock answers "duplicate" and applies nothing.
    message = InboundMessage.objects.filter(connection=wiring.tms).order_by("-received_at").first()
    status = world.resend(
        connection=TMS,
        body=bytes(message.body),
        headers={"Content-Type": "application/json", "X-Event-Id": wiring.karrio_webhook_secret},
    )
    day.notes.append(f"a Karrio webhook delivered twice: the second answered HTTP {status} (duplicate)")
    wait_for(
        "shipments delivered",
        lambda: (
            day.shipments().filter(status="DELIVERED").count() >= len(shipments),
            f"{day.shipments().filter(status='DELIVERED').count()}/{len(shipments)} delivered",
        ),
        say,
    )

    say("4. Proof of delivery arrives (all but one shipment); billing is released shipment by shipment")
    for shipment in shipments:
        if shipment.reference != no_pod:
            world.pod(connection=POD, reference=shipment.reference, at=start + timedelta(hours=30))
    expected_invoices = len(shipments) - 1
    wait_for(
        "invoices posted in the ERP",
        lambda: (
            _runs(day, "ship_to_invoice").filter(status="completed").count() >= expected_invoices,
            _summary_of(_runs(day, "ship_to_invoice")),
        ),
        say,
    )

    say("5. The carrier re-rates one delivered shipment after invoicing: a freight credit")
    adjusted = next(s for s in shipments if s.reference not in (no_pod,))
    record_create(
        model=FreightCharge,
        data={
            "shipment": adjusted,
            "kind": FreightCharge.Kind.ADJUSTMENT,
            "amount": Decimal("-2.50"),
            "currency": adjusted.currency,
            "source_system": "karrio",
            "description": "re-rated: lighter than booked",
            "source_ref": f"rerate:{adjusted.reference}",
        },
    )
    wait_for(
        "credit note posted",
        lambda: (
            _runs(day, "freight_adjustment").filter(status="completed").exists(),
            _summary_of(_runs(day, "freight_adjustment")),
        ),
        say,
    )
    wait_for(
        "exception cases closed",
        lambda: (
            not _runs(day, "exception_to_case")
            .exclude(status__in=["completed", "cancelled", "compensated"])
            .exists()
            and _runs(day, "exception_to_case").exists(),
            _summary_of(_runs(day, "exception_to_case")),
        ),
        say,
    )
    return summary(
        day=day, world=world, wiring=wiring, no_pod=no_pod, delayed=delayed, failed=failed, late=late
    )


def _summary_of(runs) -> str:
    counts: dict[str, int] = {}
    for status in runs.values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "none yet"


def summary(
    *, day: Day, world: World, wiring: Wiring, no_pod: str, delayed: str, failed: str, late: str
) -> dict:
    shipments = day.shipments()
    invoices = Invoice.objects.filter(shipment__in=shipments)
    exceptions = ShipmentException.objects.filter(shipment__in=shipments)
    erp_invoices = world.invoices_of(day.sale_ids)
    return {
        "orders": day.orders().count(),
        "orders shipped (TMS shipments booked)": shipments.exclude(status="CANCELLED").count(),
        "shipments delivered": shipments.filter(status="DELIVERED").count(),
        "late milestones kept without regressing": ShipmentEvent.objects.filter(
            shipment__in=shipments, late=True
        ).count(),
        "CRM cases opened": _runs(day, "exception_to_case").count(),
        "CRM cases closed": _runs(day, "exception_to_case").filter(status="completed").count(),
        f"exceptions (delay on {delayed}, failed delivery on {failed})": exceptions.count(),
        "invoices posted (ERP)": invoices.filter(kind="INVOICE", status="POSTED").count(),
        "credit/debit notes": invoices.exclude(kind="INVOICE").count(),
        "ERP invoices of the day's sales, read back from Tryton (posted)": sum(
            1 for i in erp_invoices if i["state"] in ("posted", "paid")
        ),
        f"invoices held (waiting for POD: {no_pod})": _runs(day, "ship_to_invoice")
        .filter(status="waiting")
        .count(),
        "open dead letters": DeadLetter.objects.filter(status="open")
        .filter(
            Q(connection=wiring.tms)
            | Q(connection=wiring.erp)
            | Q(connection=wiring.crm)
            | Q(connection=wiring.pod)
        )
        .count(),
        "side effects written (ledger)": SideEffect.objects.filter(status="done").count(),
        "notes": day.notes,
        "late": late,
    }


def demo_api_key() -> str:
    """A fresh admin API key for the demo's POD feed (kept by name, rotated each run)."""
    client = ApiClient.objects.filter(name="demo-pod-feed").first()
    if client is None:
        return api_client_create(name="demo-pod-feed", admin=True).key
    return api_client_rotate_key(client=client)
