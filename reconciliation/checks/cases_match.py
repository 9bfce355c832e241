"""cases_match: every open shipment exception has exactly one open CRM case, and no case stays open
for an exception that is resolved.

The hub is the system of record for exceptions (the carrier's events decide them); the CRM's cases
follow (hub/workflows/flows/exception_to_case.py opens one per exception episode, comments it and
closes it). One business key per shipment and exception type (``<shipment>:<kind>``), examined on its
latest episode: every open exception, and exceptions resolved within ``resolved_within_days`` that
no later episode followed. The CRM is read through the `bottlecrm` connector (its cases of the
shipment and type, by custom field); which case belongs to the episode is what the ledger recorded
for the episode's ``case.open`` (the flow's write), else the case named after the episode.

Kinds and repairs (each write through the ledger, keyed so a repeated repair writes once):

- ``no_case``: the exception is open and the CRM has no case for it: ``case.open`` with the flow's
  own business key and payload, so the flow and the repair never make two cases.
- ``case_closed_by_hand``: the episode's case was closed in the CRM while the exception is still
  open (its closing did not resolve the exception: the CRM's webhook was lost or refused). The repair
  **reopens that case** (``case.reopen``, with a note saying why) rather than opening a new one: the
  account team's history, contacts and SLA clock live on that case, a second case for the same
  episode would split the conversation and need a `` (2)`` name, and the flow still holds the case's
  id to comment and close it — a new case would be left open forever when the exception is resolved.
  A case *rejected* or *marked duplicate* by hand was a deliberate decision: not repairable.
- ``orphan_case``: the exception is resolved and a case is still open: ``case.close`` on each.
- ``duplicate_cases``: more than one open case for an open exception: the one the flow opened (else
  the oldest) stays, the others are closed as duplicates.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from canonical.errors import ValidationFailed
from canonical.models import ShipmentException
from connectors.bottlecrm import operations as crm_operations
from connectors.bottlecrm import translate as crm_translate
from hub.connections.models import Connection
from hub.ledger.models import SideEffect
from hub.mappings.context import connection_context
from hub.workflows.flows import common
from hub.workflows.flows.exception_to_case import case_key, case_open_payload
from reconciliation.checks.base import (
    Check,
    CheckContext,
    Finding,
    NotRepairable,
    Write,
    register,
    writes_perform,
)

NAME = "cases_match"


@dataclass(frozen=True)
class Episode:
    """What the hub says about the latest exception episode of one shipment and type."""

    exception_id: str
    reference: str
    kind: str
    status: str
    opened_at: str  # ISO
    resolved_at: str | None
    recorded_case_id: str | None  # what the ledger recorded for the episode's case.open

    @property
    def key(self) -> str:
        return f"{self.reference}:{self.kind}"


def _case_row(case: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": str(case.get("id")),
        "status": case.get("status"),
        "name": case.get("name"),
        "closed_on": case.get("closed_on"),
    }


def episode_case(episode: Episode, cases: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The case of this episode: the one the ledger recorded, else the one named after the episode
    (``Shipment <ref>: <KIND> <opened at>``, the name case.open gives it)."""
    if episode.recorded_case_id:
        recorded = next((c for c in cases if str(c.get("id")) == episode.recorded_case_id), None)
        if recorded is not None:
            return recorded
    name = crm_translate.case_name({"opened_at": episode.opened_at}, episode.reference, episode.kind)
    return next((c for c in reversed(cases) if (c.get("name") or "").startswith(name)), None)


def compare(episode: Episode, cases: list[Mapping[str, Any]]) -> Finding:
    """The finding for one shipment and exception type. Pure: ``cases`` are the CRM's cases of the
    shipment and type (any status, oldest first)."""
    open_cases = [c for c in cases if crm_translate.is_open(c)]
    expected = {
        "exception": {
            "id": episode.exception_id,
            "status": episode.status,
            "opened_at": episode.opened_at,
            "resolved_at": episode.resolved_at,
        },
        "open_cases": 1 if episode.status == ShipmentException.Status.OPEN else 0,
    }
    found = {"crm": {"cases": [_case_row(c) for c in cases], "open_cases": len(open_cases)}}
    ids = tuple(str(c.get("id")) for c in cases)
    common_fields = {
        "business_key": episode.key,
        "systems": ("hub", "crm"),
        "expected": expected,
        "found": found,
        "external_ids": ids,
    }
    if episode.status == ShipmentException.Status.OPEN:
        if len(open_cases) == 1:
            return Finding(business_key=episode.key, ok=True)
        if len(open_cases) > 1:
            return Finding(
                ok=False,
                kind="duplicate_cases",
                summary=f"{len(open_cases)} open CRM cases for the open {episode.kind} exception on "
                f"{episode.reference}",
                repairable=True,
                **common_fields,
            )
        mine = episode_case(episode, cases)
        if mine is None:
            return Finding(
                ok=False,
                kind="no_case",
                summary=f"no CRM case for the open {episode.kind} exception on {episode.reference}",
                severity="error",
                repairable=True,
                **common_fields,
            )
        closed_by_hand = mine.get("status") == "Closed"
        return Finding(
            ok=False,
            kind="case_closed_by_hand",
            summary=f"CRM case {mine.get('id')} was {str(mine.get('status')).lower()} in the CRM while the "
            f"{episode.kind} exception on {episode.reference} is still open",
            severity="error",
            repairable=closed_by_hand,
            **common_fields,
        )
    if open_cases:
        return Finding(
            ok=False,
            kind="orphan_case",
            summary=f"{len(open_cases)} CRM case(s) still open for the resolved {episode.kind} exception on "
            f"{episode.reference}",
            repairable=True,
            **common_fields,
        )
    return Finding(business_key=episode.key, ok=True)


def plan(episode: Episode, cases: list[Mapping[str, Any]], *, opening: list[Write]) -> list[Write]:
    """The writes that make the CRM agree with the episode (empty when it agrees). Pure: ``opening``
    is what opening the episode's case takes (``_opening``: the flow's own writes)."""
    finding = compare(episode, cases)
    if finding.ok:
        return []
    shipment = {"reference": episode.reference}
    open_cases = [c for c in cases if crm_translate.is_open(c)]
    if finding.kind == "orphan_case":
        return [
            Write(
                "case.close",
                f"reconcile:{NAME}:{c['id']}:close",
                {
                    "case_id": str(c["id"]),
                    "shipment": shipment,
                    "exception_type": episode.kind,
                    "event_id": f"resolved:{episode.exception_id}",
                    "resolution": "the shipment exception is resolved (closed by reconciliation)",
                    "resolved_at": episode.resolved_at,
                },
            )
            for c in open_cases
        ]
    if finding.kind == "duplicate_cases":
        keep = next((c for c in open_cases if str(c["id"]) == episode.recorded_case_id), open_cases[0])
        return [
            Write(
                "case.close",
                f"reconcile:{NAME}:{c['id']}:close-duplicate",
                {
                    "case_id": str(c["id"]),
                    "shipment": shipment,
                    "exception_type": episode.kind,
                    "event_id": f"duplicate-of:{keep['id']}",
                    "resolution": f"duplicate of case {keep['id']} (closed by reconciliation)",
                },
            )
            for c in open_cases
            if c is not keep
        ]
    if finding.kind == "case_closed_by_hand":
        if not finding.repairable:
            raise NotRepairable(
                finding.summary + "; rejected or duplicate cases are left as the CRM user set them"
            )
        mine = episode_case(episode, cases)
        assert mine is not None
        closed = str(mine.get("closed_on") or mine.get("updated_at") or "")
        return [
            Write(
                "case.reopen",
                f"reconcile:{NAME}:{mine['id']}:reopen:{closed}",
                {
                    "case_id": str(mine["id"]),
                    "shipment": shipment,
                    "exception_type": episode.kind,
                    "event_id": f"reconcile-reopen:{closed}",
                    "reason": "the shipment exception is still open (the carrier has not reported it resolved)",
                },
            )
        ]
    return list(opening)  # no_case


def _episodes(ctx: CheckContext) -> QuerySet[ShipmentException]:
    """The latest episode of each shipment and type worth a look: open, or resolved within the window."""
    since = timezone.now() - timedelta(days=float(ctx.options["resolved_within_days"]))
    later = ShipmentException.objects.filter(
        shipment=OuterRef("shipment"), kind=OuterRef("kind"), opened_at__gt=OuterRef("opened_at")
    )
    episodes = ShipmentException.objects.filter(
        Q(status=ShipmentException.Status.OPEN)
        | Q(status=ShipmentException.Status.RESOLVED, resolved_at__gte=since)
    ).exclude(Exists(later))
    keys = ctx.keys()
    if keys:
        references = {key.split(":", 1)[0] for key in keys}
        episodes = episodes.filter(shipment__reference__in=references)
    return episodes


def _recorded(crm: Connection, exceptions: list[ShipmentException]) -> dict[str, str]:
    """case.open business key -> the case id the ledger recorded (one query per page)."""
    rows = SideEffect.objects.filter(
        connection=crm,
        operation="case.open",
        status=SideEffect.Status.DONE,
        business_key__in=[case_key(exc) for exc in exceptions],
    ).values_list("business_key", "external_id")
    return dict(rows)


def _episode(exc: ShipmentException, recorded: Mapping[str, str]) -> Episode:
    return Episode(
        exception_id=str(exc.pk),
        reference=exc.shipment.reference,
        kind=exc.kind,
        status=exc.status,
        opened_at=exc.opened_at.isoformat(),
        resolved_at=exc.resolved_at.isoformat() if exc.resolved_at else None,
        recorded_case_id=recorded.get(case_key(exc)) or None,
    )


def _crm(ctx: CheckContext) -> Connection:
    crm = ctx.connection("crm")
    if crm.connector != "bottlecrm":
        raise ValidationFailed(f"{NAME} reads cases through the bottlecrm connector, not {crm.connector!r}")
    return crm


@register
class CasesMatch(Check):
    name = NAME
    title = "Open shipment exceptions have exactly one open CRM case"
    systems = ("hub", "crm")
    every_s = 3600
    defaults = {"resolved_within_days": 30}
    page_size = 100  # one CRM list call per key

    def estimate(self, ctx: CheckContext) -> int | None:
        return _episodes(ctx).count()

    def examine(self, ctx: CheckContext) -> Iterator[Finding]:
        crm = _crm(ctx)
        api, fields = crm_operations.reader(connection_context(crm, direction="outbound"))
        episodes = _episodes(ctx).select_related("shipment").order_by("pk")
        last = None
        while True:
            page = list((episodes.filter(pk__gt=last) if last else episodes)[: self.page_size])
            if not page:
                return
            recorded = _recorded(crm, page)
            for exc in page:
                cases = crm_operations.cases_of(api, fields, exc.shipment.reference, exc.kind)
                yield compare(_episode(exc, recorded), cases)
            last = page[-1].pk

    def repair(self, discrepancy: Any, ctx: CheckContext) -> dict[str, Any]:
        crm = _crm(ctx)
        exception_id = ((discrepancy.expected or {}).get("exception") or {}).get("id")
        exc = (
            ShipmentException.objects.select_related("shipment__customer").filter(pk=exception_id).first()
            if exception_id
            else None
        )
        if exc is None:
            raise NotRepairable(f"the exception behind {discrepancy.business_key} is gone from the hub")
        api, fields = crm_operations.reader(connection_context(crm, direction="outbound"))
        episode = _episode(exc, _recorded(crm, [exc]))
        cases = crm_operations.cases_of(api, fields, episode.reference, episode.kind)
        writes = plan(episode, cases, opening=_opening(episode, exc))
        return writes_perform(crm, writes, dry_run=ctx.dry_run, kind=compare(episode, cases).kind or "agrees")


def _opening(episode: Episode, exc: ShipmentException) -> list[Write]:
    """no_case's writes: the flow's own, same key and payload (its customer's account first), so the
    flow and the repair never make two cases. When the ledger already has that write done, the case
    it made is gone from the CRM: a key of the repair's own opens a new one."""
    key = case_key(exc)
    if episode.recorded_case_id:
        key = f"reconcile:{NAME}:{key}:after:{episode.recorded_case_id}"
    opening = [Write("case.open", key, case_open_payload(exc))]
    customer = exc.shipment.customer
    if customer is None:
        return opening
    return [Write("account.upsert", customer.code, common.customer_payload(customer)), *opening]
