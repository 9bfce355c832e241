"""The ops dashboard (``/ops/``): the pipeline's health on one page, for staff.

An interface (STYLE.md section 3): the counting lives in :mod:`hub.ops.selectors`, one query per
block; this view only adds the admin links that let an operator drill into each number.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.db import models
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from canonical.models import Shipment, ShipmentException
from hub.connections.models import Connection
from hub.deadletters.models import DeadLetter
from hub.inbox.models import InboundMessage
from hub.ops import selectors
from hub.outbox.models import Delivery


def changelist_url(model: type[models.Model], **filters: object) -> str | None:
    """The admin changelist of ``model`` filtered by ``filters``, or None when it has no admin."""
    opts = model._meta
    try:
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    except NoReverseMatch:
        return None
    return f"{url}?{urlencode(filters)}" if filters else url


def _change_url(model: type[models.Model], pk: object) -> str | None:
    opts = model._meta
    try:
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[pk])
    except NoReverseMatch:
        return None


def _age(seconds: float | None) -> str:
    """A wait in the largest sensible unit: "none waiting", "42 s", "5 min 3 s", "2 h 10 min"."""
    if seconds is None:
        return "none waiting"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def dashboard_context(now: datetime | None = None) -> dict[str, Any]:
    """Every block of the dashboard, with links. Runs one query per block (see the selectors)."""
    now = now or timezone.now()
    since = selectors.recent_since(now)

    inbound = [
        {
            "status": row.status,
            "total": row.total,
            "recent": row.recent,
            "url": changelist_url(InboundMessage, status__exact=row.status),
        }
        for row in selectors.inbound_message_counts(since=since)
    ]
    deliveries = selectors.delivery_counts(since=since)
    delivery_rows = [
        {
            "label": label,
            "count": count,
            "url": changelist_url(Delivery, status__exact=status) if status else None,
        }
        for label, count, status in (
            ("Pending", deliveries.pending, Delivery.Status.PENDING),
            ("In flight", deliveries.in_flight, Delivery.Status.IN_FLIGHT),
            ("Delivered (last hour)", deliveries.delivered_recent, None),
            ("Dead", deliveries.dead, Delivery.Status.DEAD),
        )
    ]
    letters = selectors.open_dead_letter_counts()
    letter_rows = [
        {
            "stage": row.stage,
            "connection": row.connection,
            "count": row.count,
            "url": changelist_url(
                DeadLetter,
                stage__exact=row.stage,
                status__exact=DeadLetter.Status.OPEN,
                connection=row.connection,
            ),
        }
        for row in letters
    ]
    circuits = [
        {"slug": c.slug, "state": c.state, "url": _change_url(Connection, c.connection_id)}
        for c in selectors.outbound_circuits()
    ]
    shipments = [
        {"status": status, "count": count, "url": changelist_url(Shipment, status__exact=status)}
        for status, count in selectors.shipment_counts().items()
    ]
    exceptions = [
        {
            "kind": kind,
            "count": count,
            "url": changelist_url(
                ShipmentException, kind__exact=kind, status__exact=ShipmentException.Status.OPEN
            ),
        }
        for kind, count in selectors.open_exception_counts().items()
    ]
    oldest = selectors.oldest_waiting_message_age(now=now)
    return {
        "now": now,
        "inbound": inbound,
        "inbound_total": sum(row["total"] for row in inbound),
        "inbound_recent": sum(row["recent"] for row in inbound),
        "events_applied_recent": selectors.events_applied_count(since=since),
        "oldest_waiting_seconds": oldest,
        "oldest_waiting": _age(oldest),
        "deliveries": delivery_rows,
        "dead_letters": letter_rows,
        "dead_letters_total": sum(row.count for row in letters),
        "dead_letters_url": changelist_url(DeadLetter, status__exact=DeadLetter.Status.OPEN),
        "circuits": circuits,
        "shipments": shipments,
        "exceptions": exceptions,
        "exceptions_total": sum(row["count"] for row in exceptions),
    }


@staff_member_required
def ops_dashboard(request: HttpRequest) -> TemplateResponse:
    context = {
        **admin.site.each_context(request),
        "title": "Pipeline dashboard",
        **dashboard_context(),
    }
    return TemplateResponse(request, "ops/dashboard.html", context)
