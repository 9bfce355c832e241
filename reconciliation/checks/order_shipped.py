"""order_shipped: every confirmed ERP sale older than its SLA has a TMS shipment and a hub shipment,
and the ids are linked both ways.

System of record: the ERP (Tryton) for the sale, the TMS (Karrio) for the shipment. What is compared,
per sale (business key: the canonical order reference):

- the hub has the order (an ExternalRef from the ERP's sale id), else ``missing_in_hub``;
- the TMS has an active shipment under the order's shipment reference (``SHP-<order>``, what
  order-to-ship books), else ``missing_shipment``; the hub has that shipment too, else
  ``missing_hub_shipment``;
- the links: the hub shipment carries the TMS id (an ExternalRef), the sale carries the TMS id in the
  fields the ERP connection's outbound field map names (``sale.reference`` by default), else
  ``unlinked``.

A sale's age is the time since it last changed in Tryton (``last_modified_at``, the clock the hub's
poll cursor uses): Tryton keeps no confirmation time, and a sale cannot have been handed over before
its last change. Only sales changed within ``window_days`` are examined.

Repairs, each through the path the hub normally takes: ``missing_in_hub`` receives the sale on the
ERP connection as the poll would have (same bytes, same natural id: a later poll of the unchanged
sale is a duplicate), so the order-to-ship flow starts from the inbox as usual;
``missing_shipment`` starts, resumes or retries the sale's order-to-ship run, and for a completed
run whose TMS shipment is gone tenders it again through the ledger; ``unlinked`` records the TMS id
on the hub shipment (the flow's own ``shipment_booked``) and writes the link on the sale through the
ledger (``sale.link_shipment``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from django.utils import timezone

from canonical.errors import ConflictError
from canonical.models import ExternalRef, Order, Shipment
from canonical.states import CANCELLED
from connectors import registry
from connectors.errors import ConnectorError
from connectors.karrio.client import KarrioClient
from connectors.karrio.operations import INACTIVE, NOT_BOUGHT
from connectors.tryton import operations as tryton
from connectors.tryton.client import TrytonClient
from connectors.tryton.translate import write_targets
from hub.connections.models import Connection
from hub.inbox.models import InboundMessage
from hub.inbox.services import inbound_message_receive
from hub.ledger.services import side_effect_perform
from hub.mappings.context import connection_context
from hub.workflows.flows import common
from hub.workflows.flows.order_to_ship import KEY as ORDER_TO_SHIP
from hub.workflows.models import FlowConfig, WorkflowRun
from hub.workflows.services import workflow_resume, workflow_retry_step, workflow_start
from reconciliation.checks.base import Check, CheckContext, Finding, NotRepairable, register

NAME = "order_shipped"
ACTOR = f"system:reconciliation:{NAME}"


# --- What each system says about one sale (plain data: the comparison below is pure) -------------------


@dataclass(frozen=True)
class SaleSeen:
    """The ERP's sale."""

    sale_id: int
    number: str
    state: str
    modified_at: str
    link_fields: dict[str, Any] = field(default_factory=dict)  # the sale's values of the link's targets


@dataclass(frozen=True)
class HubSeen:
    """The hub's order, its order-to-ship shipment and run."""

    order: str | None = None
    order_status: str | None = None
    shipment: str | None = None
    shipment_status: str | None = None
    tms_ids: tuple[str, ...] = ()  # the shipment's ExternalRefs in the TMS
    run: str | None = None
    run_status: str | None = None


@dataclass(frozen=True)
class TmsSeen:
    """The TMS's active shipment under the order's shipment reference."""

    shipment_id: str | None = None
    status: str | None = None
    tracking_number: str = ""
    total_charge: Any = None
    currency: str = ""


def link_expected(outbound: Any, *, tms_id: str) -> dict[str, Any]:
    """The sale fields the ERP connection's link writes (``sale.link_shipment``), with their values."""
    return write_targets(outbound, {"tms_shipment_id": tms_id})["sale"]


def compare(
    key: str, sale: SaleSeen, hub: HubSeen, tms: TmsSeen, *, expected_link: dict[str, Any] | None
) -> Finding:
    """One finding for one sale from what the ERP, the hub and the TMS say. Pure."""
    seen = {"erp": asdict(sale), "hub": asdict(hub), "tms": asdict(tms)}
    ids = tuple(str(i) for i in (sale.sale_id, tms.shipment_id) if i)

    def differs(kind: str, summary: str, *, repairable: bool, systems: tuple[str, ...], **extra) -> Finding:
        found = {**seen, **extra}
        return Finding(
            business_key=key,
            ok=False,
            kind=kind,
            summary=summary,
            systems=systems,
            expected={"erp": seen["erp"]},
            found=found,
            repairable=repairable,
            external_ids=ids,
            severity="error" if kind in ("missing_in_hub", "missing_shipment") else "warning",
        )

    if hub.order is None:
        return differs(
            "missing_in_hub",
            f"ERP sale {sale.number} ({sale.state}) is not in the hub",
            repairable=True,
            systems=("erp", "hub"),
        )
    if hub.order_status == Order.Status.CANCELLED:
        return differs(
            "cancelled_in_hub",
            f"ERP sale {sale.number} is {sale.state} but the hub's order {hub.order} is cancelled",
            repairable=False,
            systems=("erp", "hub"),
        )
    if tms.shipment_id is None:
        stopped = hub.run_status in (WorkflowRun.Status.COMPENSATED, WorkflowRun.Status.CANCELLED)
        cancelled = hub.shipment_status == CANCELLED
        return differs(
            "missing_shipment",
            f"order {hub.order} has no TMS shipment"
            + (f" (order-to-ship {hub.run_status})" if hub.run_status else " (no order-to-ship run)"),
            repairable=not (stopped or cancelled),
            systems=("erp", "tms", "hub"),
        )
    if hub.shipment is None:
        return differs(
            "missing_hub_shipment",
            f"the TMS shipment {tms.shipment_id} of order {hub.order} has no hub shipment",
            repairable=False,
            systems=("tms", "hub"),
        )
    missing = []
    if tms.shipment_id not in hub.tms_ids:
        missing.append("hub->tms")
    if expected_link is not None and any(sale.link_fields.get(k) != v for k, v in expected_link.items()):
        missing.append("erp->tms")
    if missing:
        return differs(
            "unlinked",
            f"order {hub.order} and TMS shipment {tms.shipment_id} are not linked ({', '.join(missing)})",
            repairable=True,
            systems=("erp", "tms", "hub"),
            missing_links=missing,
            expected_link=expected_link or {},
        )
    return Finding(business_key=key, ok=True)


# --- Reading the three systems -----------------------------------------------------------------------


@dataclass
class _Peers:
    erp: Connection
    tms: Connection
    erp_system: str
    tms_system: str
    tryton: TrytonClient
    erp_config: Any
    inbound: Any  # the ERP's inbound mapping set (sale -> order reference)
    outbound: Any  # the ERP's outbound mapping set (the link's targets)
    karrio: KarrioClient


def _peers(ctx: CheckContext) -> _Peers:
    erp, tms = ctx.connection("erp"), ctx.connection("tms")
    for connection, key in ((erp, "tryton"), (tms, "karrio")):
        if connection.connector != key:
            raise ConflictError(
                f"{NAME} reads a {key} connection; {connection.slug} is {connection.connector}"
            )
    erp_in = connection_context(erp, direction="inbound")
    erp_out = connection_context(erp, direction="outbound")
    return _Peers(
        erp=erp,
        tms=tms,
        erp_system=common.ref_system(erp),
        tms_system=common.ref_system(tms),
        tryton=TrytonClient.from_context(erp_out),
        erp_config=erp_out.config,
        inbound=erp_in.mappings,
        outbound=erp_out.mappings,
        karrio=KarrioClient.from_context(connection_context(tms, direction="outbound")),
    )


def _window(ctx: CheckContext) -> tuple[dt.datetime, dt.datetime]:
    """(modified_since, modified_before) in Tryton's clock: naive UTC."""
    now = timezone.now().astimezone(dt.UTC).replace(tzinfo=None)
    before = now - dt.timedelta(hours=float(ctx.options["sla_hours"]))
    return before - dt.timedelta(days=float(ctx.options["window_days"])), before


def _order_reference(peers: _Peers, document: dict[str, Any]) -> str | None:
    """The canonical order reference the hub gives the sale (the connector's own map)."""
    connector = registry.get("tryton").instance()
    try:
        (order,) = connector.map(document, peers.erp_config, peers.inbound)
    except (ConnectorError, ValueError):
        return None
    return str(order.get("reference") or "") or None


def _hub_seen(peers: _Peers, sale_ids: list[str]) -> dict[str, HubSeen]:
    """What the hub holds for a page of sales, by sale id (a fixed number of queries per page)."""
    refs = dict(
        ExternalRef.objects.filter(
            system=peers.erp_system, entity="order", external_id__in=sale_ids
        ).values_list("external_id", "object_id")
    )
    orders = {o.pk: o for o in Order.objects.filter(pk__in=refs.values()).only("pk", "reference", "status")}
    shipment_refs = {pk: common.shipment_reference(o) for pk, o in orders.items()}
    shipments = {
        s.reference: s
        for s in Shipment.objects.filter(reference__in=shipment_refs.values()).only(
            "pk", "reference", "status"
        )
    }
    tms_ids: dict[uuid.UUID, list[str]] = {}
    for object_id, external_id in ExternalRef.objects.filter(
        system=peers.tms_system, entity="shipment", object_id__in=[s.pk for s in shipments.values()]
    ).values_list("object_id", "external_id"):
        tms_ids.setdefault(object_id, []).append(external_id)
    runs = {
        r.business_key: r
        for r in WorkflowRun.objects.filter(
            flow=ORDER_TO_SHIP, business_key__in=[o.reference for o in orders.values()]
        ).only("pk", "business_key", "status")
    }
    seen = {}
    for sale_id, order_pk in refs.items():
        order = orders.get(order_pk)
        if order is None:
            continue
        shipment = shipments.get(shipment_refs[order.pk])
        run = runs.get(order.reference)
        seen[sale_id] = HubSeen(
            order=order.reference,
            order_status=order.status,
            shipment=shipment.reference if shipment else None,
            shipment_status=shipment.status if shipment else None,
            tms_ids=tuple(sorted(tms_ids.get(shipment.pk, []))) if shipment else (),
            run=str(run.pk) if run else None,
            run_status=run.status if run else None,
        )
    return seen


def _tms_seen(peers: _Peers, shipment_reference: str) -> TmsSeen:
    active = [
        s for s in peers.karrio.shipments_by_reference(shipment_reference) if s.get("status") not in INACTIVE
    ]
    bought = [s for s in active if s.get("status") not in NOT_BOUGHT] or active
    if not bought:
        return TmsSeen()
    shipment = min(bought, key=lambda s: (str(s.get("created_at") or ""), str(s.get("id"))))
    rate = shipment.get("selected_rate") or {}
    return TmsSeen(
        shipment_id=shipment["id"],
        status=shipment.get("status"),
        tracking_number=shipment.get("tracking_number") or "",
        total_charge=rate.get("total_charge"),
        currency=rate.get("currency") or "",
    )


def _sale_seen(document: dict[str, Any], expected_link: dict[str, Any] | None) -> SaleSeen:
    return SaleSeen(
        sale_id=int(document["id"]),
        number=str(document.get("number") or document["id"]),
        state=str(document.get("state") or ""),
        modified_at=str(document.get("last_modified_at") or ""),
        link_fields={k: document.get(k) for k in (expected_link or {})},
    )


@dataclass(frozen=True)
class _Observed:
    key: str
    sale: SaleSeen
    hub: HubSeen
    tms: TmsSeen
    expected_link: dict[str, Any] | None

    def finding(self) -> Finding:
        return compare(self.key, self.sale, self.hub, self.tms, expected_link=self.expected_link)


def _observe(peers: _Peers, documents: list[dict[str, Any]], keys: set[str] | None) -> Iterator[_Observed]:
    hub = _hub_seen(peers, [str(d["id"]) for d in documents])
    for document in documents:
        seen = hub.get(str(document["id"]), HubSeen())
        key = seen.order or _order_reference(peers, document) or f"{peers.erp_system}:sale:{document['id']}"
        if keys is not None and key not in keys:
            continue
        tms = TmsSeen()
        if seen.order is not None:
            reference = seen.shipment or f"SHP-{seen.order}"[:64]
            tms = _tms_seen(peers, reference)
        expected_link = link_expected(peers.outbound, tms_id=tms.shipment_id) if tms.shipment_id else None
        yield _Observed(key, _sale_seen(document, expected_link), seen, tms, expected_link)


# --- The check ---------------------------------------------------------------------------------------


@register
class OrderShipped(Check):
    name = NAME
    title = "Confirmed ERP sales have a TMS and a hub shipment, linked both ways"
    systems = ("erp", "tms", "hub")
    every_s = 3600
    defaults = {"sla_hours": 24, "window_days": 30}
    page_size = 100  # sales per Tryton page (one search_read) and per batch of findings

    def estimate(self, ctx: CheckContext) -> int | None:
        keys = ctx.keys()
        if keys:
            return len(keys)
        peers = _peers(ctx)
        since, before = _window(ctx)
        return tryton.sales_count(
            peers.tryton, peers.erp_config, modified_before=before, modified_since=since
        )

    def examine(self, ctx: CheckContext) -> Iterator[Finding]:
        peers = _peers(ctx)
        since, before = _window(ctx)
        keys = set(ctx.keys() or []) or None
        after_id, totals = 0, ctx.totals
        totals.update(sales=0, in_hub=0, shipped=0)
        while True:
            page = tryton.sales_page(
                peers.tryton,
                peers.erp_config,
                modified_before=before,
                modified_since=since,
                after_id=after_id,
                limit=self.page_size,
            )
            if not page:
                return
            after_id = int(page[-1]["id"])
            for observed in _observe(peers, page, keys):
                totals["sales"] += 1
                totals["in_hub"] += observed.hub.order is not None
                totals["shipped"] += observed.tms.shipment_id is not None
                yield observed.finding()

    # --- Repair --------------------------------------------------------------------------------------

    def repair(self, discrepancy: Any, ctx: CheckContext) -> dict[str, Any]:
        peers = _peers(ctx)
        sale_id = (discrepancy.expected.get("erp") or {}).get("sale_id")
        if sale_id is None:
            raise NotRepairable(f"discrepancy {discrepancy.pk} names no ERP sale")
        document = tryton.sale_read(peers.tryton, int(sale_id))
        if document is None:
            raise NotRepairable(f"ERP sale {sale_id} is gone")
        (now,) = _observe(peers, [document], None)
        finding = now.finding()
        if finding.ok:
            return {"writes": [], "note": "the systems agree now: nothing to repair"}
        if not finding.repairable:
            raise NotRepairable(f"{finding.kind}: {finding.summary}; an operator decides")
        tag = f"reconcile:{NAME}:{now.key}:{discrepancy.pk.hex}"
        if finding.kind == "missing_in_hub":
            return _take_in(peers, document, tag, dry_run=ctx.dry_run)
        if finding.kind == "missing_shipment":
            return _ship(peers, now, tag, dry_run=ctx.dry_run)
        return _link(peers, now, tag, dry_run=ctx.dry_run)


def _take_in(peers: _Peers, document: dict[str, Any], tag: str, *, dry_run: bool) -> dict[str, Any]:
    """Receive the sale on the ERP connection, as its poll would have (the inbox does the rest)."""
    plan = {"receive": {"connection": peers.erp.slug, "sale_id": document["id"]}}
    if dry_run:
        return {"plan": [plan]}
    received = inbound_message_receive(
        connection=peers.erp,
        body=tryton.sale_message(document),
        content_type="application/json",
        headers={"content-type": "application/json"},
        idempotency_key=None,  # the connector's natural id: the same as a poll of this sale
        correlation_id=tag[:128],
    )
    message = received.message
    if not received.created and message.status in (
        InboundMessage.Status.FAILED,
        InboundMessage.Status.PARTIAL,
    ):
        raise NotRepairable(
            f"sale {document['id']} was received before as message {message.pk} ({message.status}): "
            "replay its dead letter"
        )
    if not received.created and message.status == InboundMessage.Status.PROCESSED:
        raise NotRepairable(
            f"sale {document['id']} was received and processed as message {message.pk}, yet the hub "
            "has no order from it: read the message's trace"
        )
    return {
        "writes": [],
        "inbound": [{"message": str(message.pk), "created": received.created, "status": message.status}],
    }


def _ship(peers: _Peers, now: _Observed, tag: str, *, dry_run: bool) -> dict[str, Any]:
    """Start, resume or retry the sale's order-to-ship run; tender again through the ledger when the
    run completed and the TMS shipment is gone since."""
    run = WorkflowRun.objects.filter(flow=ORDER_TO_SHIP, business_key=now.hub.order).first()
    reason = f"{NAME}: order {now.hub.order} has no TMS shipment"
    if run is None:
        config = FlowConfig.objects.filter(flow=ORDER_TO_SHIP).first()
        if config is None or not config.connections:
            raise NotRepairable(f"{ORDER_TO_SHIP} has no configuration: switch the flow on first")
        if dry_run:
            return {"plan": [{"workflow": ORDER_TO_SHIP, "action": "start", "business_key": now.hub.order}]}
        inputs = {"connections": config.connections, "options": config.options, "order": now.hub.order}
        started, _ = workflow_start(
            flow=ORDER_TO_SHIP, business_key=now.hub.order, inputs=inputs, actor=ACTOR
        )
        return {"writes": [], "workflow": {"run": str(started.pk), "action": "start"}}
    if run.status in WorkflowRun.ACTIVE or run.status == WorkflowRun.Status.FAILED:
        action = "retry" if run.status == WorkflowRun.Status.FAILED else "resume"
        if dry_run:
            return {"plan": [{"workflow": ORDER_TO_SHIP, "action": action, "run": str(run.pk)}]}
        act = workflow_retry_step if action == "retry" else workflow_resume
        act(run_id=run.pk, reason=reason, actor=ACTOR)
        return {"writes": [], "workflow": {"run": str(run.pk), "action": action}}
    # Completed, and the TMS shipment is gone since (voided in the TMS): book it again.
    order = Order.objects.select_related("customer", "ship_to").get(reference=now.hub.order)
    shipment_ref = now.hub.shipment or common.shipment_reference(order)
    payload = common.order_payload(order, shipment_ref=shipment_ref)
    if dry_run:
        return {"plan": [{"connection": peers.tms.slug, "operation": "shipment.create", "business_key": tag}]}
    effect = side_effect_perform(
        connection=peers.tms, operation="shipment.create", business_key=tag, payload=payload
    )
    result = effect.result or {}
    shipment = common.shipment_for_order(order=order, reference=shipment_ref)
    common.shipment_booked(
        shipment=shipment,
        tms_system=peers.tms_system,
        tms_id=effect.external_id,
        tracking_number=result.get("tracking_number") or "",
        freight=result.get("total_charge"),
        currency=result.get("currency") or order.currency,
    )
    return {"writes": [_write(effect)]}


def _link(peers: _Peers, now: _Observed, tag: str, *, dry_run: bool) -> dict[str, Any]:
    """The TMS id on the hub shipment (the flow's ``shipment_booked``) and on the ERP sale (ledger)."""
    missing = now.finding().found.get("missing_links") or []
    plan: list[dict[str, Any]] = []
    if "hub->tms" in missing:
        plan.append({"hub": "external_ref", "shipment": now.hub.shipment, "tms_id": now.tms.shipment_id})
    if "erp->tms" in missing:
        plan.append({"connection": peers.erp.slug, "operation": "sale.link_shipment", "business_key": tag})
    if dry_run:
        return {"plan": plan}
    done: dict[str, Any] = {"writes": []}
    if "hub->tms" in missing:
        common.shipment_booked(
            shipment=Shipment.objects.get(reference=now.hub.shipment),
            tms_system=peers.tms_system,
            tms_id=now.tms.shipment_id or "",
            tracking_number=now.tms.tracking_number,
            freight=now.tms.total_charge,
            currency=now.tms.currency,
        )
        done["linked"] = {"shipment": now.hub.shipment, "tms_id": now.tms.shipment_id}
    if "erp->tms" in missing:
        effect = side_effect_perform(
            connection=peers.erp,
            operation="sale.link_shipment",
            business_key=tag,
            payload={
                "sale_id": now.sale.sale_id,
                "tms_shipment_id": now.tms.shipment_id,
                "tracking_number": now.tms.tracking_number or None,
                "carrier": "",
            },
        )
        done["writes"].append(_write(effect))
    return done


def _write(effect: Any) -> dict[str, Any]:
    return {"side_effect": str(effect.pk), "operation": effect.operation, "external_id": effect.external_id}
