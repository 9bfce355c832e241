"""The pure translation applied to the golden inputs in tests/fixtures/bottlecrm/ (no Django, no I/O).

Shared by the golden-file tests and the capture script, which writes the inputs and checks the
rendered request bodies against the live CRM.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from connectors.bottlecrm import DEFAULT_MAPPINGS, translate
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
        return {"body": translate.account_body(payload, erp_key_field=ERP_KEY, mappings=OUTBOUND)}
    if operation == "contact.upsert":
        return {"body": translate.contact_body(payload)}
    reference = translate.required(payload, OUTBOUND, "shipment_reference")
    if operation == "case.open":
        body = translate.case_body(
            payload,
            reference=reference,
            exception_type=translate.required(payload, OUTBOUND, "exception_type"),
            fields=CASE_FIELDS,
            mappings=OUTBOUND,
            account_id=context.get("account_id"),
            contact_ids=context.get("contact_ids") or [],
        )
        return {"body": body}
    if operation == "shipment.status":
        return {
            "key": translate.status_key(payload, reference),
            "note": translate.status_note(payload, reference, payload["status"]),
        }
    if operation == "case.comment":
        text, key = translate.comment_text(payload)
        return {"key": key, "comment": text}
    raise ValueError(f"no golden rendering for {operation}")


def render_response(name: str, raw: bytes) -> Any:
    """A captured CRM answer (``responses/<name>.json``) to what the connector reads from it; the
    file name's prefix says which answer it is."""
    answer = json.loads(raw)
    if name.startswith("webhook_"):
        return translate.ticket_event_to_milestones(answer)
    if name.startswith("accounts_"):
        return [translate.account_summary(a, erp_key_field=ERP_KEY) for a in translate.account_rows(answer)]
    if name.startswith("cases_"):
        return [translate.case_summary(c) for c in translate.case_rows(answer)]
    if name.startswith("case_created"):
        return translate.case_summary(answer["cases_obj"], created=True)
    if name.startswith("account_detail"):
        return {
            "account": translate.account_summary(answer["account_obj"], erp_key_field=ERP_KEY),
            "status_sequences": [
                translate.status_sequence(c["comment"], "SHP-42") for c in answer.get("comments") or []
            ],
        }
    if name.startswith("error_"):
        return translate.error_messages(answer.get("errors", answer))
    raise ValueError(f"no golden reading for {name}")
