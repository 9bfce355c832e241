"""The connector's writes, as find-or-create steps over ``KarrioClient`` (which does the I/O).

Karrio does not dedupe ``order_id`` nor shipment references, so every step looks before it writes:
running an operation again after any failure (a timeout after Karrio wrote, a crash between two
steps) completes the write instead of repeating it. ``*_lookup`` only reads, and reports a write
only when it is complete; a partial one (an order without its shipment, a tracker not yet tagged
with the reference) returns None, so the ledger runs ``operate``, which finishes it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from connectors.base import OperationResult
from connectors.errors import PermanentError
from connectors.karrio import translate
from connectors.karrio.client import KarrioClient

INACTIVE = ("cancelled",)  # a cancelled order or shipment no longer holds its reference
NOT_BOUGHT = ("draft", "cancelled")


def _shipper(config: BaseModel) -> dict[str, Any]:
    return {key: value for key, value in config.shipper.model_dump().items() if value}


def _oldest(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    return min(records, key=lambda r: (str(r.get("created_at") or ""), str(r.get("id")))) if records else None


# --- order.create ------------------------------------------------------------------------------------


def _order_active(client: KarrioClient, order_id: str) -> dict[str, Any] | None:
    return _oldest([o for o in client.orders_by_order_id(order_id) if o.get("status") not in INACTIVE])


def _order_ensure(client: KarrioClient, payload: translate.OrderPayload, config: BaseModel) -> dict[str, Any]:
    order = _order_active(client, payload.order_ref)
    if order is None:
        order = client.order_create(
            translate.order_body(
                payload, shipper=_shipper(config), default_weight_kg=config.default_item_weight_kg
            )
        )
    return order


def order_create(client: KarrioClient, payload: dict[str, Any], config: BaseModel) -> OperationResult:
    order = _order_ensure(client, translate.payload_parse(payload), config)
    return OperationResult(external_id=order["id"], data=translate.order_result_data(order))


def order_lookup(client: KarrioClient, payload: dict[str, Any]) -> OperationResult | None:
    order = _order_active(client, translate.payload_parse(payload).order_ref)
    return None if order is None else OperationResult(order["id"], translate.order_result_data(order))


# --- shipment.create ---------------------------------------------------------------------------------


def _shipment_active(client: KarrioClient, reference: str) -> dict[str, Any] | None:
    active = [s for s in client.shipments_by_reference(reference) if s.get("status") not in INACTIVE]
    bought = [s for s in active if s.get("status") not in NOT_BOUGHT]
    return _oldest(bought) or _oldest(active)


def _purchase_draft(client: KarrioClient, draft: dict[str, Any], service: str) -> dict[str, Any]:
    rate = next((r for r in draft.get("rates") or [] if r.get("service") == service), None)
    if rate is None:
        offered = ", ".join(sorted({str(r.get("service")) for r in draft.get("rates") or []})) or "none"
        raise PermanentError(f"draft shipment {draft['id']} has no rate for {service!r} (offered: {offered})")
    return client.shipment_purchase(draft["id"], rate["id"])


def shipment_create(client: KarrioClient, payload: dict[str, Any], config: BaseModel) -> OperationResult:
    """Order (found by order_id, else created), then the shipment bought with the configured service
    (one ``POST /v1/shipments``), then its tracker tagged with the reference for inbound webhooks."""
    parsed = translate.payload_parse(payload)
    service = parsed.service or config.service
    order = _order_ensure(client, parsed, config)
    shipment = _shipment_active(client, parsed.reference)
    if shipment is None:
        shipment = client.shipment_create(
            translate.shipment_body(
                parsed,
                order=order,
                shipper=_shipper(config),
                carrier_id=config.carrier_id,
                service=service,
                default_weight_kg=config.default_item_weight_kg,
            )
        )
    if shipment.get("status") == "draft":  # left by someone else's two-step purchase
        shipment = _purchase_draft(client, shipment, service)
    if shipment.get("tracker_id"):
        client.tracker_metadata_set(shipment["tracker_id"], {translate.REFERENCE_KEY: parsed.reference})
    return OperationResult(
        external_id=shipment["id"], data=translate.shipment_result_data(shipment, order=order)
    )


def shipment_lookup(client: KarrioClient, payload: dict[str, Any]) -> OperationResult | None:
    parsed = translate.payload_parse(payload)
    shipment = _shipment_active(client, parsed.reference)
    if shipment is None or shipment.get("status") in NOT_BOUGHT:
        return None
    if shipment.get("tracker_id"):
        tracker = client.tracker_get(shipment["tracker_id"])
        if (tracker.get("metadata") or {}).get(translate.REFERENCE_KEY) != parsed.reference:
            return None  # bought but not tagged: operate tags it (and buys nothing)
    order = _order_active(client, parsed.order_ref)
    return OperationResult(shipment["id"], translate.shipment_result_data(shipment, order=order))


# --- shipment.cancel ---------------------------------------------------------------------------------


def _shipment_to_cancel(client: KarrioClient, payload: dict[str, Any]) -> dict[str, Any]:
    shipment_id, reference = payload.get("external_id"), payload.get("reference")
    if shipment_id:
        return client.shipment_get(str(shipment_id))
    if not reference:
        raise PermanentError("invalid payload: shipment.cancel needs 'external_id' (shp_...) or 'reference'")
    found = client.shipments_by_reference(str(reference))
    shipment = next((s for s in found if s.get("status") not in INACTIVE), None) or _oldest(found)
    if shipment is None:
        raise PermanentError(f"no Karrio shipment with reference {reference!r} to cancel")
    return shipment


def _cancel_result(shipment: dict[str, Any]) -> OperationResult:
    return OperationResult(
        shipment["id"],
        {"status": shipment.get("status"), "reference": shipment.get("reference")},
    )


def shipment_cancel(client: KarrioClient, payload: dict[str, Any]) -> OperationResult:
    """Void the label (compensation). Idempotent: an already cancelled shipment is left alone."""
    shipment = _shipment_to_cancel(client, payload)
    if shipment.get("status") != "cancelled":
        shipment = client.shipment_cancel(shipment["id"])
    return _cancel_result(shipment)


def shipment_cancel_lookup(client: KarrioClient, payload: dict[str, Any]) -> OperationResult | None:
    shipment = _shipment_to_cancel(client, payload)
    return _cancel_result(shipment) if shipment.get("status") == "cancelled" else None


# --- webhook.register --------------------------------------------------------------------------------


def _webhook_result(hook: dict[str, Any]) -> OperationResult:
    return OperationResult(
        hook["id"],
        {"url": hook.get("url"), "enabled_events": hook.get("enabled_events"), "secret": hook.get("secret")},
    )


def _webhook_existing(client: KarrioClient, url: str) -> dict[str, Any] | None:
    return next((h for h in client.webhooks() if h.get("url") == url and not h.get("disabled")), None)


def webhook_register(client: KarrioClient, payload: dict[str, Any]) -> OperationResult:
    """Subscribe ``payload["url"]`` (Crossdock's inbound URL) to every event; an existing active
    subscription of the same URL is reused. The result's ``secret`` goes into the connection
    secret as ``webhook_secret``."""
    url = payload.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise PermanentError("invalid payload: webhook.register needs 'url' (http or https)")
    hook = _webhook_existing(client, url)
    if hook is None:
        hook = client.webhook_create(
            {
                "url": url,
                "enabled_events": payload.get("enabled_events") or ["all"],
                "description": payload.get("description") or "Crossdock inbound",
            }
        )
    return _webhook_result(hook)


def webhook_lookup(client: KarrioClient, payload: dict[str, Any]) -> OperationResult | None:
    hook = _webhook_existing(client, str(payload.get("url") or ""))
    return None if hook is None else _webhook_result(hook)
