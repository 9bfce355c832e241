"""The world around Crossdock on demo day: people entering sales in the ERP, a carrier scanning
parcels (tracking events injected through Karrio's documented test endpoint), a POD feed.

It talks to the peers as their users would, through the connectors' own clients and Crossdock's
public inbound API; Crossdock's workers do everything else.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests

from connectors.karrio.client import KarrioClient
from connectors.tryton.client import TrytonClient
from connectors.tryton.operations import cursor_format
from hub.core.http import SafeHttpClient

PEERS_DIR = Path(__file__).resolve().parents[2] / "peers"


def peer_env(name: str) -> dict[str, str]:
    """``peers/<name>.sh env`` as a dict (URLs and credentials of a running peer)."""
    out = subprocess.run(  # noqa: S603  (our own script, fixed arguments)
        [shutil.which("bash") or "/bin/bash", str(PEERS_DIR / f"{name}.sh"), "env"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


@dataclass
class World:
    tryton: TrytonClient
    karrio: KarrioClient
    inbound_base: str  # e.g. http://127.0.0.1:8000/api/v1/inbound
    api_key: str  # an admin API key of Crossdock (the POD feed posts with it)

    @classmethod
    def connect(cls, *, envs: dict[str, dict[str, str]], inbound_base: str, api_key: str) -> World:
        http = SafeHttpClient(read_timeout_s=60)
        erp, tms = envs["tryton"], envs["karrio"]
        return cls(
            tryton=TrytonClient(
                http,
                url=erp["TRYTON_URL"],
                database=erp["TRYTON_DB"],
                username=erp["TRYTON_USER"],
                password=erp["TRYTON_PASSWORD"],
            ),
            karrio=KarrioClient(http, tms["KARRIO_URL"], tms["KARRIO_API_KEY"]),
            inbound_base=inbound_base.rstrip("/"),
            api_key=api_key,
        )

    # --- the ERP: a sales clerk confirms an order ---------------------------------------------------

    def erp_cursor_now(self) -> str:
        """A poll cursor at the ERP's clock now: the day's polling starts with the day's sales."""
        answer = self.tryton.call_answer("model.res.user.get_preferences", True)
        now = (answer.server_time or datetime.now(tz=UTC)).astimezone(UTC).replace(tzinfo=None)
        return cursor_format(now, 0)

    def _one(self, model: str, domain: list, fields: list[str]) -> dict[str, Any]:
        rows = self.tryton.call(f"model.{model}.search_read", domain, 0, 1, None, fields)
        if not rows:
            raise LookupError(f"the ERP has no {model} matching {domain}")
        return rows[0]

    def sale(self, *, party: str, lines: list[tuple[str, int]]) -> int:
        """A confirmed sale (quote then confirm; Tryton processes it into a shipment and an invoice)."""
        party_row = self._one("party.party", [["name", "=", party]], ["addresses"])
        term = self._one("account.invoice.payment_term", [["name", "=", "Direct"]], ["id"])["id"]
        carrier = self._one("carrier", [["party.name", "=", "Speedy Freight"]], ["id"])["id"]
        sale_lines = []
        for code, quantity in lines:
            product = self._one(
                "product.product", [["code", "=", code]], ["default_uom", "template.list_price"]
            )
            sale_lines.append(
                {
                    "type": "line",
                    "product": product["id"],
                    "quantity": float(quantity),
                    "unit": product["default_uom"],
                    "unit_price": Decimal(str(product["template."]["list_price"])),
                }
            )
        (sale_id,) = self.tryton.call(
            "model.sale.sale.create",
            [
                {
                    "party": party_row["id"],
                    "invoice_address": party_row["addresses"][0],
                    "shipment_address": party_row["addresses"][0],
                    "payment_term": term,
                    "carrier": carrier,
                    "lines": [["create", sale_lines]],
                }
            ],
        )
        self.tryton.call("model.sale.sale.quote", [sale_id])
        self.tryton.call("model.sale.sale.confirm", [sale_id])
        return sale_id

    def invoices_of(self, sale_ids: list[int]) -> list[dict[str, Any]]:
        """The ERP's customer invoices and credit notes of these sales, as the ERP has them."""
        sales = self.tryton.call("model.sale.sale.read", sale_ids, ["invoices"])
        ids = sorted({invoice for sale in sales for invoice in sale["invoices"]})
        return (
            self.tryton.call("model.account.invoice.read", ids, ["number", "state", "total_amount"])
            if ids
            else []
        )

    # --- the carrier: scans, through Karrio ----------------------------------------------------------

    def scan(self, tracker_id: str, status: str, code: str, at: datetime, where: str, **extra: Any) -> None:
        when = at.astimezone(UTC)
        event = {
            "date": when.strftime("%Y-%m-%d"),
            "time": when.strftime("%H:%M"),
            "timestamp": when.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "status": status,
            "code": code,
            "description": status.replace("_", " "),
            "location": where,
            **{k: v for k, v in extra.items() if k == "reason"},
        }
        body: dict[str, Any] = {"status": status, "events": [event]}
        if status == "delivered":
            body["delivered"] = True
        self.karrio.call("POST", f"/v1/trackers/{tracker_id}/inject-events", body=body)

    # --- a POD feed: the carrier's proof-of-delivery images, as canonical events -----------------------

    def pod(self, *, connection: str, reference: str, at: datetime) -> int:
        response = requests.post(
            f"{self.inbound_base}/{connection}/",
            json={
                "event_id": f"pod:{reference}",
                "event_type": "POD_RECEIVED",
                "occurred_at": at.isoformat(),
                "shipment": {"reference": reference},
                "details": {"signed_by": "J. Receiver"},
            },
            headers={"Authorization": f"Token {self.api_key}"},
            timeout=30,
        )
        return response.status_code

    def resend(self, *, connection: str, body: bytes, headers: dict[str, str]) -> int:
        """A webhook delivered a second time (a network retry): Crossdock must answer 'duplicate'."""
        response = requests.post(f"{self.inbound_base}/{connection}/", data=body, headers=headers, timeout=30)
        return response.status_code


def day_times(start: datetime, hours: float) -> datetime:
    return start + timedelta(hours=hours)
