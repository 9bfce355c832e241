"""What the billing checks (delivered_invoiced, invoice_amounts) share: reading the ERP's invoices
through its connector, and the hub's invoice lines in the shape they are compared in.

The ERP is read only through the connector's own reads (``connectors.tryton.operations``:
``invoices_read``, ``sales_invoices``), each a fixed number of calls per page of ids.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from canonical.errors import ConflictError
from canonical.models import InvoiceLine
from connectors.tryton import operations as tryton
from connectors.tryton.client import TrytonClient
from hub.connections.models import Connection
from hub.mappings.context import connection_context
from hub.workflows.flows.common import FREIGHT_DESCRIPTION, ref_system
from reconciliation.checks.base import CheckContext

CENT = Decimal("0.01")
POSTED = ("posted", "paid")  # ERP invoice states that count as invoiced
FREIGHT_KEY = tryton.FREIGHT_KEY
READERS = ("tryton",)  # connectors whose invoices the billing checks can read


@dataclass(frozen=True)
class ErpReader:
    """The ERP connection of a check and the reads it offers."""

    connection: Connection
    system: str  # the system name on its external refs
    client: TrytonClient

    def invoices(self, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """ERP invoices by id (any state); ids the ERP does not have are absent."""
        return {row["id"]: row for row in tryton.invoices_read(self.client, sorted(set(ids)))}

    def sales_invoices(self, sale_ids: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
        """Customer invoices of each sale, by sale id; sales the ERP does not have are absent."""
        return tryton.sales_invoices(self.client, sorted(set(sale_ids)))


def erp_reader(ctx: CheckContext) -> ErpReader:
    """The check's ERP connection with its reader. Raises ConflictError when its connector cannot
    list invoices (only Tryton's can, today)."""
    connection = ctx.connection("erp")
    if connection.connector not in READERS:
        raise ConflictError(
            f"the erp connection {connection.slug} uses the {connection.connector} connector, which "
            f"cannot list invoices (readable: {', '.join(READERS)})"
        )
    client = TrytonClient.from_context(connection_context(connection, direction="outbound"))
    return ErpReader(connection=connection, system=ref_system(connection), client=client)


def plain(quantity: Decimal) -> str:
    """A quantity without trailing zeros or exponent: 3.000 -> "3", 10 -> "10", 2.50 -> "2.5"."""
    return format(quantity.normalize(), "f")


def money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(CENT)


def line_key(line: InvoiceLine) -> str:
    """How a hub invoice line is matched with an ERP line: its product's SKU, ``freight`` for the
    freight line, else its description (the ERP's keys: ``tryton.invoice_lines_normalize``)."""
    if line.product_id is not None:
        return line.product.sku
    if line.description == FREIGHT_DESCRIPTION:
        return FREIGHT_KEY
    return line.description


def hub_lines(lines: Iterable[InvoiceLine]) -> list[dict[str, str]]:
    """Hub invoice lines in the compared shape (``key``, ``quantity``, ``unit_price``, ``amount``)."""
    return [
        {
            "key": line_key(line),
            "quantity": plain(line.quantity),
            "unit_price": str(line.unit_price),
            "amount": str((line.quantity * line.unit_price).quantize(CENT)),
        }
        for line in lines
    ]


def by_key(lines: Iterable[dict[str, Any]]) -> dict[str, dict[str, Decimal]]:
    """Lines summed per key: {key: {"quantity", "amount"}} (two lines of one product are one)."""
    out: dict[str, dict[str, Decimal]] = {}
    for line in lines:
        row = out.setdefault(str(line["key"]), {"quantity": Decimal(0), "amount": Decimal("0.00")})
        row["quantity"] += Decimal(str(line["quantity"] or 0))
        row["amount"] += money(line["amount"] or 0)
    return out
