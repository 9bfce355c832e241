"""freight_audit: what carriers billed for a shipment against the freight the hub expected.

Billed: the sum of the shipment's freight charges (X12 210 invoices and partner feeds, credits and
adjustments included), per currency. Expected, the system of record: the rate the TMS quoted when
it booked the shipment (``Shipment.expected_freight_cost``), else the carrier's contracted lane
rate (``Rate``: flat, or per kg times the shipment's weight) valid on the shipment's creation day
for its first pickup and last delivery stop.

A bill is within tolerance when it is at most ``max(tolerance_abs, tolerance_pct % of expected)``
away. Above: ``overbilled`` (warning; error above ``error_over_pct`` %, critical above
``critical_over_pct`` % over the expected cost); below: ``underbilled`` (info). A bill in another
currency is ``currency_differs``; nothing to compare with is ``no_expected_cost`` (info). Never
repaired: ops dispute the carrier's invoice or accept it (resolve or ignore with a reason).

Options: ``tolerance_abs`` (5.00), ``tolerance_pct`` (2), ``error_over_pct`` (10),
``critical_over_pct`` (25), ``window_days`` (90: shipments charged in that many days).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Q, Sum
from django.utils import timezone

from canonical.models import FreightCharge, Rate, Shipment, Stop
from reconciliation.checks.base import Check, CheckContext, Finding, register

SYSTEMS = ("carrier", "hub")
CENT = Decimal("0.01")


def compare(
    reference: str,
    *,
    expected: Decimal | None,
    currency: str,
    basis: str,
    billed: dict[str, Decimal],
    options: dict[str, Any],
    charges: list[dict[str, Any]] | None = None,
) -> Finding:
    """One shipment's carrier bill (``billed``: total per currency) against its expected cost. Pure."""
    expected_doc: dict[str, Any] = {
        "amount": str(expected) if expected is not None else None,
        "currency": currency,
        "basis": basis,
    }
    found: dict[str, Any] = {
        "billed": {c: str(a) for c, a in sorted(billed.items())},
        "charges": charges or [],
    }
    base = {"systems": SYSTEMS, "expected": expected_doc, "found": found}
    if expected is None:
        return Finding(
            reference,
            ok=False,
            kind="no_expected_cost",
            summary=f"shipment {reference} is billed {_billed(billed)} with no quote or lane rate to audit against",
            severity="info",
            **base,
        )
    others = sorted(c for c in billed if c != currency)
    if others:
        return Finding(
            reference,
            ok=False,
            kind="currency_differs",
            summary=f"shipment {reference} is billed {_billed(billed)}; expected {expected} {currency}",
            **base,
        )
    amount = billed.get(currency, Decimal("0.00"))
    difference = (amount - expected).quantize(CENT)
    allowed = max(
        Decimal(str(options["tolerance_abs"])), expected * Decimal(str(options["tolerance_pct"])) / 100
    ).quantize(CENT)
    pct = (difference / expected * 100).quantize(Decimal("0.1")) if expected else None
    found.update(difference=str(difference), difference_pct=str(pct) if pct is not None else None)
    expected_doc["tolerance"] = str(allowed)
    if abs(difference) <= allowed:
        return Finding(reference, ok=True, systems=SYSTEMS)
    over = difference > 0
    if not over:
        severity = "info"
    elif pct is None or pct > Decimal(str(options["critical_over_pct"])):
        severity = "critical"
    elif pct > Decimal(str(options["error_over_pct"])):
        severity = "error"
    else:
        severity = "warning"
    return Finding(
        reference,
        ok=False,
        kind="overbilled" if over else "underbilled",
        summary=f"shipment {reference} billed {amount} {currency}, expected {expected} "
        f"({'+' if over else ''}{difference}, {pct} %; tolerance {allowed})",
        severity=severity,
        **base,
    )


def _billed(billed: dict[str, Decimal]) -> str:
    return " + ".join(f"{a} {c}" for c, a in sorted(billed.items())) or "nothing"


def lane_rate(shipment: Shipment, stops: list[Stop]) -> tuple[Decimal | None, str]:
    """The carrier's contracted rate for the shipment's lane (first pickup -> last delivery), valid
    on the day the shipment was created: (amount, currency) or (None, "") when there is none."""
    pickups = [s for s in stops if s.kind == Stop.Kind.PICKUP]
    deliveries = [s for s in stops if s.kind == Stop.Kind.DELIVERY]
    if shipment.carrier_id is None or not pickups or not deliveries:
        return None, ""
    day = shipment.created_at.date()
    rates = Rate.objects.filter(
        Q(valid_to__isnull=True) | Q(valid_to__gte=day),
        carrier_id=shipment.carrier_id,
        origin_id=pickups[0].location_id,
        destination_id=deliveries[-1].location_id,
        valid_from__lte=day,
    ).order_by("-valid_from")
    for rate in rates:
        if rate.basis == Rate.Basis.FLAT:
            return rate.amount, rate.currency
        if rate.basis == Rate.Basis.PER_KG and shipment.weight_kg is not None:
            return (rate.amount * shipment.weight_kg).quantize(CENT), rate.currency
    return None, ""


@register
class FreightAudit(Check):
    name = "freight_audit"
    title = "Freight audit: carrier bills vs expected cost"
    systems = SYSTEMS
    every_s = 6 * 3600
    defaults = {
        "tolerance_abs": "5.00",
        "tolerance_pct": "2",
        "error_over_pct": "10",
        "critical_over_pct": "25",
        "window_days": 90,
    }
    page_size = 500

    def _shipments(self, ctx: CheckContext):
        since = timezone.now() - timedelta(days=float(ctx.options["window_days"]))
        charged = FreightCharge.objects.filter(created_at__gte=since).values("shipment_id")
        shipments = Shipment.objects.filter(pk__in=charged)
        keys = ctx.keys()
        if keys is not None:
            shipments = shipments.filter(reference__in=keys)
        return shipments

    def estimate(self, ctx: CheckContext) -> int | None:
        return self._shipments(ctx).count()

    def examine(self, ctx: CheckContext) -> Iterator[Finding]:
        ctx.totals.update(examined=0, billed_over={}, billed_under={})
        last = None
        while True:
            page_qs = self._shipments(ctx).order_by("pk")
            if last is not None:
                page_qs = page_qs.filter(pk__gt=last)
            page = list(page_qs[: self.page_size])
            if not page:
                return
            last = page[-1].pk
            ids = [s.pk for s in page]
            billed: dict[Any, dict[str, Decimal]] = {}
            for shipment_id, currency, total in (
                FreightCharge.objects.filter(shipment_id__in=ids)
                .values_list("shipment_id", "currency")
                .annotate(total=Sum("amount"))
                .order_by()
            ):
                billed.setdefault(shipment_id, {})[currency] = total
            charges: dict[Any, list[dict[str, Any]]] = {}
            for row in (
                FreightCharge.objects.filter(shipment_id__in=ids)
                .order_by("created_at")
                .values(
                    "shipment_id", "kind", "amount", "currency", "source_system", "source_ref", "description"
                )
            ):
                charges.setdefault(row.pop("shipment_id"), []).append({**row, "amount": str(row["amount"])})
            stops: dict[Any, list[Stop]] = {}
            for stop in Stop.objects.filter(
                shipment_id__in=ids, shipment__expected_freight_cost__isnull=True
            ):
                stops.setdefault(stop.shipment_id, []).append(stop)
            for shipment in page:
                ctx.totals["examined"] += 1
                if shipment.expected_freight_cost is not None:
                    expected, currency, basis = shipment.expected_freight_cost, shipment.currency, "quote"
                else:
                    ordered = sorted(stops.get(shipment.pk, []), key=lambda s: s.sequence)
                    expected, currency = lane_rate(shipment, ordered)
                    basis = "lane_rate"
                finding = compare(
                    shipment.reference,
                    expected=expected,
                    currency=currency or shipment.currency,
                    basis=basis,
                    billed=billed.get(shipment.pk, {}),
                    options=ctx.options,
                    charges=charges.get(shipment.pk, []),
                )
                if finding.kind in ("overbilled", "underbilled"):
                    side = "billed_over" if finding.kind == "overbilled" else "billed_under"
                    currency_key = finding.expected["currency"]
                    difference = Decimal(finding.found["difference"])
                    ctx.totals[side][currency_key] = str(
                        Decimal(ctx.totals[side].get(currency_key, "0")) + difference
                    )
                yield finding
