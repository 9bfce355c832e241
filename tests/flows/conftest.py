"""The process flows (hub/workflows/flows) against the three live peers: Tryton (ERP), Karrio (TMS)
and BottleCRM (CRM), all brought up by ``peers/<key>.sh ensure``.

The peers are shared (CI, other sessions, the connector tests), so nothing here resets them or
relies on them being empty: every test makes its own Tryton customer (party) and sale, and the
ERP connection's inbound field map prefixes the order reference and customer code with a token
unique to this session. Tryton's sale and party numbers restart after a peer reset, and Karrio and
the CRM key their records by those references, so without the token a later session would find an
earlier session's Karrio shipment or CRM notes under the same reference.

Karrio's webhooks reach the hub through pytest-django's ``live_server`` (registered once per
session, removed at the end); steps run outside transactions, so every test uses
``transactional_db``. ``Hub`` drives the hub's own services the way the workers and the beat
sweeper do (poll, drain, trigger scan, advance), scoped to the test's own orders and shipments.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import requests
from django.db.models import Q

from canonical.models import Customer, Order, Shipment, ShipmentException
from connectors import registry
from connectors.bottlecrm.client import CrmApi
from connectors.tryton.client import TrytonClient
from connectors.tryton.operations import cursor_format
from hub.connections.models import Connection
from hub.connections.services import connection_save
from hub.core.http import SafeHttpClient
from hub.inbox.polling import connection_poll
from hub.inbox.services import inbound_message_receive, inbox_drain
from hub.mappings.context import connection_context
from hub.mappings.services import mapping_publish, mapping_save
from hub.outbox.services import outbox_drain
from hub.workflows.models import WorkflowRun
from hub.workflows.services import workflow_advance, workflows_due
from hub.workflows.triggers import flow_config_save, workflow_triggers_scan
from tests.support.peers import SHIPPER, PeerApi, peer_script_or_fail

RUN = uuid.uuid4().hex[:6].upper()  # this session's token in order references and customer codes
READ_TIMEOUT_S = 60.0  # seconds per peer call: Tryton's confirm/post take 1-2 s, more on a busy box
SLUGS = {"erp": "flows-erp", "tms": "flows-tms", "crm": "flows-crm", "partner": "flows-partner"}
FLOWS = ("order_to_ship", "ship_to_invoice", "exception_to_case", "freight_adjustment")


def peer(key: str, verb: str, *, timeout: float = 900) -> str:
    """``peers/<key>.sh <verb>`` (stdin closed, as in CI); its stdout. Fails the test loudly."""
    return peer_script_or_fail(key, verb, timeout=timeout)


def peer_env(key: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in peer(key, "env").splitlines() if "=" in line)


# --- The peers, read back through their own APIs -------------------------------------------------------


class Karrio(PeerApi):
    def __init__(self, env: dict[str, str]):
        self.url, self.api_key, self.carrier_id = (
            env["KARRIO_URL"],
            env["KARRIO_API_KEY"],
            env["KARRIO_CARRIER_ID"],
        )
        self.api = requests.Session()
        self.api.trust_env = False
        self.api.headers["Authorization"] = f"Token {self.api_key}"

    def records(self, resource: str, **filters: str) -> list[dict]:
        """Karrio's ``resource`` whose fields equal ``filters`` exactly, any status (its list filters
        match loosely, so each record is compared again)."""
        found = self.get(f"/v1/{resource}", limit=1000, **filters)["results"]
        return [record for record in found if all(record.get(k) == v for k, v in filters.items())]

    def inject(self, tracker_id: str, status: str, *events: dict, **extra: Any) -> None:
        """Karrio's test endpoint: the carrier reports ``events``; Karrio sends its webhooks before
        it answers (immediate mode), so they have reached the hub when this returns."""
        self.post(
            f"/v1/trackers/{tracker_id}/inject-events", {"status": status, "events": list(events), **extra}
        )


def tracking_event(
    day: int, status: str, code: str, *, hour: int = 10, location: str = "Ottawa, ON", **extra
):
    """One carrier tracking event on 2030-03-<day> (far ahead of any real event of the peer)."""
    return {
        "date": f"2030-03-{day:02d}",
        "time": f"{hour:02d}:00",
        "timestamp": f"2030-03-{day:02d}T{hour:02d}:00:00.000Z",
        "status": status,
        "code": code,
        "description": status.replace("_", " "),
        "location": location,
        **extra,
    }


def crm_notes(crm: CrmApi, account_id: str, reference: str) -> list[str]:
    """The status notes the hub wrote on the account for shipment ``reference`` (by their marker)."""
    comments = crm.account_get(account_id).get("comments") or []
    tag = f"[crossdock shipment.status {reference}#"
    return [c["comment"] for c in comments if tag in (c.get("comment") or "")]


def crm_cases(crm: CrmApi, reference: str, exception_type: str) -> list[dict]:
    """The CRM's cases for one shipment and exception type, any status (the CRM's own filter)."""
    return [
        case
        for case in crm.cases_list(cf_shipment_id=reference, cf_exception_type=exception_type)
        if (case.get("custom_fields") or {}).get("shipment_id") == reference
        and (case.get("custom_fields") or {}).get("exception_type") == exception_type
    ]


def crm_accounts(crm: CrmApi, code: str) -> list[dict]:
    return [
        account
        for account in crm.accounts_by_custom_field("erp_customer_id", code)
        if (account.get("custom_fields") or {}).get("erp_customer_id") == code
    ]


# --- Session fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def peers_up() -> dict[str, dict[str, str]]:
    """The three peers running (installed and initialised on a fresh machine: minutes, once)."""
    started = time.monotonic()
    envs = {}
    for key in ("tryton", "karrio", "bottlecrm"):
        peer(key, "ensure")
        envs[key] = peer_env(key)
    print(f"\n[flows] peers ensured in {time.monotonic() - started:.1f}s; session token {RUN}")
    return envs


@pytest.fixture(scope="session")
def karrio(peers_up) -> Karrio:
    return Karrio(peers_up["karrio"])


@pytest.fixture(scope="session")
def karrio_webhook(karrio, live_server):
    """Karrio's webhook to this session's live server (the TMS connection's inbound URL); removed at
    the end so the shared Karrio does not keep calling a dead port."""
    url = f"{live_server.url}/api/v1/inbound/{SLUGS['tms']}/"
    hook = karrio.post("/v1/webhooks", {"url": url, "enabled_events": ["all"], "description": f"flows {RUN}"})
    yield hook
    karrio.api.delete(f"{karrio.url}/v1/webhooks/{hook['id']}", timeout=30)


# --- The hub, wired to the peers -----------------------------------------------------------------------


@dataclass
class Sale:
    id: int
    number: str
    party_id: int
    order: str  # the canonical order reference (session token + sale number)
    shipment: str  # the canonical shipment reference order-to-ship gives it

    @property
    def customer_code(self) -> str:
        return Order.objects.get(reference=self.order).customer.code


@dataclass
class Hub:
    """The hub's connections to the peers, the flows switched on, and the workers' loop."""

    erp: Connection
    tms: Connection
    crm: Connection
    partner: Connection
    tryton: TrytonClient
    crm_api: CrmApi
    karrio: Karrio
    karrio_webhook: dict
    orders: set[str] = field(default_factory=set)
    parties: dict[str, int] = field(default_factory=dict)

    # --- Tryton (test setup goes through the connector's own client) ------------------------------

    def party(self, name: str | None = None) -> int:
        """A customer of the test's own (a new Tryton party, its code from Tryton's sequence)."""
        name = name or f"Flows {RUN} {uuid.uuid4().hex[:6]}"
        (country,) = self.tryton.call("model.country.country.search", [["code", "=", "US"]], 0, 1, None)
        (party_id,) = self.tryton.call(
            "model.party.party.create",
            [
                {
                    "name": name,
                    "addresses": [
                        [
                            "create",
                            [
                                {
                                    "street": "1 Main Street",
                                    "city": "Springfield",
                                    "postal_code": "62701",
                                    "country": country,
                                }
                            ],
                        ]
                    ],
                    "contact_mechanisms": [
                        ["create", [{"type": "email", "value": f"ops-{uuid.uuid4().hex[:6]}@flows.example"}]]
                    ],
                }
            ],
        )
        self.parties[name] = party_id
        return party_id

    def sale(self, *, lines=(("WIDGET", 3),), party_id: int | None = None) -> Sale:
        """A sale created and confirmed in Tryton (processed at once: shipment and draft invoice)."""
        party_id = party_id or self.party()
        (party,) = self.tryton.call("model.party.party.read", [party_id], ["addresses"])
        (term,) = self.tryton.call(
            "model.account.invoice.payment_term.search", [["name", "=", "Direct"]], 0, 1, None
        )
        (carrier,) = self.tryton.call(
            "model.carrier.search", [["party.name", "=", "Speedy Freight"]], 0, 1, None
        )
        sale_lines = []
        for code, quantity in lines:
            (product,) = self.tryton.call(
                "model.product.product.search_read",
                [["code", "=", code]],
                0,
                1,
                None,
                ["default_uom", "template.list_price"],
            )
            sale_lines.append(
                {
                    "type": "line",
                    "product": product["id"],
                    "quantity": float(quantity),
                    "unit": product["default_uom"],
                    "unit_price": product["template."]["list_price"],
                }
            )
        (sale_id,) = self.tryton.call(
            "model.sale.sale.create",
            [
                {
                    "party": party_id,
                    "invoice_address": party["addresses"][0],
                    "shipment_address": party["addresses"][0],
                    "payment_term": term,
                    "carrier": carrier,
                    "lines": [["create", sale_lines]],
                }
            ],
        )
        self.tryton.call("model.sale.sale.quote", [sale_id])
        self.tryton.call("model.sale.sale.confirm", [sale_id])
        (row,) = self.tryton.call("model.sale.sale.read", [sale_id], ["number", "state"])
        assert row["state"] == "processing", row
        order = f"{RUN}-{row['number']}"
        self.orders.add(order)
        return Sale(sale_id, row["number"], party_id, order, f"SHP-{order}")

    def sale_read(self, sale_id: int, fields: list[str]) -> dict:
        (row,) = self.tryton.call("model.sale.sale.read", [sale_id], fields)
        return row

    def invoices(self, party_id: int) -> list[dict]:
        """Every customer invoice and note of the party (type out), not cancelled, oldest first."""
        return self.tryton.call(
            "model.account.invoice.search_read",
            [["party", "=", party_id], ["type", "=", "out"], ["state", "!=", "cancelled"]],
            0,
            None,
            [["id", "ASC"]],
            ["number", "state", "total_amount", "reference", "description", "sales"],
        )

    def posted_invoices(self, sale_id: int) -> list[dict]:
        """The sale's own invoices (their lines come from its lines) that are posted or paid."""
        return self.tryton.call(
            "model.account.invoice.search_read",
            [["sales", "=", sale_id], ["state", "in", ["posted", "paid"]]],
            0,
            None,
            [["id", "ASC"]],
            ["number", "state", "total_amount", "lines"],
        )

    # --- The hub's workers, as the beat sweeper and the queues would run them ----------------------

    def poll(self) -> int:
        """One poll of the ERP (its cursor starts at this test's first sale) and the inbox drained."""
        stored = connection_poll(connection_id=self.erp.pk)
        inbox_drain(budget_s=60)
        return stored

    def receive(self, document: dict | list, *, connection: Connection | None = None) -> None:
        """A canonical document (a milestone, a POD, a freight charge) received from the partner
        connection, as its inbound endpoint stores it, then the inbox drained."""
        body = json.dumps(document).encode()
        inbound_message_receive(
            connection=connection or self.partner,
            body=body,
            content_type="application/json",
            headers={"content-type": "application/json"},
            idempotency_key=None,
            correlation_id=f"flows-{uuid.uuid4().hex[:8]}",
        )
        inbox_drain(budget_s=60)

    def milestone(self, shipment: str, event_type: str, occurred_at: str, **extra: Any) -> None:
        self.receive(
            {
                "event_id": f"{shipment}:{event_type}:{occurred_at}",
                "event_type": event_type,
                "occurred_at": occurred_at,
                "shipment": {"reference": shipment},
                **extra,
            }
        )

    def mine(self) -> Q:
        shipments = [f"SHP-{order}" for order in self.orders]
        return Q(business_key__in=self.orders) | Q(business_key__in=shipments) | Q(subject__in=shipments)

    def settle(self, *, rounds: int = 6) -> None:
        """What the workers do until nothing of this test is due: drain the inbox, start runs for new
        facts, advance due runs (only the test's own: the shared ERP may hand over others' sales)."""
        for _ in range(rounds):
            inbox_drain(budget_s=60)
            workflow_triggers_scan()
            due = set(workflows_due())
            runs = list(WorkflowRun.objects.filter(self.mine(), pk__in=due).values_list("pk", flat=True))
            if not runs:
                return
            for run_id in runs:
                workflow_advance(run_id=run_id)

    def deliver_outbox(self) -> None:
        """The outbox drained until no delivery is due (CRM status notes through the ledger)."""
        for _ in range(5):
            if not outbox_drain(budget_s=60):
                return

    def run(self, flow: str, business_key: str) -> WorkflowRun:
        return WorkflowRun.objects.get(flow=flow, business_key=business_key)

    def ship(self, *, lines=(("WIDGET", 3),), party_id: int | None = None) -> tuple[Sale, WorkflowRun]:
        """A confirmed Tryton sale taken through order-to-ship: polled, booked in Karrio (its booking
        webhook applied), linked back, shown in the CRM."""
        sale = self.sale(lines=lines, party_id=party_id)
        self.poll()
        self.settle()
        return sale, self.run("order_to_ship", sale.order)

    def shipment(self, sale: Sale) -> Shipment:
        return Shipment.objects.get(reference=sale.shipment)

    def karrio_shipment(self, sale: Sale) -> dict:
        (found,) = [
            s for s in self.karrio.records("shipments", reference=sale.shipment) if s["status"] != "cancelled"
        ]
        return found

    def sale_delivered_without_pod_hold(self, *, lines=(("WIDGET", 2),)) -> Sale:
        """A sale polled in for a customer invoiced on delivery (no POD hold), its shipment bought in
        Karrio and reported delivered there (the delivery is not settled yet)."""
        sale = self.sale(lines=lines)
        self.poll()
        Customer.objects.filter(orders__reference=sale.order).update(hold_invoice_until_pod=False)
        self.settle()
        tracker = self.karrio_shipment(sale)["tracker_id"]
        self.karrio.inject(tracker, "delivered", tracking_event(2, "delivered", "DL"), delivered=True)
        return sale

    def exceptions(self, sale: Sale) -> list[ShipmentException]:
        return list(ShipmentException.objects.filter(shipment__reference=sale.shipment).order_by("opened_at"))


def _latest_cursor(tryton: TrytonClient) -> str | None:
    """The ERP poll cursor past every sale that exists now (the test's sales come after it)."""
    rows = tryton.call(
        "model.sale.sale.search_read",
        [],
        0,
        1,
        [["last_modified_at", "DESC"], ["id", "DESC"]],
        ["last_modified_at"],
    )
    if not rows:
        return None
    stamp = rows[0]["last_modified_at"]
    if isinstance(stamp, datetime) and stamp.tzinfo is not None:
        stamp = stamp.astimezone(UTC).replace(tzinfo=None)
    return cursor_format(stamp, rows[0]["id"])


@pytest.fixture
def hub(peers_up, karrio, karrio_webhook, transactional_db, settings) -> Hub:
    """Connections to the three peers and a canonical partner feed, the ERP's field map with this
    session's token, the four flows switched on."""
    settings.CROSSDOCK_ALLOW_PRIVATE_NETWORKS = True  # the peers listen on 127.0.0.1
    tryton_env, crm_env = peers_up["tryton"], peer_env("bottlecrm")  # a CRM reset issues a new token
    erp = connection_save(
        data={
            "slug": SLUGS["erp"],
            "name": "Tryton (peer)",
            "system": "erp",
            "connector": "tryton",
            "config": {
                "url": tryton_env["TRYTON_URL"],
                "database": tryton_env["TRYTON_DB"],
                "username": tryton_env["TRYTON_USER"],
                "settle_s": 0,
                "timeout_s": READ_TIMEOUT_S,
            },
            "poll_interval_s": 60,
        },
        secret=tryton_env["TRYTON_PASSWORD"],
    )
    draft = mapping_save(
        connection=erp,
        direction="inbound",
        data={"fields": {"reference": f"{RUN}-{{number}}", "customer.code": f"TRY-{RUN}-{{party.code}}"}},
        notes="flows tests: session token (Tryton numbers restart after a peer reset)",
    )
    mapping_publish(mapping=draft, user="tests")
    tms = connection_save(
        data={
            "slug": SLUGS["tms"],
            "name": "Karrio (peer)",
            "system": "tms",
            "connector": "karrio",
            "config": {
                "url": karrio.url,
                "carrier_id": karrio.carrier_id,
                "service": "offline_standard",
                "shipper": SHIPPER,
                "timeout_s": 60,
            },
        },
        secret=json.dumps({"api_key": karrio.api_key, "webhook_secret": karrio_webhook["secret"]}),
    )
    crm = connection_save(
        data={
            "slug": SLUGS["crm"],
            "name": "BottleCRM (peer)",
            "system": "crm",
            "connector": "bottlecrm",
            "config": {"url": crm_env["CRM_URL"], "timeout_s": 30},
        },
        secret=crm_env["CRM_PAT"],
    )
    partner = connection_save(
        data={
            "slug": SLUGS["partner"],
            "name": "Partner feed",
            "system": "partner",
            "connector": "canonical",
            "config": {},
        },
        secret="flows-partner-secret",
    )
    roles = {role: SLUGS[role] for role in ("erp", "tms", "crm")}
    for flow in FLOWS:
        flow_config_save(flow=flow, enabled=True, connections=roles)
    tryton = TrytonClient.from_context(connection_context(erp, direction="outbound"))
    Connection.objects.filter(pk=erp.pk).update(poll_cursor=_latest_cursor(tryton) or "")
    erp.refresh_from_db()
    return Hub(
        erp=erp,
        tms=tms,
        crm=crm,
        partner=partner,
        tryton=tryton,
        crm_api=CrmApi(
            url=crm_env["CRM_URL"], token=crm_env["CRM_PAT"], http=SafeHttpClient(read_timeout_s=30)
        ),
        karrio=karrio,
        karrio_webhook=karrio_webhook,
    )


def money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def connector(key: str):
    return registry.get(key).instance()
