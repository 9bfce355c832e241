"""The `bottlecrm` connector through the hub's side-effect ledger (hub.ledger.services) against the
live peer: a retry, a replay, a crash between the CRM's write and the ledger's record, and a peer
that goes away mid-run never make a second account or case (counted in the CRM itself)."""

from __future__ import annotations

import pytest

from connectors.bottlecrm.client import CrmApi
from connectors.errors import PermanentError, TransientError
from hub.connections.services import connection_save
from hub.ledger.models import SideEffect
from hub.ledger.services import (
    Begun,
    side_effect_begin,
    side_effect_lease_expire,
    side_effect_perform,
    side_effect_retry,
)
from tests.connectors.bottlecrm.peer import accounts_counted, cases_counted, customer, exception, peer

pytestmark = [pytest.mark.peer, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def connection(crm_env):
    return connection_save(
        data={
            "slug": "crm-out",
            "system": "crm",
            "connector": "bottlecrm",
            "config": {"url": crm_env["CRM_URL"]},
        },
        secret=crm_env["CRM_PAT"],
    )


def perform(connection, operation: str, key: str, payload: dict) -> SideEffect:
    return side_effect_perform(connection=connection, operation=operation, business_key=key, payload=payload)


def crash_after_the_write(connection, connector, ctx, operation: str, key: str, payload: dict) -> Begun:
    """An attempt that took the lease, wrote to the CRM and died before recording anything; its
    lease then runs out (what time does to a dead worker's lease)."""
    begun = side_effect_begin(connection=connection, operation=operation, business_key=key, payload=payload)
    assert isinstance(begun, Begun)
    connector.operate(operation, payload, ctx)
    side_effect_lease_expire(effect_id=begun.effect.pk)
    return begun


def test_account_upsert_asked_twice_is_written_once(connection, crm: CrmApi, unique):
    first = perform(connection, "account.upsert", f"C-{unique}", customer(unique))
    replay = perform(connection, "account.upsert", f"C-{unique}", customer(unique))

    assert (first.status, replay.pk, replay.external_id, replay.attempts) == (
        "done",
        first.pk,
        first.external_id,
        1,
    )
    assert accounts_counted(crm, f"C-{unique}") == 1


def test_a_crash_between_the_account_write_and_its_record_is_found_not_written_again(
    connection, connector, ctx, crm: CrmApi, unique
):
    crash_after_the_write(connection, connector, ctx, "account.upsert", f"C-{unique}", customer(unique))

    effect = perform(connection, "account.upsert", f"C-{unique}", customer(unique))

    assert (effect.status, effect.found_by_lookup, effect.attempts) == ("done", True, 2)
    assert crm.accounts_by_custom_field("erp_customer_id", f"C-{unique}")[0]["id"] == effect.external_id
    assert accounts_counted(crm, f"C-{unique}") == 1


def test_a_crash_between_the_case_write_and_its_record_is_found_not_written_again(
    connection, connector, ctx, crm: CrmApi, unique
):
    perform(connection, "account.upsert", f"C-{unique}", customer(unique))
    key = f"SHP-{unique}:CUSTOMS_HOLD"
    crash_after_the_write(connection, connector, ctx, "case.open", key, exception(unique))

    effect = perform(connection, "case.open", key, exception(unique))
    replay = perform(connection, "case.open", key, exception(unique))

    assert (effect.status, effect.found_by_lookup) == ("done", True)
    assert replay.external_id == effect.external_id
    assert cases_counted(crm, f"SHP-{unique}") == 1


def test_a_crash_after_the_status_note_is_found_and_not_noted_twice(
    connection, connector, ctx, crm: CrmApi, unique
):
    account = perform(connection, "account.upsert", f"C-{unique}", customer(unique))
    update = {
        "customer_code": f"C-{unique}",
        "shipment": {"reference": f"SHP-{unique}"},
        "status": "DELIVERED",
        "sequence": 9,
    }
    crash_after_the_write(connection, connector, ctx, "shipment.status", f"SHP-{unique}:9", update)

    effect = perform(connection, "shipment.status", f"SHP-{unique}:9", update)

    notes = [c for c in crm.account_get(account.external_id)["comments"] if f"SHP-{unique}" in c["comment"]]
    assert (effect.found_by_lookup, [n["id"] for n in notes]) == (True, [effect.external_id])


def test_the_peer_going_away_mid_run_is_retried_and_leaves_one_case(connection, crm: CrmApi, unique):
    perform(connection, "account.upsert", f"C-{unique}", customer(unique))
    key = f"SHP-{unique}:CUSTOMS_HOLD"
    peer("stop")
    try:
        with pytest.raises(TransientError):
            perform(connection, "case.open", key, exception(unique))
        pending = SideEffect.objects.get(connection=connection, operation="case.open", business_key=key)
        assert (pending.status, pending.attempts, pending.lease_until) == ("pending", 1, None)
    finally:
        peer("start")

    effect = perform(connection, "case.open", key, exception(unique))

    # The second attempt could not know whether the first reached the CRM: it looked first.
    assert (effect.status, effect.attempts, effect.found_by_lookup) == ("done", 2, False)
    assert cases_counted(crm, f"SHP-{unique}") == 1


def test_an_operator_retry_of_a_refused_write_fails_again_without_writing(connection, crm: CrmApi, unique):
    payload = customer(unique, email="not-an-email")
    with pytest.raises(PermanentError, match="Enter a valid email address"):
        perform(connection, "account.upsert", f"C-{unique}", payload)

    effect = side_effect_retry(
        effect_id=SideEffect.objects.get(connection=connection, business_key=f"C-{unique}").pk
    )

    assert (effect.status, effect.attempts) == ("failed", 2)
    assert "email: Enter a valid email address" in effect.last_error
    assert accounts_counted(crm, f"C-{unique}") == 0
