"""Demo day's wiring: connections to the three peers, mappings, subscriptions and the flows.

Everything here is what an operator would do in the admin, done through the same services, and is
idempotent: running the demo again updates the connections (the peers' credentials may have
changed) and publishes a new ERP mapping version for the day (its order references carry the day's
stamp, so days never collide).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from connectors import registry
from hub.connections.models import Connection, Subscription
from hub.connections.services import connection_save, subscription_save
from hub.mappings.context import connection_context
from hub.mappings.services import mapping_publish, mapping_save
from hub.workflows.triggers import flow_config_save

ERP, TMS, CRM, POD, NOTIFY = "erp-tryton", "tms-karrio", "crm-bottlecrm", "carrier-pod", "customer-notify"
FLOWS = ("order_to_ship", "ship_to_invoice", "exception_to_case", "freight_adjustment")
SHIPPER = {
    "person_name": "Warehouse A",
    "company_name": "Peer Logistics Inc.",
    "address_line1": "1 Dock St",
    "city": "Montreal",
    "postal_code": "H2B1A0",
    "state_code": "QC",
    "country_code": "CA",
}


@dataclass(frozen=True)
class Wiring:
    erp: Connection
    tms: Connection
    crm: Connection
    pod: Connection
    notify: Connection | None
    karrio_webhook_secret: str


def _upsert(slug: str, *, data: dict, secret: str | None) -> Connection:
    existing = Connection.objects.filter(slug=slug).first()
    return connection_save(instance=existing, data={"slug": slug, **data}, secret=secret)


def _subscribe(connection: Connection, event_types: list[str], description: str) -> None:
    if not Subscription.objects.filter(connection=connection, description=description).exists():
        subscription_save(
            data={"connection": connection, "event_types": event_types, "description": description}
        )


def demo_wire(
    *, envs: dict[str, dict[str, str]], base_url: str, stamp: str, notify_url: str | None
) -> Wiring:
    erp_env, tms_env, crm_env = envs["tryton"], envs["karrio"], envs["bottlecrm"]
    erp = _upsert(
        ERP,
        data={
            "name": "Tryton ERP (sales, invoicing)",
            "system": "erp",
            "connector": "tryton",
            "config": {
                "url": erp_env["TRYTON_URL"],
                "database": erp_env["TRYTON_DB"],
                "username": erp_env["TRYTON_USER"],
                "settle_s": 1,
                # The peer runs Tryton on SQLite, which numbered two invoices posted at once alike.
                "serialize_writes": True,
                "page_size": 50,
            },
            "poll_interval_s": None,  # switched on by the demo once the cursor is set (demo_day)
            "is_active": True,
        },
        secret=erp_env["TRYTON_PASSWORD"],
    )
    # The day's order references: SO-<stamp>-<sale number>, a published mapping version.
    mapping_publish(
        mapping=mapping_save(
            connection=erp,
            direction="inbound",
            data={"fields": {"reference": f"SO-{stamp}-{{number}}"}},
            notes=f"demo day {stamp}: order references carry the day's stamp",
        ),
        user="demo",
    )
    tms = _upsert(
        TMS,
        data={
            "name": "Karrio TMS (offline carrier)",
            "system": "tms",
            "connector": "karrio",
            "config": {
                "url": tms_env["KARRIO_URL"],
                "carrier_id": tms_env["KARRIO_CARRIER_ID"],
                "service": "offline_standard",
                "shipper": SHIPPER,
            },
            "is_active": True,
        },
        secret=json.dumps({"api_key": tms_env["KARRIO_API_KEY"]}),  # the webhook secret is added below
    )
    # Karrio's webhooks point at Crossdock's inbound URL (configuration, so not a ledger write: the
    # operation finds the existing webhook for the URL and returns its secret).
    hook = (
        registry.get("karrio")
        .instance()
        .operate(
            "webhook.register",
            {"url": f"{base_url}/api/v1/inbound/{TMS}/", "enabled_events": ["all"]},
            connection_context(tms, direction="outbound"),
        )
    )
    webhook_secret = str(hook.data.get("secret") or "")
    connection_save(
        instance=tms,
        data={},
        secret=json.dumps({"api_key": tms_env["KARRIO_API_KEY"], "webhook_secret": webhook_secret}),
    )
    crm = _upsert(
        CRM,
        data={
            "name": "BottleCRM (account team, cases)",
            "system": "crm",
            "connector": "bottlecrm",
            "config": {"url": crm_env["CRM_URL"]},
            "is_active": True,
        },
        secret=crm_env["CRM_PAT"],
    )
    _subscribe(crm, [], "every shipment update to the account team")
    pod = _upsert(
        POD,
        data={
            "name": "Carrier POD feed",
            "system": "carrier",
            "connector": "canonical",
            "config": {},
            "is_active": True,
        },
        secret=None,
    )
    notify = None
    if notify_url:
        notify = _upsert(
            NOTIFY,
            data={
                "name": "Customer notifications (webhook)",
                "system": "partner",
                "connector": "webhook",
                "config": {"url": notify_url, "max_attempts": 3, "backoff_base_s": 1},
                "is_active": True,
            },
            secret="demo-notify-secret",
        )
        _subscribe(notify, ["OUT_FOR_DELIVERY", "DELIVERED", "DELAYED"], "customer notifications")
    connections = {"erp": ERP, "tms": TMS, "crm": CRM}
    for flow in FLOWS:
        flow_config_save(flow=flow, enabled=True, connections=connections)
    return Wiring(erp=erp, tms=tms, crm=crm, pod=pod, notify=notify, karrio_webhook_secret=webhook_secret)
