"""Driving the Tryton peer (peers/tryton.sh) from tests and the fixture capture script.

No Django here: ``tests/fixtures/tryton/capture.py`` imports this module as a plain script.
Business setup (creating and confirming sales, finishing shipments) goes through the connector's
own ``TrytonClient``, the same JSON-RPC client the connector uses.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from connectors.tryton.client import TrytonClient
from tests.support.peers import peer_script, peer_script_env


def peer(verb: str, timeout: float = 600) -> str:
    """Run ``peers/tryton.sh <verb>`` (stdin closed) and return its stdout; fail loudly."""
    return peer_script("tryton", verb, timeout=timeout)


def peer_env() -> dict[str, str]:
    return peer_script_env("tryton")


def config_data(env: dict[str, str], **overrides: Any) -> dict[str, Any]:
    return {
        "url": env["TRYTON_URL"],
        "database": env["TRYTON_DB"],
        "username": env["TRYTON_USER"],
        **overrides,
    }


def _one(client: TrytonClient, model: str, domain: list, fields: list[str]) -> dict[str, Any]:
    rows = client.call(f"model.{model}.search_read", domain, 0, 2, None, fields)
    assert len(rows) == 1, f"{model} {domain}: expected one record, found {len(rows)}"
    return rows[0]


def sale_create(
    client: TrytonClient,
    *,
    party: str = "ACME Corp",
    lines: Iterable[tuple[str, float] | tuple[str, float, str]] = (("WIDGET", 5),),
    comments: Iterable[str] = (),
    carrier: bool = True,
    shipment_cost: bool = True,
    reference: str | None = None,
    comment: str | None = None,
    description: str | None = None,
) -> int:
    """A draft sale for ``party`` with product lines (code, quantity[, unit price]) and comment lines.

    RPC ``create`` runs no on_change, so unit, price and addresses are given explicitly. Without
    ``carrier`` or ``shipment_cost`` the sale has no shipment cost method: no freight line at quote.
    """
    party_row = _one(client, "party.party", [["name", "=", party]], ["addresses"])
    (term,) = client.call("model.account.invoice.payment_term.search", [["name", "=", "Direct"]], 0, 1, None)
    sale_lines: list[dict[str, Any]] = []
    for spec in lines:
        code, quantity = spec[0], spec[1]
        product = _one(
            client, "product.product", [["code", "=", code]], ["default_uom", "template.list_price"]
        )
        price = Decimal(spec[2]) if len(spec) > 2 else product["template."]["list_price"]  # type: ignore[misc]
        sale_lines.append(
            {
                "type": "line",
                "product": product["id"],
                "quantity": float(quantity),
                "unit": product["default_uom"],
                "unit_price": price,
            }
        )
    sale_lines.extend({"type": "comment", "description": text} for text in comments)
    values: dict[str, Any] = {
        "party": party_row["id"],
        "invoice_address": party_row["addresses"][0],
        "shipment_address": party_row["addresses"][0],
        "payment_term": term,
        "reference": reference,
        "comment": comment,
        "description": description,
        "lines": [["create", sale_lines]],
    }
    if carrier:
        (carrier_id,) = client.call(
            "model.carrier.search", [["party.name", "=", "Speedy Freight"]], 0, 1, None
        )
        values["carrier"] = carrier_id
    if not (carrier and shipment_cost):
        values["shipment_cost_method"] = None
    (sale_id,) = client.call("model.sale.sale.create", [values])
    return sale_id


def sale_confirm(client: TrytonClient, sale_id: int) -> dict[str, Any]:
    """Quote and confirm; with no queue worker trytond processes the sale in the same request
    (after commit), so it comes back ``processing`` with its shipment and invoice."""
    client.call("model.sale.sale.quote", [sale_id])
    client.call("model.sale.sale.confirm", [sale_id])
    return sale_read(client, sale_id)


def sale_read(client: TrytonClient, sale_id: int) -> dict[str, Any]:
    (row,) = client.call(
        "model.sale.sale.read",
        [sale_id],
        ["number", "state", "reference", "shipments", "invoices", "last_modified_at", "party"],
    )
    return row


def sale_confirmed(client: TrytonClient, **kwargs: Any) -> dict[str, Any]:
    return sale_confirm(client, sale_create(client, **kwargs))


def shipments_finish(client: TrytonClient, shipment_ids: list[int]) -> None:
    for button in ("assign_try", "pick", "pack", "do"):
        client.call(f"model.stock.shipment.out.{button}", shipment_ids)


def drain(connector: Any, ctx: Any, cursor: str | None = None) -> str | None:
    """Poll until nothing is left; returns the cursor past every sale that exists now."""
    while True:
        result = connector.poll(cursor, ctx)
        if not result.messages:
            return result.cursor
        cursor = result.cursor


def polled_ids(result: Any) -> list[int]:
    return [json.loads(body)["id"] for body in result.messages]
