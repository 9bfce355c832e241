"""Connections of the three peers' connectors saved in the hub, pointing at 127.0.0.1 (the tests that
use them take ``private_networks``); nothing in the unit tests calls them."""

from __future__ import annotations

import json

from hub.connections.models import Connection
from hub.connections.services import connection_save

SHIPPER = {
    "person_name": "Dock 4",
    "address_line1": "1 Dock St",
    "city": "Montreal",
    "postal_code": "H2B1A0",
    "country_code": "CA",
}


def connections() -> dict[str, Connection]:
    erp = connection_save(
        data={
            "slug": "rec-erp",
            "system": "erp",
            "connector": "tryton",
            "config": {"url": "http://127.0.0.1:18010", "database": "db", "username": "admin"},
        },
        secret="pw",
    )
    tms = connection_save(
        data={
            "slug": "rec-tms",
            "system": "tms",
            "connector": "karrio",
            "config": {
                "url": "http://127.0.0.1:18110",
                "carrier_id": "offline",
                "service": "offline_standard",
                "shipper": SHIPPER,
            },
        },
        secret=json.dumps({"api_key": "key_x", "webhook_secret": "whsec_x"}),
    )
    crm = connection_save(
        data={
            "slug": "rec-crm",
            "system": "crm",
            "connector": "bottlecrm",
            "config": {"url": "http://127.0.0.1:18210"},
        },
        secret="bcrm_pat_x",
    )
    return {"erp": erp, "tms": tms, "crm": crm}
