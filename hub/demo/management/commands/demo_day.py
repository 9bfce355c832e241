"""Drive demo day against the running peers and a running Crossdock (./crossdock up does this)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from bench.sink import Sink
from hub.connections.models import Connection
from hub.demo import day as demo
from hub.demo.reconcile import demo_reconcile
from hub.demo.setup import NOTIFY, demo_wire
from hub.demo.world import World, peer_env
from hub.outbox.models import Delivery

DRAIN_WAIT_S = 60  # seconds to let the last customer notifications go out before the demo's sink stops


class Command(BaseCommand):
    help = "Wire Crossdock to the Tryton, Karrio and BottleCRM peers and drive a day of orders."

    def add_arguments(self, parser):
        parser.add_argument(
            "--base-url", required=True, help="Where this Crossdock answers, e.g. http://127.0.0.1:8000"
        )
        parser.add_argument("--orders", type=int, default=demo.ORDERS)

    def handle(self, *args, base_url: str, orders: int, **options):
        say = self.stdout.write
        base_url = base_url.rstrip("/")
        try:
            envs = {name: peer_env(name) for name in ("tryton", "karrio", "bottlecrm")}
        except Exception as exc:
            raise CommandError(f"the peers are not reachable ({exc}); run peers/all.sh ensure") from None
        stamp = datetime.now(tz=UTC).strftime("%m%d%H%M")
        sink = Sink().start()  # the customers' notification endpoint, for the length of the demo
        wiring = None
        try:
            say(f"Wiring Crossdock to the peers (connections, mappings, subscriptions, flows); day {stamp}")
            wiring = demo_wire(envs=envs, base_url=base_url, stamp=stamp, notify_url=sink.url)
            world = World.connect(
                envs=envs, inbound_base=f"{base_url}/api/v1/inbound", api_key=demo.demo_api_key()
            )
            # The day's polling starts with the day's sales, not the ERP's whole history.
            Connection.objects.filter(pk=wiring.erp.pk).update(
                poll_cursor=world.erp_cursor_now(), poll_interval_s=5
            )
            started = time.monotonic()
            try:
                result = demo.demo_day(world=world, wiring=wiring, stamp=stamp, say=say, orders=orders)
            except demo.Stuck as exc:
                raise CommandError(str(exc)) from None
            deadline = time.monotonic() + DRAIN_WAIT_S
            while (
                Delivery.objects.filter(
                    subscription__connection__slug=NOTIFY, status__in=["pending", "in_flight"]
                ).exists()
                and time.monotonic() < deadline
            ):
                time.sleep(1)
            notified = sum(1 for r in sink.state.received if r["status"] == 200)
            say("Reconciling the three systems (every check, once)")
            reconciled = demo_reconcile(wiring=wiring)
        finally:
            sink.stop()
            if wiring is not None and wiring.notify is not None:
                wiring.notify.subscriptions.update(is_active=False)  # its endpoint is gone
        elapsed = time.monotonic() - started
        say("")
        say(self.style.SUCCESS(f"Demo day {stamp}: done in {elapsed:.0f} s"))
        for label, value in result.items():
            if label in ("notes", "late"):
                continue
            say(f"  {label:<62} {value}")
        say(f"  {'customer notifications delivered (webhook)':<62} {notified}")
        for note in result["notes"]:
            say(f"  - {note}")
        say(f"  - a late milestone on {result['late']} was kept in its timeline without regressing it")
        say("")
        say("Reconciliation (found / repaired / left open):")
        for outcome in reconciled:
            figures = f"{outcome.found} / {outcome.repaired} / {outcome.left_open}"
            failed = f"  FAILED: {outcome.error[:160]}" if outcome.status != "succeeded" else ""
            say(f"  {outcome.check:<22} {figures}{failed}")
        say(f"  open discrepancies: {base_url}/admin/reconciliation/discrepancy/?status__exact=open")
        say("")
        say("Look around:")
        for label, path in (
            ("Workflow runs (steps as a timeline)", "/admin/workflows/workflowrun/"),
            ("Orders", "/admin/canonical/order/"),
            ("Shipments", "/admin/canonical/shipment/"),
            ("Invoices", "/admin/canonical/invoice/"),
            ("Writes to the peers (side-effect ledger)", "/admin/ledger/sideeffect/"),
            ("Dead letters", "/admin/deadletters/deadletter/"),
            ("Reconciliation runs", "/admin/reconciliation/reconciliationrun/"),
            ("Mappings", "/admin/mappings/mapping/"),
            ("Ops dashboard", "/ops/"),
        ):
            say(f"  {label:<42} {base_url}{path}")
