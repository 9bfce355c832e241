"""Pure translation between canonical payloads and BottleCRM request bodies (no I/O).

Canonical payloads the connector accepts (``operate``), with the business key the hub's ledger
should use for each:

- ``account.upsert``: a canonical customer (contract v1 ``CustomerDoc``: ``code``, ``name``,
  ``email``, ``phone``, ``billing_address``, ``external_refs``), optionally with a structured
  ``address`` (``AddressDoc`` fields: ``address_line``, ``city``, ``region``, ``postal_code``,
  ``country``). Key: the ERP customer id, by default ``code`` (field ``erp_customer_id``).
- ``contact.upsert``: ``customer_code``, ``email``, ``first_name``/``last_name`` (or ``name``),
  ``phone``, ``title``. Key: ``<customer_code>:<email>``.
- ``shipment.status``: ``customer_code``, ``shipment.reference``, ``status`` (the shipment's
  current canonical status), ``sequence`` (per-shipment, increasing), and optionally ``event_type``,
  ``occurred_at``, ``event_id``, ``location`` (``code``, ``name``). Key: ``<reference>:<sequence>``.
- ``case.open``: ``shipment.reference``, ``exception_type`` (canonical exception kind), ``customer_code``,
  ``opened_at``, ``reason_code``, ``description``, ``shipment_status``, ``contact_email``.
  Key: ``<reference>:<exception_type>`` (plus the opening time when one shipment may have the same
  exception twice).
- ``case.comment``: ``shipment.reference``, ``exception_type``, ``comment``, and ``event_id`` (what makes
  one comment unique; a hash of the text otherwise), optionally ``shipment_status`` and ``case_id``.
- ``case.close``: ``shipment.reference``, ``exception_type``, ``resolution``, ``resolved_at``, ``case_id``.
- ``case.reopen``: ``shipment.reference``, ``exception_type``, ``reason``, ``case_id``.

Empty canonical values never clear a value in the CRM: people there enrich records, and an ERP
without a phone number should not erase the one the account team typed in.

Every note and comment the connector writes ends with a marker line ``[crossdock <kind> <key>]``.
It is how a retry (or the ledger's ``lookup`` after a crash) recognises a note it already wrote:
BottleCRM's comments carry no external id of their own.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from connectors.errors import MappingError
from connectors.mapping import MappingSet

# Case statuses after which a case no longer counts as open (BottleCRM cases/workflow.py).
TERMINAL_CASE_STATUSES = frozenset({"Closed", "Rejected", "Duplicate"})
CASE_STATUSES = ("New", "Assigned", "Pending", "Closed", "Rejected", "Duplicate")
CASE_PRIORITIES = ("Low", "Normal", "High", "Urgent")
CASE_TYPES = ("Question", "Incident", "Problem")

# Field limits of the CRM's models (Account/Contact/Case); longer values are cut, not refused.
NAME_MAX = 255
CASE_NAME_MAX = 64
ADDRESS_LINE_MAX = 255
CITY_MAX = 255
STATE_MAX = 255
POSTCODE_MAX = 64
COMMENT_MAX = 10_000  # characters of a comment or note kept; the marker always survives

# Canonical field -> default dotted path in the payload; ops staff may remap them per connection.
OUTBOUND_FIELDS = {
    "erp_customer_id": "code",
    "customer_code": "customer_code",
    "shipment_reference": "shipment.reference",
    "exception_type": "exception_type",
}
CODE_SETS = {"case_priority": list(CASE_PRIORITIES), "case_type": list(CASE_TYPES)}

_MARKER = re.compile(r"\[crossdock (?P<kind>[a-z.]+) (?P<key>[^\]\s]+)\]\s*$")


# --- Reading the payload --------------------------------------------------------------------------


def text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def required(payload: Mapping[str, Any], mappings: MappingSet, name: str) -> str:
    """A canonical field that must be there, read through the connection's field map."""
    value = text(mappings.get(payload, name, OUTBOUND_FIELDS.get(name, name)))
    if not value:
        path = mappings.path(name, OUTBOUND_FIELDS.get(name, name))
        raise MappingError(f"{name} is required (read from {path!r})", field=name, value=None)
    return value


def optional(payload: Mapping[str, Any], mappings: MappingSet, name: str) -> str:
    return text(mappings.get(payload, name, OUTBOUND_FIELDS.get(name, name)))


def when(value: Any) -> str:
    """An ISO 8601 time as ``2026-11-20 14:05 UTC`` (unparseable values as given)."""
    raw = text(value)
    if not raw:
        return ""
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return raw
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _cut(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"


# --- Markers ---------------------------------------------------------------------------------------


def marker(kind: str, key: str) -> str:
    safe = re.sub(r"\s+", "_", key.strip()) or "-"
    return f"[crossdock {kind} {safe}]"


def with_marker(body: str, kind: str, key: str) -> str:
    tag = marker(kind, key)
    return f"{_cut(body.strip(), COMMENT_MAX - len(tag) - 2)}\n\n{tag}"


def marker_of(comment: str) -> tuple[str, str] | None:
    """``(kind, key)`` of the marker a comment ends with, else None."""
    found = _MARKER.search(comment or "")
    return (found["kind"], found["key"]) if found else None


def find_marked(comments: list[Mapping[str, Any]], kind: str, key: str) -> Mapping[str, Any] | None:
    tag = marker(kind, key)
    return next((c for c in comments if (c.get("comment") or "").rstrip().endswith(tag)), None)


def text_key(value: str) -> str:
    """A stable key for a comment that came without an event id: a digest of its text."""
    return "sha256-" + hashlib.sha256(value.strip().encode()).hexdigest()[:16]


# --- Accounts --------------------------------------------------------------------------------------


def account_body(customer: Mapping[str, Any], *, erp_key_field: str, mappings: MappingSet) -> dict[str, Any]:
    """A canonical customer to the account fields the CRM should hold (empty values left out)."""
    erp_id = required(customer, mappings, "erp_customer_id")
    name = text(customer.get("name"))
    if not name:
        raise MappingError("name is required", field="name", value=None)
    body: dict[str, Any] = {"name": _cut(name, NAME_MAX)}
    for field in ("email", "phone"):
        if text(customer.get(field)):
            body[field] = text(customer.get(field))
    address = customer.get("address") if isinstance(customer.get("address"), Mapping) else {}
    line = text(address.get("address_line")) or ", ".join(
        part.strip() for part in text(customer.get("billing_address")).splitlines() if part.strip()
    )
    for field, value, limit in (
        ("address_line", line, ADDRESS_LINE_MAX),
        ("city", text(address.get("city")), CITY_MAX),
        ("state", text(address.get("region")), STATE_MAX),
        ("postcode", text(address.get("postal_code")), POSTCODE_MAX),
        ("country", text(address.get("country")).upper(), 2),
    ):
        if value:
            body[field] = _cut(value, limit)
    body["custom_fields"] = {erp_key_field: erp_id}
    return body


def changes(current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of ``desired`` that differ from ``current`` (custom fields compared key by key;
    the CRM merges a PATCH's ``custom_fields`` into the stored ones)."""
    patch: dict[str, Any] = {}
    for field, value in desired.items():
        if field == "custom_fields":
            stored = current.get("custom_fields") or {}
            cf = {k: v for k, v in value.items() if stored.get(k) != v}
            if cf:
                patch["custom_fields"] = cf
        elif field in ("name", "email"):
            # Case-insensitively: BottleCRM refuses to rename an account to its own name in other
            # letter case ("already exists"), and emails are case-insensitive anyway.
            if text(current.get(field)).casefold() != text(value).casefold():
                patch[field] = value
        elif text(current.get(field)) != text(value):
            patch[field] = value
    return patch


def account_summary(account: Mapping[str, Any], *, erp_key_field: str) -> dict[str, Any]:
    return {
        "account_id": account.get("id"),
        "name": account.get("name"),
        "erp_customer_id": (account.get("custom_fields") or {}).get(erp_key_field),
    }


# --- Contacts --------------------------------------------------------------------------------------


def contact_body(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A canonical contact to the contact fields (without the account link)."""
    email = text(payload.get("email"))
    if not email:
        raise MappingError("email is required", field="email", value=None)
    first, last = text(payload.get("first_name")), text(payload.get("last_name"))
    if not first and not last and text(payload.get("name")):
        first, _, last = text(payload.get("name")).rpartition(" ")
        if not first:  # one word: the CRM wants both
            first, last = last, "-"
    if not first:
        raise MappingError("first_name (or name) is required", field="first_name", value=None)
    body: dict[str, Any] = {"first_name": first, "last_name": last or "-", "email": email}
    for field in ("phone", "title"):
        if text(payload.get(field)):
            body[field] = text(payload.get(field))
    return body


def same_email(a: Any, b: Any) -> bool:
    """The CRM keeps contact emails unique case-insensitively, and its filter matches substrings."""
    return bool(text(a)) and text(a).casefold() == text(b).casefold()


# --- Shipment status ---------------------------------------------------------------------------------


def status_key(payload: Mapping[str, Any], reference: str) -> str:
    """What identifies one status update: the shipment's sequence number, else the event id."""
    if text(payload.get("sequence")):
        return f"{reference}#{text(payload.get('sequence'))}"
    if text(payload.get("event_id")):
        return f"{reference}@{text(payload.get('event_id'))}"
    raise MappingError(
        "a shipment status needs a sequence (or an event_id) to be written once", field="sequence", value=None
    )


def status_note(payload: Mapping[str, Any], reference: str, status: str) -> str:
    """The account note for one status change, e.g.
    ``Shipment SHP-42: IN_TRANSIT (DEPARTED_PICKUP at DEHAM Hamburg, 2026-11-20 14:05 UTC)``."""
    details = []
    event = text(payload.get("event_type"))
    location = payload.get("location") if isinstance(payload.get("location"), Mapping) else {}
    place = " ".join(p for p in (text(location.get("code")), text(location.get("name"))) if p)
    if event and event != status:
        details.append(event + (f" at {place}" if place else ""))
    elif place:
        details.append(f"at {place}")
    if when(payload.get("occurred_at")):
        details.append(when(payload.get("occurred_at")))
    line = f"Shipment {reference}: {status}" + (f" ({', '.join(details)})" if details else "")
    return with_marker(line, "shipment.status", status_key(payload, reference))


def status_sequence(comment: str, reference: str) -> int | None:
    """The sequence number of a status note this connector wrote for ``reference``, else None."""
    found = marker_of(comment)
    if not found or found[0] != "shipment.status":
        return None
    ref, sep, seq = found[1].rpartition("#")
    if not sep or ref != marker_key(reference) or not seq.isdigit():
        return None
    return int(seq)


def marker_key(value: str) -> str:
    return re.sub(r"\s+", "_", value.strip())


_STATUS_LINE = re.compile(r"^Shipment (?P<reference>\S+): (?P<status>[A-Z][A-Z_]*)\b")


def status_shown(comments: list[Mapping[str, Any]], reference: str) -> dict[str, Any] | None:
    """The newest status note this connector wrote for shipment ``reference`` among an account's
    comments (the highest sequence number): ``{"note_id", "sequence", "status"}``, else None."""
    latest: tuple[int, Mapping[str, Any]] | None = None
    for comment in comments:
        sequence = status_sequence(comment.get("comment") or "", reference)
        if sequence is not None and (latest is None or sequence > latest[0]):
            latest = (sequence, comment)
    if latest is None:
        return None
    sequence, note = latest
    line = _STATUS_LINE.match((note.get("comment") or "").strip())
    return {"note_id": note.get("id"), "sequence": sequence, "status": line["status"] if line else ""}


# --- Cases -----------------------------------------------------------------------------------------


def case_name(payload: Mapping[str, Any], reference: str, exception_type: str, *, attempt: int = 1) -> str:
    """``Shipment SHP-42: CUSTOMS_HOLD 2026-11-20 14:05`` (opened at, UTC).

    Case names are unique per org (case-insensitively, closed cases included) and at most 64
    characters, so the opening time is part of the name when it fits, and a retry after a clash with
    an unrelated case adds `` (2)``, `` (3)``... A name that must be cut loses what the webhook
    translation needs to find the shipment again (``case_name_parts``), so very long references cannot
    come back as ``EXCEPTION_RESOLVED``.
    """
    head = f"Shipment {reference}: {exception_type}"
    since = when(payload.get("opened_at")).removesuffix(" UTC")
    suffix = f" ({attempt})" if attempt > 1 else ""
    if since and len(head) + 1 + len(since) + len(suffix) <= CASE_NAME_MAX:
        head = f"{head} {since}"
    return _cut(head, CASE_NAME_MAX - len(suffix)) + suffix


_CASE_NAME = re.compile(r"^Shipment (?P<reference>\S+): (?P<exception_type>[A-Z][A-Z0-9_]*)(?=$| )")


def case_name_parts(name: str) -> tuple[str, str] | None:
    """``(shipment reference, exception type)`` from a case name this connector made, else None."""
    found = _CASE_NAME.match(name or "")
    return (found["reference"], found["exception_type"]) if found else None


def case_body(
    payload: Mapping[str, Any],
    *,
    reference: str,
    exception_type: str,
    fields: Mapping[str, str],
    mappings: MappingSet,
    account_id: str | None,
    contact_ids: list[str],
) -> dict[str, Any]:
    """A canonical shipment exception to a new case. ``fields`` names the custom-field keys
    (``shipment_id``, ``shipment_status``, ``exception_type``) configured for the connection."""
    priority = text(payload.get("priority")) or mappings.code(
        "case_priority", exception_type, field="exception_type"
    )
    if priority not in CASE_PRIORITIES:
        raise MappingError(
            f"priority {priority!r} is not one of {', '.join(CASE_PRIORITIES)}",
            field="priority",
            value=priority,
        )
    case_type = mappings.code("case_type", exception_type, field="exception_type")
    lines = [text(payload.get("description"))] if text(payload.get("description")) else []
    if text(payload.get("reason_code")):
        lines.append(f"Reason code: {text(payload.get('reason_code'))}")
    lines.append(f"Opened by Crossdock for shipment {reference} ({exception_type}).")
    custom = {fields["shipment_id"]: reference, fields["exception_type"]: exception_type}
    if text(payload.get("shipment_status")):
        custom[fields["shipment_status"]] = text(payload.get("shipment_status"))
    body: dict[str, Any] = {
        "name": case_name(payload, reference, exception_type),
        "status": "New",
        "priority": priority,
        "case_type": case_type,
        "description": "\n".join(lines),
        "custom_fields": custom,
        "contacts": contact_ids,
        "assigned_to": [],
        "teams": [],
    }
    if account_id:
        body["account"] = account_id
    return body


def comment_text(payload: Mapping[str, Any]) -> tuple[str, str]:
    """``(text with marker, key)`` for ``case.comment``."""
    comment = text(payload.get("comment"))
    if not comment:
        raise MappingError("comment is required", field="comment", value=None)
    key = text(payload.get("event_id")) or text_key(comment)
    return with_marker(comment, "case.comment", key), key


def case_summary(case: Mapping[str, Any], *, created: bool = False) -> dict[str, Any]:
    account = case.get("account")
    return {
        "case_id": case.get("id"),
        "name": case.get("name"),
        "status": case.get("status"),
        "account_id": account.get("id") if isinstance(account, Mapping) else account,
        "custom_fields": dict(case.get("custom_fields") or {}),
        "created": created,
    }


def is_open(case: Mapping[str, Any]) -> bool:
    return case.get("status") not in TERMINAL_CASE_STATUSES


def oldest_first(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """By creation time, then id: the CRM's lists are ordered by random UUIDs."""
    return sorted(records, key=lambda r: (text(r.get("created_at")), text(r.get("id"))))


# --- List answers ---------------------------------------------------------------------------------


def account_rows(answer: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Open and closed accounts of a ``GET /api/accounts/`` answer (they are listed apart)."""
    open_ = (answer.get("active_accounts") or {}).get("open_accounts") or []
    closed = (answer.get("closed_accounts") or {}).get("close_accounts") or []
    return [*open_, *closed]


def contact_rows(answer: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(answer.get("results") or [])


def case_rows(answer: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(answer.get("cases") or [])


# --- Errors ----------------------------------------------------------------------------------------


def error_messages(errors: Any) -> str:
    """BottleCRM's ``{"field": ["msg", ...]}`` (or a list or string) as ``field: msg; ...``."""
    if isinstance(errors, Mapping):
        parts = []
        for field, messages in errors.items():
            if isinstance(messages, list | tuple):
                messages = "; ".join(str(m) for m in messages)
            elif isinstance(messages, Mapping):
                messages = error_messages(messages)
            parts.append(f"{field}: {messages}")
        return "; ".join(parts)
    if isinstance(errors, list | tuple):
        return "; ".join(str(m) for m in errors)
    return text(errors)


# --- Inbound webhooks (ticket events) ----------------------------------------------------------------


def ticket_event_to_milestones(envelope: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A BottleCRM webhook envelope to canonical milestone events (contract v1 ``MilestoneEvent``).

    Only a ticket closed in the CRM means something to the hub: ``ticket.updated`` with status
    ``Closed`` on a case this connector opened becomes ``EXCEPTION_RESOLVED`` for its shipment. The
    webhook carries no custom fields, so the shipment and exception type are read from the case name
    (``Shipment SHP-42: CUSTOMS_HOLD since ...``); a case renamed beyond recognition is a
    MappingError naming the name. Every other event maps to nothing.

    The event id is ``bottlecrm-case:<case id>:closed:<closed_on>``: later edits of the closed case
    (each another ``ticket.updated``) and the echo of the hub's own ``case.close`` carry the same
    id, so the hub applies the resolution once.
    """
    if envelope.get("event") != "ticket.updated":
        return []
    data = envelope.get("data")
    if not isinstance(data, Mapping):
        raise MappingError("ticket.updated without a data object", field="data", value=None)
    if data.get("status") != "Closed":
        return []
    parts = case_name_parts(text(data.get("name")))
    if parts is None:
        raise MappingError(
            "the closed case's name does not say its shipment (expected 'Shipment <ref>: <EXCEPTION_TYPE> ...')",
            field="data.name",
            value=data.get("name"),
        )
    reference, exception_type = parts
    occurred_at = text(data.get("updated_at")) or text(envelope.get("created_at"))
    if not occurred_at:
        raise MappingError("ticket.updated without updated_at", field="data.updated_at", value=None)
    return [
        {
            "event_id": f"bottlecrm-case:{text(data.get('id'))}:closed:{text(data.get('closed_on')) or '-'}",
            "event_type": "EXCEPTION_RESOLVED",
            "occurred_at": occurred_at,
            "shipment": {"reference": reference},
            "details": {
                "exception_type": exception_type,
                "crm_case_id": text(data.get("id")),
                "crm_case_name": text(data.get("name")),
                "crm_account_id": text(data.get("account_id")),
                "resolved_in": "crm",
            },
        }
    ]


def status_from_envelope(envelope: Mapping[str, Any]) -> dict[str, Any]:
    """A subscribed canonical event (CloudEvents envelope, ``data.event`` + ``data.shipment``) as a
    ``shipment.status`` payload: the shipment's state after the event, keyed by its sequence."""
    data = envelope.get("data") if isinstance(envelope.get("data"), Mapping) else {}
    event = data.get("event") if isinstance(data.get("event"), Mapping) else {}
    shipment = data.get("shipment") if isinstance(data.get("shipment"), Mapping) else {}
    location = {"code": event.get("location_code")} if event.get("location_code") else {}
    return {
        "customer_code": shipment.get("customer"),
        "shipment": {"reference": shipment.get("reference")},
        "status": shipment.get("status"),
        "sequence": shipment.get("sequence"),
        "event_id": envelope.get("id"),
        "event_type": event.get("event_type"),
        "occurred_at": event.get("occurred_at"),
        "location": location,
    }
