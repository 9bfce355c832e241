"""master_data: customers, products and locations agree between the ERP (the system of record), the
hub and the CRM, field by field.

The owner rules, as the code keeps them:

- **Customers.** A hub customer with an external ref to the ERP (``ExternalRef`` system = the ERP
  connection's ``ref_system``, entity ``customer``) is the ERP's (``owner_systems``): every order
  from the ERP writes its name, e-mail and phone again (canonical.documents.order_document_apply),
  as the connection's inbound field map derives them from the party. ``hold_invoice_until_pod`` is
  the hub's own (billing policy) and the billing address comes from each sale's invoice address, not
  the party: neither is compared. The CRM account (custom field ``erp_customer_id`` = the customer
  code) follows the hub's customer: ``account.upsert`` writes name, e-mail, phone and address from
  it. Repairs: the hub copy through the canonical service (``record_update``), the CRM account
  through the ledger (``account.upsert`` with the ERP's values), both only for ERP-owned customers.
- **Products** (SKU = the ERP product code). The hub makes a product from the first order line that
  names it and never updates it: the hub copy does not follow the ERP after that, so differences are
  listed, not repaired.
- **Locations** (ship-tos, code ``<location_prefix><address id>``, the inbound map's default
  ``TRY-ADDR-{shipment_address.id}``). They carry no external ref (hub-owned by ``owner_systems``),
  though each new order re-writes them: differences are listed, not repaired.

Kinds: ``field_mismatch`` (expected = the ERP's values; found = per system, the values that differ),
``missing_in_erp``, ``missing_in_crm`` (listed; the CRM account is made by the order flows).
Business keys: ``customer:<code>``, ``product:<sku>``, ``location:<code>``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db.models import Exists, OuterRef, QuerySet

from canonical.errors import ValidationFailed
from canonical.models import Customer, ExternalRef, Location, Product
from canonical.services import record_update
from connectors.bottlecrm import DEFAULT_MAPPINGS as CRM_DEFAULT_MAPPINGS
from connectors.bottlecrm import operations as crm_operations
from connectors.bottlecrm import translate as crm_translate
from connectors.mapping import MappingSet
from connectors.tryton import DEFAULT_MAPPINGS
from connectors.tryton import operations as erp_operations
from connectors.tryton import translate as erp_translate
from connectors.tryton.client import TrytonClient
from hub.connections.models import Connection
from hub.ledger.services import side_effect_perform
from hub.mappings.context import connection_context
from hub.workflows.flows import common
from reconciliation.checks.base import Check, CheckContext, Finding, NotRepairable, register

NAME = "master_data"
SYSTEMS = ("erp", "hub", "crm")


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _same(field: str, a: Any, b: Any) -> bool:
    if field in ("name", "email"):  # as account.upsert compares them: BottleCRM keeps its own case
        return _text(a).casefold() == _text(b).casefold()
    return _text(a) == _text(b)


def differences(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of ``expected`` whose value in ``actual`` differs (``actual``'s value). Pure."""
    return {f: actual.get(f) for f, v in expected.items() if not _same(f, v, actual.get(f))}


def compare_customer(
    *,
    code: str,
    erp: Mapping[str, Any] | None,
    hub: Mapping[str, Any],
    crm: Mapping[str, Any] | None,
    crm_desired: Mapping[str, Any] | None,
    erp_id: str,
    compare_crm: bool = True,
) -> Finding:
    """One customer: ``erp`` the party's customer fields (None: no such party), ``hub`` the hub's,
    ``crm`` the account (None: none has the code), ``crm_desired`` the account body the ERP's values
    make (account.upsert's). Pure."""
    key = f"customer:{code}"
    if erp is None:
        return Finding(
            business_key=key,
            ok=False,
            kind="missing_in_erp",
            summary=f"customer {code}: the ERP has no party {erp_id}",
            systems=SYSTEMS[:2],
            expected={"party": erp_id},
            found={"hub": dict(hub)},
            severity="error",
            external_ids=(erp_id,),
        )
    hub_diff = differences(erp, hub)
    crm_diff: dict[str, Any] = {}
    if crm is not None and crm_desired is not None:
        patch = crm_translate.changes(crm, crm_desired)
        patch.pop("custom_fields", None)
        crm_diff = {f: crm.get(f) for f in patch}
    found: dict[str, Any] = {}
    if hub_diff:
        found["hub"] = hub_diff
    if crm_diff:
        found["crm"] = crm_diff
    ids = (erp_id, *([str(crm["id"])] if crm is not None else []))
    if crm is None and compare_crm:
        return Finding(
            business_key=key,
            ok=False,
            kind="missing_in_crm",
            summary=f"customer {code}: no CRM account has its code"
            + (f"; the hub differs from the ERP on {', '.join(sorted(hub_diff))}" if hub_diff else ""),
            systems=SYSTEMS,
            expected=dict(erp),
            found={**found, "crm": None},
            repairable=bool(hub_diff),
            external_ids=ids,
        )
    if not found:
        return Finding(business_key=key, ok=True)
    where = "; ".join(f"{system}: {', '.join(sorted(diff))}" for system, diff in found.items())
    return Finding(
        business_key=key,
        ok=False,
        kind="field_mismatch",
        summary=f"customer {code} differs from the ERP ({where})",
        systems=SYSTEMS,
        expected={**dict(erp), **({"crm": dict(crm_desired)} if crm_diff and crm_desired else {})},
        found=found,
        repairable=True,
        external_ids=ids,
    )


def compare_record(
    *, entity: str, key: str, erp: Mapping[str, Any] | None, hub: Mapping[str, Any], erp_ref: str
) -> Finding:
    """A product or location against the ERP's values (never repairable: the hub owns its copy). Pure."""
    business_key = f"{entity}:{key}"
    if erp is None:
        return Finding(
            business_key=business_key,
            ok=False,
            kind="missing_in_erp",
            summary=f"{entity} {key}: the ERP has no {erp_ref}",
            systems=SYSTEMS[:2],
            expected={"erp": erp_ref},
            found={"hub": dict(hub)},
        )
    diff = differences(erp, hub)
    if not diff:
        return Finding(business_key=business_key, ok=True)
    return Finding(
        business_key=business_key,
        ok=False,
        kind="field_mismatch",
        summary=f"{entity} {key} differs from the ERP ({', '.join(sorted(diff))})",
        systems=SYSTEMS[:2],
        expected=dict(erp),
        found={"hub": diff},
        external_ids=(erp_ref,),
    )


# --- Reading -----------------------------------------------------------------------------------------


class Readers:
    """The ERP's and the CRM's clients for one run (or one repair)."""

    def __init__(self, ctx: CheckContext):
        self.erp = ctx.connection("erp")
        if self.erp.connector != "tryton":
            raise ValidationFailed(
                f"{NAME} reads the ERP through the tryton connector, not {self.erp.connector!r}"
            )
        erp_ctx = connection_context(self.erp, direction="inbound")
        self.tryton = TrytonClient.from_context(erp_ctx)
        self.ref_system = getattr(erp_ctx.config, "ref_system", "tryton")
        self.inbound = (
            erp_ctx.mappings
            if isinstance(erp_ctx.mappings, MappingSet)
            else MappingSet.from_data(DEFAULT_MAPPINGS.get("inbound"))
        )
        self.crm: Connection | None = None
        self.crm_api: Any = None
        self.crm_fields: Any = None
        self.crm_mappings: Any = None
        if ctx.options.get("compare_crm", True):
            self.crm = ctx.connection("crm")
            if self.crm.connector != "bottlecrm":
                raise ValidationFailed(f"{NAME} reads the CRM through bottlecrm, not {self.crm.connector!r}")
            crm_ctx = connection_context(self.crm, direction="outbound")
            self.crm_api, self.crm_fields = crm_operations.reader(crm_ctx)
            self.crm_mappings = (
                crm_ctx.mappings
                if isinstance(crm_ctx.mappings, MappingSet)
                else MappingSet.from_data(CRM_DEFAULT_MAPPINGS.get("outbound"))
            )

    def account(self, code: str) -> dict[str, Any] | None:
        if self.crm_api is None:
            return None
        return crm_operations.account_of(self.crm_api, self.crm_fields, code)

    def account_desired(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        return crm_translate.account_body(
            payload,
            erp_key_field=self.crm_fields.erp_customer_id,
            mappings=self.crm_mappings,
        )


def _erp_customers(ref_system: str) -> QuerySet[Customer]:
    refs = ExternalRef.objects.filter(
        system=ref_system,
        entity="customer",
        content_type=ContentType.objects.get_for_model(Customer),
        object_id=OuterRef("pk"),
    )
    return Customer.objects.filter(Exists(refs))


def _party_ids(ref_system: str, customers: list[Customer]) -> dict[Any, str]:
    rows = ExternalRef.objects.filter(
        system=ref_system,
        entity="customer",
        content_type=ContentType.objects.get_for_model(Customer),
        object_id__in=[c.pk for c in customers],
    ).values_list("object_id", "external_id")
    return dict(rows)


def _hub_customer(customer: Customer) -> dict[str, Any]:
    return {"name": customer.name, "email": customer.email, "phone": customer.phone}


def _customer_finding(readers: Readers, customer: Customer, party_id: str, party: Mapping | None) -> Finding:
    erp = erp_translate.party_customer_fields(party, readers.inbound) if party is not None else None
    account = readers.account(customer.code) if readers.crm is not None else None
    desired = None
    if erp is not None and account is not None:
        desired = readers.account_desired({**common.customer_payload(customer), **erp})
    finding = compare_customer(
        code=customer.code,
        erp=erp,
        hub=_hub_customer(customer),
        crm=account,
        crm_desired=desired,
        erp_id=party_id,
        compare_crm=readers.crm is not None,
    )
    return finding


def _keyset(queryset: QuerySet, field: str, size: int) -> Iterator[list[Any]]:
    last = None
    base = queryset.order_by(field)
    while page := list((base.filter(**{f"{field}__gt": last}) if last is not None else base)[:size]):
        yield page
        last = getattr(page[-1], field)


@register
class MasterData(Check):
    name = NAME
    title = "Customers, products and locations agree with the ERP (and the CRM's accounts)"
    systems = SYSTEMS
    every_s = 86400
    defaults = {
        "entities": ["customer", "product", "location"],
        "location_prefix": "TRY-ADDR-",  # hub location code = prefix + Tryton address id
        "compare_crm": True,
    }
    page_size = 100  # one ERP read per page, one CRM search per customer

    def examine(self, ctx: CheckContext) -> Iterator[Finding]:
        readers = Readers(ctx)
        entities = ctx.options.get("entities") or []
        keys = ctx.keys()
        if "customer" in entities:
            customers = _erp_customers(readers.ref_system)
            if keys:
                customers = customers.filter(code__in=[k.removeprefix("customer:") for k in keys])
            for page in _keyset(customers, "code", self.page_size):
                ids = _party_ids(readers.ref_system, page)
                parties = erp_operations.parties_read(
                    readers.tryton, [int(i) for i in ids.values() if str(i).isdigit()]
                )
                for customer in page:
                    party_id = ids.get(customer.pk, "")
                    party = parties.get(int(party_id)) if party_id.isdigit() else None
                    yield _customer_finding(readers, customer, party_id, party)
        if "product" in entities:
            products = Product.objects.all()
            if keys:
                products = products.filter(sku__in=[k.removeprefix("product:") for k in keys])
            for page in _keyset(products, "sku", self.page_size):
                found = erp_operations.products_by_code(readers.tryton, [p.sku for p in page])
                for product in page:
                    row = found.get(product.sku)
                    yield compare_record(
                        entity="product",
                        key=product.sku,
                        erp={"name": row["name"]} if row else None,
                        hub={"name": product.name},
                        erp_ref=f"product {product.sku}" if row is None else str(row["id"]),
                    )
        if "location" in entities:
            prefix = ctx.options.get("location_prefix") or ""
            locations = (
                Location.objects.filter(code__startswith=prefix) if prefix else Location.objects.none()
            )
            if keys:
                locations = locations.filter(code__in=[k.removeprefix("location:") for k in keys])
            for page in _keyset(locations, "code", self.page_size):
                ids = {loc.code: loc.code.removeprefix(prefix) for loc in page}
                addresses = erp_operations.addresses_read(
                    readers.tryton, [int(i) for i in ids.values() if i.isdigit()]
                )
                for location in page:
                    address_id = ids[location.code]
                    address = addresses.get(int(address_id)) if address_id.isdigit() else None
                    yield compare_record(
                        entity="location",
                        key=location.code,
                        erp=erp_translate.address_location_fields(address) if address else None,
                        hub={name: getattr(location, name) for name in erp_translate.LOCATION_FIELDS},
                        erp_ref=f"address {address_id}",
                    )

    def repair(self, discrepancy: Any, ctx: CheckContext) -> dict[str, Any]:
        entity, _, code = discrepancy.business_key.partition(":")
        if entity != "customer":
            raise NotRepairable(f"the hub owns its {entity} records: change them in the ERP or by hand")
        readers = Readers(ctx)
        customer = _erp_customers(readers.ref_system).filter(code=code).first()
        if customer is None:
            raise NotRepairable(f"customer {code} is not the ERP's (no external ref to {readers.ref_system})")
        party_id = _party_ids(readers.ref_system, [customer]).get(customer.pk, "")
        party = (
            erp_operations.parties_read(readers.tryton, [int(party_id)]).get(int(party_id))
            if party_id.isdigit()
            else None
        )
        if party is None:
            raise NotRepairable(f"the ERP has no party {party_id} for customer {code}")
        erp = erp_translate.party_customer_fields(party, readers.inbound)
        hub_patch = differences(erp, _hub_customer(customer))
        hub_patch = {field: erp[field] for field in hub_patch}
        payload = {**common.customer_payload(customer), **erp}
        account = readers.account(code)
        crm_patch = {}
        if account is not None:
            crm_patch = crm_translate.changes(account, readers.account_desired(payload))
            crm_patch.pop("custom_fields", None)
        plan = {"hub": hub_patch, "crm": crm_patch}
        if ctx.dry_run:
            return {"plan": plan}
        done: dict[str, Any] = {"hub": sorted(hub_patch), "writes": []}
        if hub_patch:
            record_update(instance=customer, data=hub_patch)
        if crm_patch and readers.crm is not None:
            effect = side_effect_perform(
                connection=readers.crm,
                operation="account.upsert",
                business_key=f"reconcile:{NAME}:{discrepancy.business_key}:{discrepancy.pk}",
                payload=payload,
            )
            done["writes"].append(
                {
                    "side_effect": str(effect.pk),
                    "operation": "account.upsert",
                    "external_id": effect.external_id,
                }
            )
        return done
