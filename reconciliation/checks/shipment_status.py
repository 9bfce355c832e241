"""shipment_status: the hub's shipment status agrees with the TMS's tracker and with what the CRM
account shows.

System of record: the TMS (Karrio) for what happened to a shipment, the hub for its status (the
highest any applied event implies, canonical/states.py: it never regresses). Per hub shipment booked
in the TMS (business key: the shipment reference):

- every milestone the TMS's tracker holds (mapped by the TMS connection's own ``map``, with its
  published mappings) is on the hub's timeline under the dedupe key the TMS's webhook would have
  given it, and a shipment cancelled in the TMS is cancelled in the hub; else ``missed_milestone``
  (a webhook that never reached the hub). A hub status above the TMS's (a partner's POD, say) is
  not a discrepancy: the hub takes milestones from several sources;
- the newest status note the hub wrote on the customer's CRM account shows the hub's status; else
  ``crm_behind``.

Examined: shipments with a TMS id that are not delivered or cancelled, and delivered or cancelled
ones changed within ``window_days``; a shipment the hub changed within ``grace_minutes`` is left for
the next run (its webhooks and CRM writes may be on their way).

Repairs, through the normal pipeline, never by editing rows: ``missed_milestone`` receives the
tracker (or the cancelled shipment) on the TMS connection as the webhook Karrio would have sent
(the same natural id and event ids, so a late webhook is a duplicate, and the inbox applies it
through the state machine and the outbox, with a ``reconcile:`` correlation id);
``crm_behind`` re-sends the status write through the ledger (BottleCRM's event operation
``shipment.status``, keyed by shipment and sequence, so it writes one note per state).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from pydantic import ValidationError

from canonical.contracts.v1 import EventType, MilestoneEvent, semantic_key
from canonical.errors import ConflictError
from canonical.models import ExternalRef, Shipment, ShipmentEvent
from canonical.states import CANCELLED, next_status, status_rank
from connectors import registry
from connectors.bottlecrm import operations as crm_operations
from connectors.bottlecrm.client import CrmApi
from connectors.errors import ConnectorError
from connectors.karrio.client import KarrioClient
from hub.connections.models import Connection
from hub.inbox.services import inbound_message_receive
from hub.ledger.services import side_effect_perform
from hub.mappings.context import connection_context
from hub.workflows.flows import common
from reconciliation.checks.base import Check, CheckContext, Finding, NotRepairable, register

NAME = "shipment_status"
TERMINAL = (Shipment.Status.DELIVERED, Shipment.Status.CANCELLED)


# --- What each system says about one shipment (plain data: the comparison is pure) ---------------------


@dataclass(frozen=True)
class HubSeen:
    reference: str
    status: str
    sequence: int
    customer: str
    event_keys: frozenset[str]  # dedupe keys on the timeline among those the TMS's milestones would get


@dataclass(frozen=True)
class TmsSeen:
    shipment_id: str
    status: str  # Karrio's shipment status
    tracker_id: str | None
    milestones: tuple[tuple[str, str], ...]  # (dedupe key, event type) of each tracker milestone
    webhook: dict[str, Any] | None = None  # the webhook Karrio would have sent for this state


@dataclass(frozen=True)
class CrmSeen:
    account_id: str | None
    status: str | None
    sequence: int | None


def tms_status(hub_status: str, tms: TmsSeen) -> str:
    """The hub's status once every TMS milestone is applied (the state machine's own rule)."""
    status = hub_status
    for _key, event_type in tms.milestones:
        status = next_status(status, EventType(event_type))
    return CANCELLED if tms.status == "cancelled" else status


def compare(hub: HubSeen, tms: TmsSeen, crm: CrmSeen | None) -> Finding:
    """One finding for one shipment. Pure."""
    missing = [key for key, _type in tms.milestones if key not in hub.event_keys]
    implied = tms_status(hub.status, tms)
    if not missing and implied == hub.status and (crm is None or crm.status == hub.status):
        return Finding(business_key=hub.reference, ok=True)  # the common case: nothing else to build
    found = {
        "hub": asdict(hub) | {"event_keys": sorted(hub.event_keys)},
        "tms": asdict(tms) | {"webhook": None},
    }
    if crm is not None:
        found["crm"] = asdict(crm)
    ids = tuple(i for i in (tms.shipment_id, tms.tracker_id, crm.account_id if crm else None) if i)
    if missing or implied != hub.status:
        return Finding(
            business_key=hub.reference,
            ok=False,
            kind="missed_milestone",
            summary=f"the TMS says {implied}, the hub {hub.status}: "
            f"{len(missing) or 'a cancellation'} TMS event(s) never reached the hub",
            systems=("tms", "hub") + (("crm",) if crm is not None else ()),
            expected={"tms": {"status": implied, "missing_events": missing}},
            found=found,
            repairable=tms.webhook is not None,
            external_ids=ids,
            severity="error" if status_rank(implied) > status_rank(hub.status) else "warning",
        )
    if crm is not None and crm.status != hub.status:
        shown = crm.status or "no status"
        return Finding(
            business_key=hub.reference,
            ok=False,
            kind="crm_behind",
            summary=f"the hub says {hub.status}, the CRM account shows {shown}",
            systems=("hub", "crm"),
            expected={"hub": {"status": hub.status, "sequence": hub.sequence}},
            found=found,
            repairable=True,
            external_ids=ids,
        )
    return Finding(business_key=hub.reference, ok=True)


# --- Reading the systems -----------------------------------------------------------------------------


@dataclass
class _Peers:
    tms: Connection
    tms_system: str
    karrio: KarrioClient
    tms_config: Any
    tms_mappings: Any
    crm: Connection | None
    crm_api: CrmApi | None
    crm_fields: Any
    pool: ThreadPoolExecutor | None = None  # reads a page's trackers side by side (examine only)


def _peers(ctx: CheckContext) -> _Peers:
    tms = ctx.connection("tms")
    if tms.connector != "karrio":
        raise ConflictError(f"{NAME} reads a karrio connection; {tms.slug} is {tms.connector}")
    tms_ctx = connection_context(tms, direction="inbound")
    crm = ctx.connection("crm") if ctx.options.get("crm", True) else None
    crm_api = fields = None
    if crm is not None:
        if crm.connector != "bottlecrm":
            raise ConflictError(f"{NAME} reads a bottlecrm connection; {crm.slug} is {crm.connector}")
        crm_ctx = connection_context(crm, direction="outbound")
        crm_api = CrmApi(url=str(crm_ctx.config.url), token=crm_ctx.secret, http=crm_ctx.client)
        fields = crm_operations.Fields(crm_ctx.config)
    return _Peers(
        tms=tms,
        tms_system=common.ref_system(tms),
        karrio=KarrioClient.from_context(tms_ctx),
        tms_config=tms_ctx.config,
        tms_mappings=tms_ctx.mappings,
        crm=crm,
        crm_api=crm_api,
        crm_fields=fields,
    )


def _refs(tms_system: str):
    """The TMS refs of shipments. Naming the content type lets each lookup by shipment use the refs'
    (content_type, object_id) index: without it a keyset page read every ref (O(N) per page)."""
    return ExternalRef.objects.filter(
        content_type=ContentType.objects.get_for_model(Shipment), system=tms_system, entity="shipment"
    )


def shipments_examined(ctx: CheckContext, tms_system: str):
    """The hub shipments the check examines (a queryset, paged by pk by the caller)."""
    now = timezone.now()
    booked = _refs(tms_system).filter(object_id=OuterRef("pk"))
    shipments = Shipment.objects.filter(Exists(booked)).filter(
        Q(updated_at__lte=now - timedelta(minutes=float(ctx.options["grace_minutes"]))),
        ~Q(status__in=TERMINAL) | Q(updated_at__gte=now - timedelta(days=float(ctx.options["window_days"]))),
    )
    keys = ctx.keys()
    return shipments.filter(reference__in=keys) if keys else shipments


def _tracker_wanted(shipment: dict[str, Any]) -> str | None:
    """The tracker to read for the shipment's state (a cancelled shipment's webhook is the shipment)."""
    return None if shipment.get("status") == "cancelled" else shipment.get("tracker_id") or None


def _trackers_read(peers: _Peers, tracker_ids: list[str]) -> dict[str, dict[str, Any] | ConnectorError]:
    """Each tracker by id (Karrio lists trackers by no id: one GET each), ``peers.pool``'s threads
    reading side by side; a failed read is kept as its error, for its own shipment only."""

    def read(tracker_id: str) -> dict[str, Any] | ConnectorError:
        try:
            return peers.karrio.tracker_get(tracker_id)
        except ConnectorError as exc:
            return exc

    unique = list(dict.fromkeys(tracker_ids))
    reads = peers.pool.map(read, unique) if peers.pool is not None and len(unique) > 1 else map(read, unique)
    return dict(zip(unique, reads, strict=True))


def _tracker_webhook(
    peers: _Peers, shipment: dict[str, Any], trackers: dict[str, dict[str, Any] | ConnectorError]
) -> tuple[dict[str, Any] | None, list[dict]]:
    """The webhook Karrio would send for the shipment's state, and the milestones it maps to."""
    tracker_id = _tracker_wanted(shipment)
    if shipment.get("status") == "cancelled":
        webhook = {"event": "shipment_cancelled", "data": shipment}
    elif tracker_id:
        tracker = trackers[tracker_id] if tracker_id in trackers else peers.karrio.tracker_get(tracker_id)
        if isinstance(tracker, ConnectorError):
            raise tracker
        webhook = {"event": "tracker_updated", "data": tracker}
    else:
        return None, []
    connector = registry.get("karrio").instance()
    return webhook, connector.map(webhook, peers.tms_config, peers.tms_mappings)


def _tms_id(tms_ids: list[str], in_tms: dict[str, dict[str, Any]]) -> str | None:
    """The first of the hub's TMS ids the TMS still has (None: every one is gone from the TMS)."""
    return next((i for i in sorted(tms_ids) if i in in_tms), None)


def _tms_seen(
    peers: _Peers,
    tms_ids: list[str],
    in_tms: dict[str, dict[str, Any]],
    trackers: dict[str, dict[str, Any] | ConnectorError],
) -> TmsSeen | None:
    """The first of the hub's TMS ids the TMS still has (``in_tms``: the page's shipments read in
    one list call), with its tracker's milestones (``trackers``: the page's, read beforehand)."""
    tms_id = _tms_id(tms_ids, in_tms)
    if tms_id is None:
        return None
    shipment = in_tms[tms_id]
    webhook, mapped = _tracker_webhook(peers, shipment, trackers)
    events = [MilestoneEvent.model_validate(m) for m in mapped]
    return TmsSeen(
        shipment_id=tms_id,
        status=str(shipment.get("status") or ""),
        tracker_id=shipment.get("tracker_id"),
        milestones=tuple((semantic_key(e, source=peers.tms.slug), e.event_type.value) for e in events),
        webhook=webhook,
    )


def _crm_seen(peers: _Peers, customer: str, reference: str) -> CrmSeen | None:
    if peers.crm_api is None:
        return None
    shown = crm_operations.shipment_status_shown(peers.crm_api, peers.crm_fields, customer, reference)
    return CrmSeen(
        account_id=str(shown["account_id"]) if shown["account_id"] else None,
        status=shown["status"],
        sequence=shown["sequence"],
    )


@dataclass(frozen=True)
class _Observed:
    hub: HubSeen
    tms: TmsSeen
    crm: CrmSeen | None

    def finding(self) -> Finding:
        return compare(self.hub, self.tms, self.crm)


def _observe(peers: _Peers, shipments: list[Shipment], totals: dict[str, Any]) -> Iterator[_Observed]:
    """What each system says about a page of shipments: their TMS ids in one query, the TMS's
    shipments in one list call per 100 ids, each tracker (Karrio lists trackers by no id), and the
    milestones already on the page's timelines in one query."""
    refs: dict[uuid.UUID, list[str]] = {}
    for object_id, external_id in (
        _refs(peers.tms_system)
        .filter(object_id__in=[s.pk for s in shipments])
        .values_list("object_id", "external_id")
    ):
        refs.setdefault(object_id, []).append(external_id)
    seen: list[tuple[Shipment, TmsSeen]] = []
    in_tms: dict[str, dict[str, Any]] | ConnectorError = {}
    if refs:
        try:
            in_tms = peers.karrio.shipments_by_ids([i for ids in refs.values() for i in ids])
        except ConnectorError as exc:  # the page is unreadable this time; the next run reads it again
            in_tms = exc
    trackers: dict[str, dict[str, Any] | ConnectorError] = {}
    if isinstance(in_tms, dict):
        chosen = (_tms_id(refs.get(shipment.pk, []), in_tms) for shipment in shipments)
        trackers = _trackers_read(
            peers, [tracker for i in chosen if i and (tracker := _tracker_wanted(in_tms[i]))]
        )
    for shipment in shipments:
        try:
            if isinstance(in_tms, ConnectorError):
                raise in_tms
            tms = _tms_seen(peers, refs.get(shipment.pk, []), in_tms, trackers)
        except (
            ConnectorError,
            ValidationError,
        ) as exc:  # an unmappable tracker: the inbox would dead-letter it
            totals["unreadable"] = totals.get("unreadable", 0) + 1
            totals.setdefault("unreadable_sample", []).append(f"{shipment.reference}: {exc}"[:300])
            del totals["unreadable_sample"][:-5]
            continue
        if tms is None:
            totals["not_in_tms"] = totals.get("not_in_tms", 0) + 1  # order_shipped's concern
            continue
        seen.append((shipment, tms))
    on_timeline: dict[uuid.UUID, set[str]] = {}
    keys = {key for _shipment, tms in seen for key, _type in tms.milestones}
    if keys:
        for shipment_id, dedupe_key in ShipmentEvent.objects.filter(
            shipment_id__in=[shipment.pk for shipment, _tms in seen], dedupe_key__in=keys
        ).values_list("shipment_id", "dedupe_key"):
            on_timeline.setdefault(shipment_id, set()).add(dedupe_key)
    for shipment, tms in seen:
        own = {key for key, _type in tms.milestones}
        customer = shipment.customer.code if shipment.customer else ""
        hub = HubSeen(
            reference=shipment.reference,
            status=shipment.status,
            sequence=shipment.sequence,
            customer=customer,
            event_keys=frozenset(on_timeline.get(shipment.pk, set()) & own),
        )
        yield _Observed(hub, tms, _crm_seen(peers, customer, shipment.reference) if customer else None)


# --- The check ---------------------------------------------------------------------------------------


@register
class ShipmentStatus(Check):
    name = NAME
    title = "The hub's shipment status agrees with the TMS tracker and the CRM account"
    systems = ("hub", "tms", "crm")
    every_s = 900
    defaults = {"window_days": 14, "grace_minutes": 10, "crm": True, "tms_concurrency": 4}
    page_size = (
        100  # shipments per keyset page: one TMS list call, then one tracker read (and two CRM reads) each
    )

    def estimate(self, ctx: CheckContext) -> int | None:
        tms = ctx.connection("tms")
        return shipments_examined(ctx, common.ref_system(tms)).count()

    def examine(self, ctx: CheckContext) -> Iterator[Finding]:
        peers = _peers(ctx)
        queryset = shipments_examined(ctx, peers.tms_system).select_related("customer").order_by("pk")
        last = None
        with ThreadPoolExecutor(
            max_workers=max(1, int(ctx.options.get("tms_concurrency") or 1)), thread_name_prefix=NAME
        ) as peers.pool:
            while True:
                page = list((queryset.filter(pk__gt=last) if last else queryset)[: self.page_size])
                if not page:
                    return
                last = page[-1].pk
                for observed in _observe(peers, page, ctx.totals):
                    ctx.totals["shipments"] = ctx.totals.get("shipments", 0) + 1
                    if status_rank(observed.hub.status) > status_rank(
                        tms_status(observed.hub.status, observed.tms)
                    ):
                        ctx.totals["hub_ahead_of_tms"] = ctx.totals.get("hub_ahead_of_tms", 0) + 1
                    yield observed.finding()

    # --- Repair --------------------------------------------------------------------------------------

    def repair(self, discrepancy: Any, ctx: CheckContext) -> dict[str, Any]:
        peers = _peers(ctx)
        shipment = (
            Shipment.objects.select_related("customer").filter(reference=discrepancy.business_key).first()
        )
        if shipment is None:
            raise NotRepairable(f"the hub has no shipment {discrepancy.business_key}")
        observed = next(_observe(peers, [shipment], {}), None)
        if observed is None:
            raise NotRepairable(
                f"the TMS has no shipment for {shipment.reference}, or its tracker is unreadable"
            )
        finding = observed.finding()
        if finding.ok:
            return {"writes": [], "note": "the systems agree now: nothing to repair"}
        if not finding.repairable:
            raise NotRepairable(f"{finding.kind}: {finding.summary}; an operator decides")
        tag = f"reconcile:{NAME}:{shipment.reference}"
        if finding.kind == "missed_milestone":
            return _milestones_receive(peers, observed, tag, discrepancy, dry_run=ctx.dry_run)
        return _crm_resend(peers, shipment, tag, dry_run=ctx.dry_run)


def _milestones_receive(
    peers: _Peers, observed: _Observed, tag: str, discrepancy: Any, *, dry_run: bool
) -> dict[str, Any]:
    """The webhook that never arrived, received on the TMS connection (the inbox applies it)."""
    webhook = observed.tms.webhook or {}
    plan = {
        "receive": {"connection": peers.tms.slug, "event": webhook.get("event"), "id": webhook["data"]["id"]}
    }
    if dry_run:
        return {"plan": [plan]}
    received = inbound_message_receive(
        connection=peers.tms,
        body=json.dumps(webhook, sort_keys=True, default=str).encode(),
        content_type="application/json",
        headers={"content-type": "application/json"},
        idempotency_key=None,  # the connector's natural id: the same as Karrio's webhook of this state
        correlation_id=f"{tag}:{discrepancy.pk.hex}"[:128],
    )
    return {
        "writes": [],
        "inbound": [
            {
                "message": str(received.message.pk),
                "created": received.created,
                "status": received.message.status,
            }
        ],
    }


def _crm_resend(peers: _Peers, shipment: Shipment, tag: str, *, dry_run: bool) -> dict[str, Any]:
    """The hub's current status written to the CRM through the ledger, as order-to-ship writes it."""
    if peers.crm is None:
        raise NotRepairable("no CRM connection is checked")
    key = f"{tag}#{shipment.sequence}"
    if dry_run:
        return {"plan": [{"connection": peers.crm.slug, "operation": "shipment.status", "business_key": key}]}
    latest = shipment.events.order_by("-occurred_at", "-created_at").first()
    effect = side_effect_perform(
        connection=peers.crm,
        operation="shipment.status",
        business_key=key,
        payload={
            "customer_code": shipment.customer.code,
            "shipment": {"reference": shipment.reference},
            "status": shipment.status,
            "sequence": shipment.sequence,
            "event_type": latest.event_type if latest else "",
            "occurred_at": latest.occurred_at.isoformat() if latest else None,
        },
    )
    return {
        "writes": [
            {"side_effect": str(effect.pk), "operation": effect.operation, "external_id": effect.external_id}
        ]
    }
