"""``/metrics``: pipeline gauges in the Prometheus text format, computed at scrape time.

Every scrape builds a fresh ``CollectorRegistry`` and fills it from :mod:`hub.ops.selectors`, so no
state lives in a process: each gunicorn worker answers with what the database holds now, and no
multiprocess directory is needed.

Access: without credentials only from loopback (a Prometheus or node agent on the same host), else
with an admin API key (``Authorization: Token <key>``). A request that came through a proxy
(``X-Forwarded-For`` / ``Forwarded``) is never treated as loopback, even when the proxy is local.
Refusals are problem+json: 401 without (valid) credentials, 403 for a partner key.
"""

from __future__ import annotations

import ipaddress

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from hub.api.v1.problems import CONTENT_TYPE as PROBLEM_CONTENT_TYPE
from hub.api.v1.problems import problem
from hub.connections.services import api_client_authenticate
from hub.ops import selectors
from reconciliation import selectors as reconciliation_selectors

PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def _from_loopback(request: HttpRequest) -> bool:
    if any(header in request.META for header in PROXY_HEADERS):
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def _refusal(status: int, slug: str, title: str, detail: str) -> JsonResponse:
    response = JsonResponse(
        problem(status, slug, title, detail), status=status, content_type=PROBLEM_CONTENT_TYPE
    )
    if status == 401:
        response["WWW-Authenticate"] = 'Token realm="crossdock"'
    return response


def _access_refused(request: HttpRequest) -> JsonResponse | None:
    """None when the request may read the metrics, else the problem response to answer."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header and _from_loopback(request):
        return None
    parts = header.split()
    if len(parts) != 2 or parts[0].lower() != "token":
        return _refusal(
            401,
            "not-authenticated",
            "Authentication required",
            "metrics are open to loopback only; send 'Authorization: Token <admin key>'",
        )
    client = api_client_authenticate(key=parts[1])
    if client is None:
        return _refusal(401, "authentication-failed", "Authentication failed", "invalid or revoked API key")
    if not client.is_admin:
        return _refusal(403, "permission-denied", "Permission denied", "only admin clients may read metrics")
    return None


def metrics_registry() -> CollectorRegistry:
    """A new registry holding every gauge, read from the database now."""
    registry = CollectorRegistry()
    since = selectors.recent_since()

    inbound = Gauge(
        "crossdock_inbound_messages", "Inbound messages by status.", ["status"], registry=registry
    )
    for row in selectors.inbound_message_counts(since=since):
        inbound.labels(status=row.status).set(row.total)

    deliveries = Gauge(
        "crossdock_deliveries", "Outbound deliveries by status.", ["status"], registry=registry
    )
    for status, count in selectors.delivery_counts(since=since).by_status().items():
        deliveries.labels(status=status).set(count)

    letters = Gauge(
        "crossdock_dead_letters_open", "Open dead letters by pipeline stage.", ["stage"], registry=registry
    )
    by_stage = selectors.open_dead_letters_by_stage(selectors.open_dead_letter_counts())
    for stage, count in by_stage.items():
        letters.labels(stage=stage).set(count)

    oldest = Gauge(
        "crossdock_oldest_waiting_message_seconds",
        "Seconds the oldest inbound message not yet picked up by a worker has waited (0 when none).",
        registry=registry,
    )
    oldest.set(selectors.oldest_waiting_message_age() or 0.0)

    circuits = Gauge(
        "crossdock_circuit_open",
        "1 when the outbound connection's circuit breaker is open, else 0.",
        ["connection"],
        registry=registry,
    )
    for circuit in selectors.outbound_circuits():
        circuits.labels(connection=circuit.slug).set(1 if circuit.is_open else 0)

    shipments = Gauge("crossdock_shipments", "Shipments by status.", ["status"], registry=registry)
    for status, count in selectors.shipment_counts().items():
        shipments.labels(status=status).set(count)
    _reconciliation_gauges(registry)
    return registry


def _reconciliation_gauges(registry: CollectorRegistry) -> None:
    discrepancies = Gauge(
        "crossdock_discrepancies_open",
        "Open reconciliation discrepancies by check and severity.",
        ["check", "severity"],
        registry=registry,
    )
    for check, severity, count in reconciliation_selectors.open_discrepancy_counts():
        discrepancies.labels(check=check, severity=severity).set(count)
    duration = Gauge(
        "crossdock_reconciliation_run_seconds",
        "Duration of each check's latest finished run.",
        ["check"],
        registry=registry,
    )
    last_success = Gauge(
        "crossdock_reconciliation_last_success_timestamp_seconds",
        "When each check last finished a run successfully (Unix time; absent when never).",
        ["check"],
        registry=registry,
    )
    for run in reconciliation_selectors.last_runs():
        if run.started_at and run.finished_at:
            duration.labels(check=run.check_name).set((run.finished_at - run.started_at).total_seconds())
    for view in reconciliation_selectors.checks_overview():
        if view.last_success_at is not None:
            last_success.labels(check=view.name).set(view.last_success_at.timestamp())


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    refused = _access_refused(request)
    if refused is not None:
        return refused
    return HttpResponse(generate_latest(metrics_registry()), content_type=CONTENT_TYPE_LATEST)
