"""The pure mapping applied to the golden inputs in tests/fixtures/bottlecrm/ (no Django, no I/O).

Shared by the golden-file tests and the capture script, which writes the inputs and checks the
rendered request bodies against the live CRM.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from connectors.bottlecrm import DEFAULT_MAPPINGS, mapping
from connectors.mapping import MappingSet

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "bottlecrm"
REQUESTS = FIXTURES / "requests"
RESPONSES = FIXTURES / "responses"
OUTBOUND = MappingSet.from_data(DEFAULT_MAPPINGS["outbound"])
CASE_FIELDS = {
    "shipment_id": "shipment_id",
    "shipment_status": "shipment_status",
    "exception_type": "exception_type",
}
ERP_KEY = "erp_customer_id"


def cases(folder: Path) -> list[str]:
    return sorted(
        p.name.removesuffix(".json")
        for p in folder.glob("*.json")
        if not p.name.endswith((".expected.json", ".meta.json"))
    )


def render_request(case: dict[str, Any]) -> dict[str, Any]:
    """A canonical payload (``requests/<case>.json``) to what the connector sends the CRM."""
    operation, payload = case["operation"], case["payload"]
    context = case.get("context") or {}
    if operation == "account.upsert":
        return {"body": mapping.account_body(payload, erp_key_field=ERP_KEY, mappings=OUTBOUND)}
    if operation == "contact.upsert":
        return {"body": mapping.contact_body(payload)}
    reference = mapping.required(payload, OUTBOUND, "shipment_reference")
    if operation == "case.open":
        body = mapping.case_body(
            payload,
            reference=reference,
            exception_type=mapping.required(payload, OUTBOUND, "exception_type"),
            fields=CASE_FIELDS,
            mappings=OUTBOUND,
            account_id=context.get("account_id"),
            contact_ids=context.get("contact_ids") or [],
        )
        return {"body": body}
    if operation == "shipment.status":
        return {
            "key": mapping.status_key(payload, reference),
            "note": mapping.status_note(payload, reference, payload["status"]),
        }
    if operation == "case.comment":
        text, key = mapping.comment_text(payload)
        return {"key": key, "comment": text}
    raise ValueError(f"no golden rendering for {operation}")


def render_response(name: str, raw: bytes) -> Any:
    """A captured CRM answer (``responses/<name>.json``) to what the connector reads from it; the
    file name's prefix says which answer it is."""
    answer = json.loads(raw)
    if name.startswith("webhook_"):
        return mapping.ticket_event_to_milestones(answer)
    if name.startswith("accounts_"):
        return [mapping.account_summary(a, erp_key_field=ERP_KEY) for a in mapping.account_rows(answer)]
    if name.startswith("cases_"):
        return [mapping.case_summary(c) for c in mapping.case_rows(answer)]
    if name.startswith("case_created"):
        return mapping.case_summary(answer["cases_obj"], created=True)
    if name.startswith("account_detail"):
        return {
            "account": mapping.account_summary(answer["account_obj"], erp_key_field=ERP_KEY),
            "status_sequences": [
                mapping.status_sequence(c["comment"], "SHP-42") for c in answer.get("comments") or []
            ],
        }
    if name.startswith("error_"):
        return mapping.error_messages(answer.get("errors", answer))
    raise ValueError(f"no golden reading for {name}")
