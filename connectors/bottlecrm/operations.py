"""The `bottlecrm` connector's writes: upserts and case steps, each safe to run again.

All I/O goes through ``client.CrmApi``; the bodies come from ``translate`` (pure). Each operation
first looks for the record by its business key and writes only what is missing, so a retry, a
replay or the ledger's second attempt after a crash adopts what an earlier attempt wrote. Each
``*_find`` function is the matching ``lookup``: it only reads.

Where a shipment's status lives (``shipment.status``), decided for the account team:

1. every open case of the shipment gets the status in its ``shipment_status`` custom field, so
   cases can be filtered by it (``GET /api/cases/?cf_shipment_status=CUSTOMS_HOLD``) and whoever
   works a case sees where the shipment is now;
2. then one note per change is added to the customer's account ("Shipment SHP-42: IN_TRANSIT
   (DEPARTED_PICKUP at DEHAM Hamburg, 2026-11-20 14:05 UTC)"), the account's timeline of its shipments.

The note is written last: finding it means both steps are done, which is what ``lookup`` checks.
A status whose sequence number is lower than one already noted for the shipment is stale (events
arrive out of order) and changes nothing. A shipment without any case has its status in the notes
only: BottleCRM has no shipment record, and a custom field on the account could hold only one
shipment's status.

A record an operation needs but cannot find (no account for the customer code yet, no case for the
exception yet) is a TransientError: in an asynchronous hub the write that creates it may simply not
have happened yet; the hub's retries give up and dead-letter after the connection's max attempts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.base import OperationContext, OperationResult
from connectors.bottlecrm import translate
from connectors.bottlecrm.client import CrmApi, Rejected
from connectors.errors import MappingError, PermanentError, TransientError
from connectors.mapping import MappingSet

NAME_CLASH_ATTEMPTS = 5  # case names tried (" (2)", " (3)"...) when an unrelated case holds the name


class Fields:
    """The custom-field keys a connection uses (config)."""

    def __init__(self, config: Any):
        self.erp_customer_id: str = config.account_key_field
        self.shipment_id: str = config.shipment_id_field
        self.shipment_status: str = config.shipment_status_field
        self.exception_type: str = config.exception_type_field

    def case_fields(self) -> dict[str, str]:
        return {
            "shipment_id": self.shipment_id,
            "shipment_status": self.shipment_status,
            "exception_type": self.exception_type,
        }


def reader(ctx: OperationContext) -> tuple[CrmApi, Fields]:
    """The API and the custom-field keys of a connection's context, for reads outside the
    operations (reconciliation compares cases and accounts with the hub's records)."""
    config: Any = ctx.config
    return CrmApi(url=str(config.url), token=ctx.secret, http=ctx.client), Fields(config)


# --- Accounts --------------------------------------------------------------------------------------


def _account_by_erp_id(api: CrmApi, fields: Fields, erp_id: str) -> dict[str, Any] | None:
    # The cf_ filter is an exact JSON match; compare again anyway, and take the oldest on a tie.
    found = [
        a
        for a in api.accounts_by_custom_field(fields.erp_customer_id, erp_id)
        if (a.get("custom_fields") or {}).get(fields.erp_customer_id) == erp_id
    ]
    return translate.oldest_first(found)[0] if found else None


def account_of(api: CrmApi, fields: Fields, erp_id: str) -> dict[str, Any] | None:
    """The account holding ERP customer id ``erp_id`` (the oldest on a tie), or None. Only reads."""
    return _account_by_erp_id(api, fields, erp_id)


def account_for_customer(api: CrmApi, fields: Fields, customer_code: str) -> dict[str, Any]:
    account = _account_by_erp_id(api, fields, customer_code)
    if account is None:
        raise TransientError(
            f"no CRM account has {fields.erp_customer_id}={customer_code!r} yet (account.upsert it first)"
        )
    return account


def account_find(
    api: CrmApi, fields: Fields, payload: Mapping[str, Any], mappings: MappingSet
) -> OperationResult | None:
    erp_id = translate.required(payload, mappings, "erp_customer_id")
    account = _account_by_erp_id(api, fields, erp_id)
    if account is None:
        return None
    return OperationResult(
        external_id=str(account["id"]),
        data={**translate.account_summary(account, erp_key_field=fields.erp_customer_id), "created": False},
    )


def account_upsert(
    api: CrmApi, fields: Fields, payload: Mapping[str, Any], mappings: MappingSet
) -> OperationResult:
    """Find the account by ERP customer id, else create it; then bring changed fields up to date.

    A name held by another account (names are unique per org, case-insensitively) is adopted when
    that account has no ERP id or the same one; otherwise PermanentError names both ids.
    """
    desired = translate.account_body(payload, erp_key_field=fields.erp_customer_id, mappings=mappings)
    erp_id = desired["custom_fields"][fields.erp_customer_id]
    account = _account_by_erp_id(api, fields, erp_id)
    created = False
    if account is None:
        try:
            account_id = api.account_create(desired)
        except Rejected as exc:
            if not exc.about("name", "already exists"):
                raise
            account = _adoptable_by_name(api, fields, desired["name"], erp_id)
        else:
            created = True
            account = {"id": account_id, **desired}
    patch = {} if created else translate.changes(account, desired)
    if patch:
        api.account_update(str(account["id"]), patch)
    summary = translate.account_summary({**account, **desired}, erp_key_field=fields.erp_customer_id)
    return OperationResult(
        external_id=str(account["id"]),
        data={**summary, "created": created, "updated_fields": sorted(patch)},
    )


def _adoptable_by_name(api: CrmApi, fields: Fields, name: str, erp_id: str) -> dict[str, Any]:
    holders = api.accounts_by_name(name)
    if not holders:
        # Named like an account this token cannot see (or one deleted meanwhile): nothing to adopt.
        raise PermanentError(f"the CRM says an account named {name!r} exists, but it cannot be found")
    holder = holders[0]
    held_id = (holder.get("custom_fields") or {}).get(fields.erp_customer_id) or ""
    if held_id not in ("", erp_id):
        raise PermanentError(
            f"account name {name!r} is taken by CRM account {holder['id']} with "
            f"{fields.erp_customer_id}={held_id!r}, not {erp_id!r}; rename one of the two customers"
        )
    return holder


# --- Contacts --------------------------------------------------------------------------------------


def _contact_by_email(api: CrmApi, email: str) -> dict[str, Any] | None:
    return next(
        (c for c in api.contacts_by_email(email) if translate.same_email(c.get("email"), email)), None
    )


def _contact_account(contact: Mapping[str, Any]) -> str | None:
    account = contact.get("account")
    if isinstance(account, Mapping):
        account = account.get("id")
    return str(account) if account else None


def contact_find(
    api: CrmApi, fields: Fields, payload: Mapping[str, Any], mappings: MappingSet
) -> OperationResult | None:
    customer_code = translate.required(payload, mappings, "customer_code")
    account = _account_by_erp_id(api, fields, customer_code)
    email = translate.text(payload.get("email"))
    if account is None or not email:
        return None
    contact = _contact_by_email(api, email)
    if contact is None or _contact_account(contact) != str(account["id"]):
        return None
    return OperationResult(
        external_id=str(contact["id"]),
        data={
            "contact_id": contact["id"],
            "account_id": account["id"],
            "email": contact["email"],
            "created": False,
        },
    )


def contact_upsert(
    api: CrmApi, fields: Fields, payload: Mapping[str, Any], mappings: MappingSet
) -> OperationResult:
    """Find the contact by (account, email), else create it linked to the account.

    A contact with that email but no account is linked to this one; one linked to another account
    is a PermanentError (the CRM keeps emails unique per org, so it cannot be created twice).
    """
    customer_code = translate.required(payload, mappings, "customer_code")
    desired = translate.contact_body(payload)
    account_id = str(account_for_customer(api, fields, customer_code)["id"])
    contact = _contact_by_email(api, desired["email"])
    created = False
    if contact is None:
        try:
            contact_id = api.contact_create({**desired, "account": account_id})
        except Rejected as exc:
            if not exc.about("email", "already exists"):
                raise
            contact = _contact_by_email(api, desired["email"])  # created meanwhile, or hidden
            if contact is None:
                raise PermanentError(
                    f"the CRM says a contact with email {desired['email']!r} exists, but it cannot be found"
                ) from None
        else:
            created = True
            contact = {"id": contact_id, **desired, "account": account_id}
    linked = _contact_account(contact)
    if linked not in (None, account_id):
        raise PermanentError(
            f"contact {desired['email']!r} (CRM contact {contact['id']}) belongs to account {linked}, "
            f"not to {account_id} ({fields.erp_customer_id}={customer_code!r})"
        )
    patch = {} if created else translate.changes(contact, desired)
    if linked is None:
        patch["account"] = account_id
    if patch:
        api.contact_update(str(contact["id"]), patch)
    return OperationResult(
        external_id=str(contact["id"]),
        data={
            "contact_id": contact["id"],
            "account_id": account_id,
            "email": desired["email"],
            "created": created,
            "updated_fields": sorted(patch),
        },
    )


# --- Shipment status -------------------------------------------------------------------------------


def _status_target(payload: Mapping[str, Any], mappings: MappingSet) -> tuple[str, str, str, str]:
    customer_code = translate.required(payload, mappings, "customer_code")
    reference = translate.required(payload, mappings, "shipment_reference")
    status = translate.text(payload.get("status"))
    if not status:
        raise MappingError("status is required", field="status", value=None)
    return customer_code, reference, status, translate.status_key(payload, reference)


def shipment_status_find(
    api: CrmApi, fields: Fields, payload: Mapping[str, Any], mappings: MappingSet
) -> OperationResult | None:
    customer_code, _, status, key = _status_target(payload, mappings)
    account = _account_by_erp_id(api, fields, customer_code)
    if account is None:
        return None
    comments = api.account_get(str(account["id"])).get("comments") or []
    note = translate.find_marked(comments, "shipment.status", key)
    if note is None:
        return None
    return OperationResult(
        external_id=str(note["id"]),
        data={"account_id": account["id"], "note_id": note["id"], "status": status, "stale": False},
    )


def shipment_status_shown(api: CrmApi, fields: Fields, customer_code: str, reference: str) -> dict[str, Any]:
    """What the CRM shows of shipment ``reference`` (reads only): the customer's account and the
    newest status note written for the shipment. ``{"account_id": None}`` when the customer has no
    account, ``"status": None`` when the account shows no status of the shipment."""
    account = _account_by_erp_id(api, fields, customer_code)
    if account is None:
        return {"account_id": None, "note_id": None, "sequence": None, "status": None}
    comments = api.account_get(str(account["id"])).get("comments") or []
    shown = translate.status_shown(comments, reference) or {"note_id": None, "sequence": None, "status": None}
    return {"account_id": account["id"], **shown}


def shipment_status(
    api: CrmApi, fields: Fields, payload: Mapping[str, Any], mappings: MappingSet
) -> OperationResult:
    """Keep the shipment's current status on its open cases, then note the change on the account."""
    customer_code, reference, status, key = _status_target(payload, mappings)
    account_id = str(account_for_customer(api, fields, customer_code)["id"])
    comments = api.account_get(account_id).get("comments") or []
    noted = translate.find_marked(comments, "shipment.status", key)
    if noted is not None:  # written before: the case fields were updated before the note
        return OperationResult(
            external_id=str(noted["id"]),
            data={"account_id": account_id, "note_id": noted["id"], "status": status, "stale": False},
        )
    sequence = translate.text(payload.get("sequence"))
    if sequence.isdigit():
        seen = [translate.status_sequence(c.get("comment") or "", reference) for c in comments]
        latest = max((s for s in seen if s is not None), default=None)
        if latest is not None and latest > int(sequence):
            # Stale: a later status is already shown. Nothing to write, nothing to find again.
            return OperationResult(
                external_id="",
                data={"account_id": account_id, "status": status, "stale": True, "latest_sequence": latest},
            )
    updated = []
    for case in api.cases_list(**{f"cf_{fields.shipment_id}": reference}):
        if (case.get("custom_fields") or {}).get(fields.shipment_id) != reference or not translate.is_open(
            case
        ):
            continue
        if (case.get("custom_fields") or {}).get(fields.shipment_status) != status:
            api.case_update(str(case["id"]), {"custom_fields": {fields.shipment_status: status}})
            updated.append(case["id"])
    text = translate.status_note(payload, reference, status)
    comments = api.account_note(account_id, text)
    note = translate.find_marked(comments, "shipment.status", key)
    return OperationResult(
        external_id=str(note["id"]) if note else "",
        data={
            "account_id": account_id,
            "note_id": note["id"] if note else None,
            "status": status,
            "stale": False,
            "cases_updated": updated,
        },
    )


# --- Cases -----------------------------------------------------------------------------------------


def _case_target(payload: Mapping[str, Any], mappings: MappingSet) -> tuple[str, str]:
    return (
        translate.required(payload, mappings, "shipment_reference"),
        translate.required(payload, mappings, "exception_type"),
    )


def _cases_for(api: CrmApi, fields: Fields, reference: str, exception_type: str) -> list[dict[str, Any]]:
    """Every case of this shipment and exception type, oldest first."""
    cases = api.cases_list(
        **{f"cf_{fields.shipment_id}": reference, f"cf_{fields.exception_type}": exception_type}
    )
    matching = [
        c
        for c in cases
        if (c.get("custom_fields") or {}).get(fields.shipment_id) == reference
        and (c.get("custom_fields") or {}).get(fields.exception_type) == exception_type
    ]
    return translate.oldest_first(matching)


def cases_of(api: CrmApi, fields: Fields, reference: str, exception_type: str) -> list[dict[str, Any]]:
    """Every case (any status) of the shipment and exception type, oldest first. Only reads."""
    return _cases_for(api, fields, reference, exception_type)


def _open_case(api: CrmApi, fields: Fields, reference: str, exception_type: str) -> dict[str, Any] | None:
    return next((c for c in _cases_for(api, fields, reference, exception_type) if translate.is_open(c)), None)


def _case_by_id_or_key(
    api: CrmApi, fields: Fields, payload: Mapping[str, Any], reference: str, exception_type: str
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """(the open case, all cases of the key), or the case named by ``case_id`` as the open one."""
    if translate.text(payload.get("case_id")):
        case = api.case_get(translate.text(payload.get("case_id")))["cases_obj"]
        return (case if translate.is_open(case) else None), [case]
    cases = _cases_for(api, fields, reference, exception_type)
    return next((c for c in cases if translate.is_open(c)), None), cases


def case_open_find(
    api: CrmApi, fields: Fields, payload: Mapping[str, Any], mappings: MappingSet
) -> OperationResult | None:
    reference, exception_type = _case_target(payload, mappings)
    case = _open_case(api, fields, reference, exception_type)
    if case is None:
        return None
    return OperationResult(external_id=str(case["id"]), data=translate.case_summary(case))


def case_open(
    api: CrmApi, fields: Fields, payload: Mapping[str, Any], mappings: MappingSet
) -> OperationResult:
    """Exactly one open case per shipment and exception type: adopt the open one, else create it."""
    reference, exception_type = _case_target(payload, mappings)
    existing = _open_case(api, fields, reference, exception_type)
    if existing is not None:
        return OperationResult(external_id=str(existing["id"]), data=translate.case_summary(existing))
    customer_code = translate.optional(payload, mappings, "customer_code")
    account_id = str(account_for_customer(api, fields, customer_code)["id"]) if customer_code else None
    contact_ids = []
    if translate.text(payload.get("contact_email")):
        contact = _contact_by_email(api, translate.text(payload.get("contact_email")))
        if contact is not None and (account_id is None or _contact_account(contact) == account_id):
            contact_ids.append(str(contact["id"]))
    body = translate.case_body(
        payload,
        reference=reference,
        exception_type=exception_type,
        fields=fields.case_fields(),
        mappings=mappings,
        account_id=account_id,
        contact_ids=contact_ids,
    )
    for attempt in range(1, NAME_CLASH_ATTEMPTS + 1):
        body["name"] = translate.case_name(payload, reference, exception_type, attempt=attempt)
        try:
            case = api.case_create(body)
        except Rejected as exc:
            if not exc.about("name", "already exists"):
                raise
            # A concurrent attempt may have just created ours; otherwise the name belongs to an
            # unrelated (e.g. closed) case: take the next name.
            existing = _open_case(api, fields, reference, exception_type)
            if existing is not None:
                return OperationResult(external_id=str(existing["id"]), data=translate.case_summary(existing))
            continue
        return OperationResult(external_id=str(case["id"]), data=translate.case_summary(case, created=True))
    raise PermanentError(
        f"could not name a case for shipment {reference} ({exception_type}): "
        f"{NAME_CLASH_ATTEMPTS} names like {body['name']!r} are taken"
    )


def _all_comments(detail: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [*(detail.get("comments") or []), *(detail.get("internal_notes") or [])]


def _comment_target(
    api: CrmApi, fields: Fields, payload: Mapping[str, Any], mappings: MappingSet
) -> tuple[dict[str, Any], str, str]:
    reference, exception_type = _case_target(payload, mappings)
    open_case, cases = _case_by_id_or_key(api, fields, payload, reference, exception_type)
    # A late comment on an exception that was closed meanwhile goes to its latest case.
    case = open_case or (cases[-1] if cases else None)
    if case is None:
        raise TransientError(f"no case for shipment {reference} ({exception_type}) yet (case.open it first)")
    return case, reference, exception_type


def case_comment_find(
    api: CrmApi, fields: Fields, payload: Mapping[str, Any], mappings: MappingSet
) -> OperationResult | None:
    _, key = translate.comment_text(payload)
    try:
        case, _, _ = _comment_target(api, fields, payload, mappings)
    except TransientError:
        return None
    found = translate.find_marked(_all_comments(api.case_get(str(case["id"]))), "case.comment", key)
    if found is None:
        return None
    return OperationResult(
        external_id=str(found["id"]),
        data={"case_id": case["id"], "comment_id": found["id"], "created": False},
    )


def case_comment(
    api: CrmApi, fields: Fields, payload: Mapping[str, Any], mappings: MappingSet, *, internal: bool
) -> OperationResult:
    """Add the comment once (recognised by its marker); update the case's shipment status if given."""
    text, key = translate.comment_text(payload)
    case, _, _ = _comment_target(api, fields, payload, mappings)
    case_id = str(case["id"])
    status = translate.text(payload.get("shipment_status"))
    if (
        status
        and translate.is_open(case)
        and (case.get("custom_fields") or {}).get(fields.shipment_status) != status
    ):
        api.case_update(case_id, {"custom_fields": {fields.shipment_status: status}})
    found = translate.find_marked(_all_comments(api.case_get(case_id)), "case.comment", key)
    created = found is None
    if found is None:
        detail = api.case_comment(case_id, text, internal=internal)
        found = translate.find_marked(_all_comments(detail), "case.comment", key)
    return OperationResult(
        external_id=str(found["id"]) if found else "",
        data={"case_id": case_id, "comment_id": found["id"] if found else None, "created": created},
    )


def case_close_find(
    api: CrmApi, fields: Fields, payload: Mapping[str, Any], mappings: MappingSet
) -> OperationResult | None:
    reference, exception_type = _case_target(payload, mappings)
    open_case, cases = _case_by_id_or_key(api, fields, payload, reference, exception_type)
    if open_case is not None or not cases or cases[-1].get("status") != "Closed":
        return None
    return OperationResult(external_id=str(cases[-1]["id"]), data=translate.case_summary(cases[-1]))


def case_close(
    api: CrmApi, fields: Fields, payload: Mapping[str, Any], mappings: MappingSet, *, internal: bool
) -> OperationResult:
    """Close every open case of the shipment and exception type (the resolution noted once first).

    Already closed: returns the latest case unchanged.
    """
    reference, exception_type = _case_target(payload, mappings)
    open_case, cases = _case_by_id_or_key(api, fields, payload, reference, exception_type)
    if open_case is None:
        if cases:
            return OperationResult(external_id=str(cases[-1]["id"]), data=translate.case_summary(cases[-1]))
        raise TransientError(f"no case for shipment {reference} ({exception_type}) yet (case.open it first)")
    to_close = [c for c in cases if translate.is_open(c)]
    resolution = translate.text(payload.get("resolution"))
    resolved = translate.when(payload.get("resolved_at"))
    line = "Resolved" + (f" {resolved}" if resolved else "") + (f": {resolution}" if resolution else ".")
    key = translate.text(payload.get("event_id")) or translate.text_key(line)
    for case in to_close:
        case_id = str(case["id"])
        if resolution or resolved:
            comments = _all_comments(api.case_get(case_id))
            if translate.find_marked(comments, "case.close", key) is None:
                api.case_comment(case_id, translate.with_marker(line, "case.close", key), internal=internal)
        api.case_update(case_id, {"status": "Closed"})
    first = {**to_close[0], "status": "Closed"}
    return OperationResult(
        external_id=str(first["id"]),
        data={**translate.case_summary(first), "closed": [c["id"] for c in to_close]},
    )


def case_reopen_find(
    api: CrmApi, fields: Fields, payload: Mapping[str, Any], mappings: MappingSet
) -> OperationResult | None:
    reference, exception_type = _case_target(payload, mappings)
    open_case, _ = _case_by_id_or_key(api, fields, payload, reference, exception_type)
    if open_case is None:
        return None
    return OperationResult(external_id=str(open_case["id"]), data=translate.case_summary(open_case))


def case_reopen(
    api: CrmApi,
    fields: Fields,
    payload: Mapping[str, Any],
    mappings: MappingSet,
    *,
    internal: bool,
    status: str,
) -> OperationResult:
    """Reopen the latest closed case of the shipment and exception type (compensation for a close
    that came too early). An open case already there is returned unchanged."""
    reference, exception_type = _case_target(payload, mappings)
    open_case, cases = _case_by_id_or_key(api, fields, payload, reference, exception_type)
    if open_case is not None:
        return OperationResult(external_id=str(open_case["id"]), data=translate.case_summary(open_case))
    closed = [c for c in cases if c.get("status") == "Closed"]
    if not closed:
        raise TransientError(f"no closed case for shipment {reference} ({exception_type}) to reopen")
    case = closed[-1]
    case_id = str(case["id"])
    reason = translate.text(payload.get("reason"))
    if reason:
        key = translate.text(payload.get("event_id")) or translate.text_key(reason)
        if translate.find_marked(_all_comments(api.case_get(case_id)), "case.reopen", key) is None:
            api.case_comment(
                case_id, translate.with_marker(f"Reopened: {reason}", "case.reopen", key), internal=internal
            )
    api.case_update(case_id, {"status": status})
    return OperationResult(
        external_id=case_id, data={**translate.case_summary({**case, "status": status}), "reopened": True}
    )
