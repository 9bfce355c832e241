"""freight_accrual: at a period close, delivered shipments whose carrier invoice has not arrived carry
an accrual of their expected freight in the ERP, and the accrual is reversed once the invoice comes.

What it compares: the hub's shipments (delivered, per the TMS's milestones) and their freight charges
(a carrier invoice: an X12 210 or a carrier's invoice feed, recorded as ``FreightCharge``) against the
accruals booked in the ERP (Tryton account moves, written by the `tryton` connector's
``freight.accrue`` / ``freight.accrual_reverse`` through the ledger). The ERP is the system of record
for the books; the hub decides what should be booked.

The period: ``period_end`` from the run's scope, else from the options, else the last day of the
previous month (UTC). A shipment needs an accrual for the period when it was delivered by the end of
that day, within ``lookback_days`` before it, and no freight charge had reached the hub by then. It is
accrued once, for the first period it was open at (the ledger key ``reconcile:freight_accrual:
<shipment>@<YYYY-MM>`` posts it once per shipment and period); while that accrual stands, later
periods book nothing more. When a charge has arrived, the accrual is reversed once (key
``...@<YYYY-MM>:reverse``), dated the invoice's arrival (never inside the accrued period).

Kinds: ``accrual_missing`` (repairable when the shipment has an expected freight cost: the amount
accrued), ``reversal_missing`` (repairable). A shipment whose charge arrived after the period end but
before the accrual was booked is accrued and reversed in one repair: the period still bore the cost.

The run's report (``ctx.totals``) shows, per carrier SCAC, the period's accrued and reversed amounts
on record and what is still to accrue or reverse.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Exists, Min, OuterRef, QuerySet, Value
from django.db.models.functions import Concat
from django.utils import timezone

from canonical.errors import ValidationFailed
from canonical.models import FreightCharge, Shipment
from connectors.tryton.accruals import ACCRUE, REVERSE
from hub.connections.models import Connection
from hub.ledger.models import SideEffect
from reconciliation.checks.base import (
    Check,
    CheckContext,
    Finding,
    NotRepairable,
    Write,
    register,
    writes_perform,
)

NAME = "freight_accrual"
PREFIX = f"reconcile:{NAME}:"


def period_end_default(today: date) -> date:
    """The last day of the month before ``today``."""
    return today.replace(day=1) - timedelta(days=1)


def period_end_of(ctx: CheckContext) -> date:
    value = ctx.scope.get("period_end") or ctx.options.get("period_end")
    if not value:
        return period_end_default(timezone.now().astimezone(UTC).date())
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ValidationFailed(
            f"period_end {value!r} is not an ISO date",
            errors=[{"field": "period_end", "message": "expected YYYY-MM-DD"}],
        ) from None


def period_name(period_end: date) -> str:
    return f"{period_end.year:04d}-{period_end.month:02d}"


def cutoff(period_end: date) -> datetime:
    """The end of the period's last day (UTC): facts recorded before it count for the period."""
    return datetime.combine(period_end + timedelta(days=1), time.min, tzinfo=UTC)


def accrual_key(reference: str, period: str) -> str:
    return f"{PREFIX}{reference}@{period}"


def reversal_key(reference: str, period: str) -> str:
    return f"{accrual_key(reference, period)}:reverse"


@dataclass(frozen=True)
class Facts:
    """What the hub and the ledger say about one shipment, for one period close."""

    reference: str
    carrier: str  # SCAC, or "-"
    delivered_at: str | None
    expected_cost: Decimal | None
    currency: str
    charge_before_cutoff: bool
    charge_arrived_at: datetime | None  # the first charge, whenever it came
    accruals: Mapping[str, Mapping[str, Any]]  # period -> the done accrual's ledger row (payload, ids)
    reversed_periods: frozenset[str]


def assess(
    facts: Facts, *, period: str, period_end: date, options: Mapping[str, Any]
) -> tuple[Finding, list[Write]]:
    """The finding for one shipment at a period close and the writes that would settle it. Pure."""
    standing = sorted(p for p in facts.accruals if p not in facts.reversed_periods)
    expected: dict[str, Any] = {
        "period": period,
        "period_end": period_end.isoformat(),
        "carrier": facts.carrier,
        "amount": str(facts.expected_cost) if facts.expected_cost is not None else None,
        "currency": facts.currency,
    }
    found = {
        "hub": {
            "delivered_at": facts.delivered_at,
            "carrier_invoice_arrived_at": facts.charge_arrived_at.isoformat()
            if facts.charge_arrived_at
            else None,
        },
        "erp": {
            "accruals": {p: row.get("external_id") for p, row in sorted(facts.accruals.items())},
            "reversed": sorted(facts.reversed_periods),
        },
    }
    base = {"business_key": facts.reference, "systems": ("erp", "tms", "hub"), "found": found}
    if facts.charge_arrived_at is not None and standing:
        writes = [_reversal(facts, p, facts.accruals[p]) for p in standing]
        return (
            Finding(
                ok=False,
                kind="reversal_missing",
                summary=f"the carrier invoice for {facts.reference} arrived; the freight accrual of "
                f"{', '.join(standing)} is not reversed",
                expected={**expected, "reverse": standing},
                repairable=True,
                external_ids=tuple(str(facts.accruals[p].get("external_id")) for p in standing),
                **base,
            ),
            writes,
        )
    needs = not facts.charge_before_cutoff and not facts.accruals
    if not needs:
        return Finding(business_key=facts.reference, ok=True), []
    if not facts.expected_cost or facts.expected_cost <= 0:
        return (
            Finding(
                ok=False,
                kind="accrual_missing",
                summary=f"{facts.reference} was delivered without a carrier invoice by {period_end}, and "
                "has no expected freight cost to accrue",
                expected=expected,
                severity="error",
                repairable=False,
                **base,
            ),
            [],
        )
    accrue = _accrual(facts, period, period_end, options)
    writes = [accrue]
    if facts.charge_arrived_at is not None:  # arrived after the period end, before the accrual
        writes.append(_reversal(facts, period, {"payload": accrue.payload}))
    return (
        Finding(
            ok=False,
            kind="accrual_missing",
            summary=f"{facts.reference} was delivered without a carrier invoice by {period_end}: accrue "
            f"{facts.expected_cost} {facts.currency} for {period}",
            expected=expected,
            repairable=True,
            **base,
        ),
        writes,
    )


def _accrual(facts: Facts, period: str, period_end: date, options: Mapping[str, Any]) -> Write:
    payload = {
        "shipment": facts.reference,
        "period": period,
        "date": period_end.isoformat(),
        "amount": str(facts.expected_cost),
        "currency": facts.currency,
        "carrier": facts.carrier,
        "journal": options.get("journal") or "MISC",
        "accrual_account": options.get("accrual_account"),
        "expense_account": options.get("expense_account") or "",
        "freight_product": options.get("freight_product") or "FREIGHT",
    }
    return Write(ACCRUE, accrual_key(facts.reference, period), payload)


def _reversal(facts: Facts, period: str, accrual: Mapping[str, Any]) -> Write:
    arrived = facts.charge_arrived_at or timezone.now()
    payload = {**(accrual.get("payload") or {}), "date": arrived.astimezone(UTC).date().isoformat()}
    return Write(REVERSE, reversal_key(facts.reference, period), payload)


# --- Reading the hub and the ledger --------------------------------------------------------------------


def _candidates(period_end: date, lookback_days: float) -> QuerySet[Shipment]:
    """Delivered by the period end (within the look-back) with no charge recorded by then."""
    end = cutoff(period_end)
    early = FreightCharge.objects.filter(shipment=OuterRef("pk"), created_at__lt=end)
    return Shipment.objects.filter(
        status=Shipment.Status.DELIVERED,
        delivered_at__lt=end,
        delivered_at__gte=end - timedelta(days=lookback_days),
    ).exclude(Exists(early))


def _ledger(erp: Connection, references: list[str]) -> tuple[dict[str, dict], dict[str, set[str]]]:
    """Done accruals (reference -> period -> row) and reversals (reference -> periods) for a page."""
    accruals: dict[str, dict] = defaultdict(dict)
    reversals: dict[str, set[str]] = defaultdict(set)
    rows = SideEffect.objects.filter(
        connection=erp,
        operation__in=[ACCRUE, REVERSE],
        status=SideEffect.Status.DONE,
        payload__shipment__in=references,
        business_key__startswith=PREFIX,
    ).values("operation", "payload", "external_id", "pk")
    for row in rows:
        reference, period = row["payload"].get("shipment"), row["payload"].get("period")
        if row["operation"] == ACCRUE:
            accruals[reference][period] = row
        else:
            reversals[reference].add(period)
    return accruals, reversals


def _facts(shipments: list[Shipment], erp: Connection, end: datetime) -> Iterator[Facts]:
    references = [s.reference for s in shipments]
    accruals, reversals = _ledger(erp, references)
    arrived = dict(
        FreightCharge.objects.filter(shipment__in=shipments)
        .values("shipment__reference")
        .annotate(first=Min("created_at"))
        .values_list("shipment__reference", "first")
    )
    for shipment in shipments:
        first = arrived.get(shipment.reference)
        yield Facts(
            reference=shipment.reference,
            carrier=shipment.carrier.scac if shipment.carrier_id else "-",
            delivered_at=shipment.delivered_at.isoformat() if shipment.delivered_at else None,
            expected_cost=shipment.expected_freight_cost,
            currency=shipment.currency,
            charge_before_cutoff=first is not None and first < end,
            charge_arrived_at=first,
            accruals=accruals.get(shipment.reference, {}),
            reversed_periods=frozenset(reversals.get(shipment.reference, set())),
        )


def _count(totals: dict[str, Any], bucket: str, carrier: str, amount: Any) -> None:
    per = totals.setdefault(bucket, {})
    current = Decimal(per.get(carrier, {}).get("amount", "0"))
    count = per.get(carrier, {}).get("count", 0)
    per[carrier] = {"count": count + 1, "amount": str(current + Decimal(str(amount or 0)))}


def _tally(totals: dict[str, Any], facts: Facts, period: str, writes: list[Write]) -> None:
    if period in facts.accruals:
        _count(totals, "accrued", facts.carrier, facts.accruals[period]["payload"].get("amount"))
    if period in facts.reversed_periods and period in facts.accruals:
        _count(totals, "reversed", facts.carrier, facts.accruals[period]["payload"].get("amount"))
    for write in writes:
        bucket = "to_accrue" if write.operation == ACCRUE else "to_reverse"
        _count(totals, bucket, facts.carrier, write.payload.get("amount"))


def _erp(ctx: CheckContext) -> Connection:
    erp = ctx.connection("erp")
    if erp.connector != "tryton":
        raise ValidationFailed(f"{NAME} books accruals through the tryton connector, not {erp.connector!r}")
    return erp


@register
class FreightAccrual(Check):
    name = NAME
    title = "Delivered shipments without a carrier invoice are accrued at period end, and reversed"
    systems = ("erp", "tms", "hub")
    every_s = 86400
    defaults = {
        "period_end": None,  # ISO date; default: the last day of the previous month
        "lookback_days": 92,  # days before the period end a delivery still counts
        "accrual_account": "2.2.1",  # ERP account code credited (accrued expenses)
        "expense_account": "",  # ERP account code debited; empty: the freight product's expense account
        "freight_product": "FREIGHT",
        "journal": "MISC",
    }
    scope_keys = ("period_end",)
    page_size = 200

    def examine(self, ctx: CheckContext) -> Iterator[Finding]:
        erp = _erp(ctx)
        period_end = period_end_of(ctx)
        period, end = period_name(period_end), cutoff(period_end)
        ctx.totals.update({"period": period, "period_end": period_end.isoformat()})
        candidates = _candidates(period_end, float(ctx.options["lookback_days"]))
        keys = ctx.keys()
        if keys:
            candidates = candidates.filter(reference__in=keys)
        seen_pk = None
        base = candidates.select_related("carrier").order_by("pk")
        while page := list((base.filter(pk__gt=seen_pk) if seen_pk else base)[: self.page_size]):
            for facts in _facts(page, erp, end):
                finding, writes = assess(facts, period=period, period_end=period_end, options=ctx.options)
                _tally(ctx.totals, facts, period, writes)
                yield finding
            seen_pk = page[-1].pk
        # Accruals of any period still standing for shipments outside the candidates (their invoice
        # came before this period's end, or they fell out of the look-back): reversed when due.
        standing = (
            SideEffect.objects.filter(connection=erp, operation=ACCRUE, status=SideEffect.Status.DONE)
            .filter(business_key__startswith=PREFIX)
            .exclude(
                Exists(
                    SideEffect.objects.filter(
                        connection=erp,
                        operation=REVERSE,
                        status=SideEffect.Status.DONE,
                        business_key=_concat_reverse(),
                    )
                )
            )
            .order_by("pk")
        )
        if keys:
            standing = standing.filter(payload__shipment__in=keys)
        last = None
        while rows := list((standing.filter(pk__gt=last) if last else standing)[: self.page_size]):
            references = sorted({row.payload.get("shipment") for row in rows})
            inside = set(candidates.filter(reference__in=references).values_list("reference", flat=True))
            shipments = list(
                Shipment.objects.select_related("carrier").filter(reference__in=set(references) - inside)
            )
            for facts in _facts(shipments, erp, end):
                finding, writes = assess(facts, period=period, period_end=period_end, options=ctx.options)
                _tally(ctx.totals, facts, period, writes)
                yield finding
            last = rows[-1].pk

    def repair(self, discrepancy: Any, ctx: CheckContext) -> dict[str, Any]:
        erp = _erp(ctx)
        expected = discrepancy.expected or {}
        period_end = date.fromisoformat(expected.get("period_end") or period_end_of(ctx).isoformat())
        shipment = (
            Shipment.objects.select_related("carrier").filter(reference=discrepancy.business_key).first()
        )
        if shipment is None:
            raise NotRepairable(f"shipment {discrepancy.business_key} is gone from the hub")
        (facts,) = _facts([shipment], erp, cutoff(period_end))
        finding, writes = assess(
            facts, period=period_name(period_end), period_end=period_end, options=ctx.options
        )
        if not finding.ok and not finding.repairable:
            raise NotRepairable(finding.summary)
        return writes_perform(erp, writes, dry_run=ctx.dry_run, kind=finding.kind or "agrees")


def _concat_reverse() -> Concat:
    return Concat(OuterRef("business_key"), Value(":reverse"))
