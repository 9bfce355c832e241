"""The reconciliation framework with a check made for the test: recording findings (one open
discrepancy per key, closed when the systems agree again), dry runs, ignore, repairs through the
ledger (a repeated repair writes once), runs picked up again after a lost task or a dead worker, the
API, the command and the metrics.

The check's "other system" is the ``testpeer`` connector's in-process store; the real peers are
exercised by each real check's live tests (tests/reconciliation/live/).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from prometheus_client import generate_latest

from canonical.errors import ConflictError, ValidationFailed
from connectors.errors import PermanentError
from hub.connections.services import connection_save
from hub.core.services import periodic_tasks_sync
from hub.ledger.models import SideEffect
from hub.ledger.services import side_effect_perform
from hub.ops.metrics import metrics_registry
from reconciliation import checks, services
from reconciliation.checks import Check, CheckContext, Finding, NotRepairable, RepairFailed
from reconciliation.models import CheckConfig, Discrepancy, ReconciliationRun
from tests.factories.canonical import CarrierFactory

pytestmark = pytest.mark.django_db(transaction=True)  # repairs write through the ledger, outside transactions

# What the system of record says (key -> amount) and what the other system says; a test edits both.
TRUTH: dict[str, int] = {}
COPY: dict[str, int] = {}


class AmountsCheck(Check):
    """Compares TRUTH with COPY key by key; a difference is repaired by writing the truth through the
    ledger to the ``testpeer`` connection and then into COPY."""

    name = "test_amounts"
    title = "Amounts agree (test)"
    systems = ("erp", "crm")
    defaults = {"connections": {"crm": "peer-crm"}}
    page_size = 3  # several batches with a handful of keys

    def estimate(self, ctx: CheckContext) -> int:
        return len(ctx.keys() or TRUTH)

    def examine(self, ctx: CheckContext) -> Iterator[Finding]:
        for key in ctx.keys() or sorted(TRUTH):
            if key == "z-boom":
                raise RuntimeError("peer answered garbage")
            expected, found = TRUTH.get(key), COPY.get(key)
            ctx.totals["compared"] = ctx.totals.get("compared", 0) + 1
            yield Finding(
                business_key=key,
                ok=expected == found,
                kind="" if expected == found else "amount",
                summary=f"{key}: {found} in the CRM, {expected} in the ERP",
                systems=("erp", "crm"),
                expected={"amount": expected},
                found={"amount": found},
                severity="error",
                repairable=key != "manual",
                external_ids=(f"crm-{key}",),
            )

    def repair(self, discrepancy: Discrepancy, ctx: CheckContext) -> dict:
        if discrepancy.business_key == "manual":
            raise NotRepairable("only a person can fix this one")
        payload = {"key": discrepancy.business_key, "name": str(discrepancy.expected["amount"])}
        if ctx.dry_run:
            return {"would_write": payload}
        effect = side_effect_perform(
            connection=ctx.connection("crm"),
            operation="record.create",
            business_key=f"reconcile:{self.name}:{discrepancy.business_key}",
            payload=payload,
        )
        COPY[discrepancy.business_key] = discrepancy.expected["amount"]
        return {"writes": [{"side_effect": str(effect.pk), "external_id": effect.external_id}]}


@pytest.fixture(autouse=True)
def amounts_check(test_peer_connector):
    checks.register(AmountsCheck)
    TRUTH.clear()
    COPY.clear()
    connection_save(data={"slug": "peer-crm", "system": "crm", "connector": "testpeer", "config": {}})
    yield test_peer_connector.PEER
    checks.base.unregister(AmountsCheck.name)


def run(check: str = "test_amounts", **kwargs) -> ReconciliationRun:
    started = services.run_start(check=check, **kwargs)
    services.run_execute(run_id=started.pk)
    started.refresh_from_db()
    return started


def counts(r: ReconciliationRun) -> dict[str, int]:
    names = ("examined", "ok", "new", "still_open", "closed", "repaired", "ignored", "errors")
    return {n: getattr(r, n) for n in names if getattr(r, n)}


def open_keys() -> list[str]:
    return sorted(Discrepancy.objects.filter(status="open").values_list("business_key", flat=True))


# --- Recording -----------------------------------------------------------------------------------------


def test_a_run_opens_one_discrepancy_per_disagreeing_key_with_what_each_system_says():
    TRUTH.update({f"k{n}": n for n in range(7)})
    COPY.update({f"k{n}": n for n in range(7)} | {"k2": 20, "k5": 50})

    first = run()

    assert (first.status, first.total) == ("succeeded", 7)
    assert counts(first) == {"examined": 7, "ok": 5, "new": 2}
    assert first.report == {"totals": {"compared": 7}}
    k2 = Discrepancy.objects.get(business_key="k2")
    assert (k2.kind, k2.severity, k2.systems, k2.status) == ("amount", "error", ["erp", "crm"], "open")
    assert (k2.expected, k2.found, k2.external_ids) == ({"amount": 2}, {"amount": 20}, ["crm-k2"])
    assert k2.found_by == first and k2.first_seen == k2.last_seen


def test_a_second_run_updates_the_open_discrepancy_and_closes_the_one_fixed_meanwhile():
    TRUTH.update({"a": 1, "b": 2})
    COPY.update({"a": 10, "b": 20})
    first = run()
    a_before = Discrepancy.objects.get(business_key="a")
    COPY["b"] = 2  # fixed by hand in the CRM

    second = run()

    assert counts(second) == {"examined": 2, "ok": 1, "still_open": 1, "closed": 1}
    assert Discrepancy.objects.filter(business_key="a").count() == 1  # updated, not duplicated
    a = Discrepancy.objects.get(business_key="a")
    assert (a.pk, a.found_by, a.last_run) == (a_before.pk, first, second)
    assert a.last_seen > a_before.last_seen and a.first_seen == a_before.first_seen
    b = Discrepancy.objects.get(business_key="b")
    assert (b.status, b.closed_by) == ("resolved", services.SYSTEM_ACTOR)
    assert "agree again" in b.reason


def test_the_database_refuses_a_second_open_discrepancy_for_a_key():
    TRUTH["a"], COPY["a"] = 1, 2
    run()
    original = Discrepancy.objects.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        Discrepancy.objects.create(
            check_name=original.check_name,
            business_key="a",
            kind="amount",
            summary="twice",
            first_seen=timezone.now(),
            last_seen=timezone.now(),
        )


def test_a_dry_run_counts_and_samples_but_records_nothing():
    TRUTH.update({"a": 1, "b": 2})
    COPY.update({"a": 1, "b": 3})

    dry = run(dry_run=True)

    assert counts(dry) == {"examined": 2, "ok": 1, "new": 1}
    assert [f["business_key"] for f in dry.report["sample"]] == ["b"]
    assert not Discrepancy.objects.exists()


def test_an_ignored_discrepancy_is_not_opened_again():
    TRUTH["a"], COPY["a"] = 1, 2
    run()
    d = Discrepancy.objects.get()
    services.discrepancy_ignore(discrepancy_id=d.pk, actor="ops:ann", reason="the CRM copy is a test account")

    again = run()

    assert counts(again) == {"examined": 1, "ignored": 1}
    assert list(Discrepancy.objects.values_list("status", flat=True)) == ["ignored"]


def test_a_check_that_raises_fails_the_run_and_keeps_what_it_recorded():
    TRUTH.update({"a": 1, "b": 2, "c": 3, "z-boom": 0})
    COPY.update({"a": 9, "b": 2, "c": 3})

    failed = run()

    assert failed.status == "failed" and "RuntimeError: peer answered garbage" in failed.error
    assert failed.finished_at is not None and failed.lease_until is None
    assert open_keys() == ["a"]  # the first page (a, b, c) was recorded before "z-boom"


def test_a_scope_limits_the_run_and_a_bad_scope_is_refused():
    TRUTH.update({"a": 1, "b": 2})
    COPY.update({"a": 9, "b": 9})
    assert counts(run(scope={"references": ["b"]})) == {"examined": 1, "new": 1}
    assert open_keys() == ["b"]
    with pytest.raises(ValidationFailed, match="scope"):
        services.run_start(check="test_amounts", scope={"since": "yesterday"})


# --- Repairs -------------------------------------------------------------------------------------------


def test_a_repair_writes_through_the_ledger_once_and_closes_the_discrepancy(amounts_check):
    TRUTH["a"], COPY["a"] = 1, 5
    run()
    d = Discrepancy.objects.get()

    plan = services.discrepancy_repair(discrepancy_id=d.pk, actor="ops:ann", reason="fix", dry_run=True)
    assert plan.repair == {"plan": {"would_write": {"key": "a", "name": "1"}}, "dry_run": True}
    assert amounts_check.writes == 0 and Discrepancy.objects.get().status == "open"

    done = services.discrepancy_repair(discrepancy_id=d.pk, actor="ops:ann", reason="the ERP is right")
    assert (done.status, done.closed_by, done.reason) == ("repaired", "ops:ann", "the ERP is right")
    [write] = done.repair["writes"]
    assert SideEffect.objects.get(pk=write["side_effect"]).status == "done"
    assert amounts_check.writes == 1
    with pytest.raises(ConflictError, match="not open"):
        services.discrepancy_repair(discrepancy_id=d.pk, actor="ops:bob", reason="again")
    assert counts(run()) == {"examined": 1, "ok": 1}  # agrees now; nothing new
    assert amounts_check.writes == 1


def test_auto_repair_repairs_what_it_can_and_counts_the_rest(amounts_check):
    CheckConfig.objects.update_or_create(check_name="test_amounts", defaults={"auto_repair": True})
    TRUTH.update({"a": 1, "manual": 2})
    COPY.update({"a": 3, "manual": 4})

    first = run()

    assert counts(first) == {"examined": 2, "new": 2, "repaired": 1}  # "manual" is not repairable
    assert open_keys() == ["manual"]
    assert amounts_check.writes == 1
    second = run()  # the repaired key agrees; the manual one stays open, nothing written again
    assert counts(second) == {"examined": 2, "ok": 1, "still_open": 1}
    assert amounts_check.writes == 1 and SideEffect.objects.count() == 1


def test_a_failed_write_leaves_the_discrepancy_open_with_the_error(amounts_check):
    TRUTH["a"], COPY["a"] = 1, 5
    run()
    d = Discrepancy.objects.get()
    amounts_check.fail_next.append(PermanentError("CRM refused the record"))

    with pytest.raises(RepairFailed, match="CRM refused the record"):
        services.discrepancy_repair(discrepancy_id=d.pk, actor="ops:ann", reason="fix")

    d.refresh_from_db()
    assert d.status == "open" and "CRM refused the record" in d.repair["error"]


def test_operator_actions_need_a_reason_and_an_open_discrepancy():
    TRUTH["a"], COPY["a"] = 1, 5
    run()
    d = Discrepancy.objects.get()
    with pytest.raises(ValidationFailed, match="reason"):
        services.discrepancy_resolve(discrepancy_id=d.pk, actor="ops:ann", reason=" ")
    services.discrepancy_resolve(discrepancy_id=d.pk, actor="ops:ann", reason="fixed in the CRM by hand")
    with pytest.raises(ConflictError):
        services.discrepancy_ignore(discrepancy_id=d.pk, actor="ops:ann", reason="late")


# --- Runs picked up again ------------------------------------------------------------------------------


def test_lost_and_abandoned_runs_are_due_and_a_held_run_is_left_alone():
    lost = services.run_start(check="test_amounts")
    ReconciliationRun.objects.filter(pk=lost.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    fresh = services.run_start(check="test_amounts")
    held = services.run_start(check="test_amounts")
    ReconciliationRun.objects.filter(pk=held.pk).update(
        status="running", lease_until=timezone.now() + timedelta(seconds=30)
    )
    dead = services.run_start(check="test_amounts")
    ReconciliationRun.objects.filter(pk=dead.pk).update(
        status="running", lease_until=timezone.now() - timedelta(seconds=1)
    )

    assert set(services.reconciliation_runs_due()) == {lost.pk, dead.pk}
    assert fresh.pk not in services.reconciliation_runs_due()
    assert services.run_execute(run_id=held.pk) is None  # another worker holds it
    assert services.run_execute(run_id=dead.pk).status == "succeeded"


def test_the_schedule_starts_a_run_unless_switched_off_or_busy():
    assert services.run_scheduled(check="test_amounts") is not None
    assert services.run_scheduled(check="test_amounts") is None  # one queued already
    ReconciliationRun.objects.update(status="succeeded")
    CheckConfig.objects.filter(check_name="test_amounts").update(enabled=False)
    assert services.run_scheduled(check="test_amounts") is None


# --- API, command, metrics ------------------------------------------------------------------------------


def test_the_api_starts_runs_and_acts_on_discrepancies_for_admins_only(admin_caller, make_caller):
    TRUTH["a"], COPY["a"] = 1, 5
    api = admin_caller.http

    started = api.post("/api/v1/reconciliation/runs/", {"check": "test_amounts"}, format="json")
    assert started.status_code == 202 and started.json()["status"] == "queued"
    services.run_execute(run_id=started.json()["id"])
    assert api.get(f"/api/v1/reconciliation/runs/{started.json()['id']}/").json()["new"] == 1
    unknown = api.post("/api/v1/reconciliation/runs/", {"check": "nope"}, format="json")
    assert unknown.status_code == 400 and "unknown check" in unknown.json()["detail"]

    listed = api.get("/api/v1/reconciliation/discrepancies/", {"reference": "crm-a", "status": "open"}).json()
    [item] = listed["results"]
    assert (item["check"], item["business_key"], item["found"]) == ("test_amounts", "a", {"amount": 5})
    url = f"/api/v1/reconciliation/discrepancies/{item['id']}"
    assert api.post(f"{url}/ignore/", {}, format="json").status_code == 400  # no reason
    repaired = api.post(f"{url}/repair/", {"reason": "the ERP is right"}, format="json")
    assert repaired.status_code == 200 and repaired.json()["status"] == "repaired"
    again = api.post(f"{url}/resolve/", {"reason": "twice"}, format="json")
    assert again.status_code == 409 and again["Content-Type"] == "application/problem+json"

    [check] = [c for c in api.get("/api/v1/reconciliation/checks/").json() if c["name"] == "test_amounts"]
    assert (check["enabled"], check["auto_repair"], check["last_success_at"] is not None) == (
        True,
        False,
        True,
    )

    CarrierFactory(scac="ACME")
    partner = make_caller("partner", partner_code="ACME").http
    for path in ("checks/", "runs/", "discrepancies/", f"discrepancies/{item['id']}/"):
        assert partner.get(f"/api/v1/reconciliation/{path}").status_code == 403


def test_the_reconcile_command_runs_a_check_and_prints_its_counts():
    TRUTH.update({"a": 1, "b": 2})
    COPY.update({"a": 1, "b": 9})
    out = StringIO()

    call_command("reconcile", check="test_amounts", stdout=out)

    line = out.getvalue().strip().splitlines()[-1]
    assert "test_amounts" in line and "examined 2/2" in line and "(new 1)" in line and "succeeded" in line
    assert open_keys() == ["b"]


def test_metrics_show_open_discrepancies_and_the_last_success():
    TRUTH["a"], COPY["a"] = 1, 5
    run()

    text = generate_latest(metrics_registry()).decode()
    assert 'crossdock_discrepancies_open{check="test_amounts",severity="error"} 1.0' in text
    assert 'crossdock_reconciliation_last_success_timestamp_seconds{check="test_amounts"}' in text


def test_the_admin_lists_discrepancies_by_external_id_and_ignores_them_after_asking_why(admin_client):
    TRUTH.update({"a": 1, "b": 2})
    COPY.update({"a": 5, "b": 6})
    run()
    changelist = reverse("admin:reconciliation_discrepancy_changelist")

    found = admin_client.get(changelist, {"q": "crm-a"}).content.decode()
    assert ">a<" in found and ">b<" not in found
    a = Discrepancy.objects.get(business_key="a")
    page = admin_client.get(reverse("admin:reconciliation_discrepancy_change", args=[a.pk])).content.decode()
    assert "amount" in page and "crm-a" in page

    ask = admin_client.post(changelist, {"action": "ignore", "_selected_action": [str(a.pk)]})
    assert ask.status_code == 200 and "later runs do not open it again" in ask.content.decode()
    assert Discrepancy.objects.get(pk=a.pk).status == "open"
    done = admin_client.post(
        changelist,
        {"action": "ignore", "_selected_action": [str(a.pk)], "confirm": "yes", "reason": "test account"},
    )
    assert done.status_code == 302
    a.refresh_from_db()
    assert (a.status, a.reason, a.closed_by) == ("ignored", "test account", "admin:admin")

    configs = admin_client.get(reverse("admin:reconciliation_checkconfig_changelist")).content.decode()
    assert "Amounts agree (test)" in configs


def test_each_check_gets_a_schedule_ops_can_edit_and_a_sync_keeps_their_edit():
    periodic_tasks_sync()
    task = PeriodicTask.objects.get(name="crossdock:reconcile:order_shipped")
    assert (task.task, json.loads(task.args), task.enabled) == (
        "reconciliation.scheduled",
        ["order_shipped"],
        True,
    )
    assert task.interval.every == checks.get("order_shipped").every_s
    task.interval = IntervalSchedule.objects.create(
        every=900, period=IntervalSchedule.SECONDS
    )  # a second 900 s row
    task.enabled = False
    task.save()

    periodic_tasks_sync()  # setup_periodic_tasks on the next deploy

    task.refresh_from_db()
    assert (task.interval.every, task.enabled) == (900, False)
    sweep = PeriodicTask.objects.get(name="crossdock:sweep")  # the hub's own entries are still reset
    assert (sweep.task, sweep.enabled) == ("hub.sweep", True)
    assert not PeriodicTask.objects.filter(name="crossdock:workflows-sweep", enabled=True).exists()
