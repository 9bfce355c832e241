"""hub.outbox.breaker: the failure-rate window, the minimum number of calls, half-open with several
probes, per-connection policies; on real Redis, and through the deliverer with a real HTTP peer."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from connectors.webhook import Config as WebhookConfig
from hub.core.errors import ValidationFailed
from hub.outbox import breaker
from hub.outbox.breaker import BreakerPolicy
from hub.outbox.models import Delivery
from tests.factories.canonical import ShipmentFactory
from tests.hub.test_env import _start
from tests.hub.test_outbox_services import _send_due, peer, record, subscribe, webhook  # noqa: F401


@pytest.fixture(autouse=True)
def _private_networks_allowed(settings):
    settings.CROSSDOCK_ALLOW_PRIVATE_NETWORKS = True  # the peer listens on 127.0.0.1


POLICY = BreakerPolicy(window_s=30, min_calls=10, failure_percent=75, open_s=30, probes=3)


def policy(**changes) -> BreakerPolicy:
    return BreakerPolicy(**{**POLICY.__dict__, **changes})


def trip(connection_id, p: BreakerPolicy) -> None:
    assert breaker.breaker_record(connection_id, succeeded=0, failed=p.min_calls, policy=p) == "opened"


def half_open(connection_id, p: BreakerPolicy) -> None:
    trip(connection_id, p)
    time.sleep(p.open_s + 0.1)
    assert breaker.breaker_state(connection_id) == "half-open"


# --- The rules ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("calls", "failed", "trips"),
    [
        (9, 9, False),  # every send failed, but fewer than min_calls: not enough evidence
        (10, 10, True),  # a dead receiver: min_calls sends, all failed
        (10, 8, True),  # 80 % >= 75 %
        (20, 15, True),  # exactly at the threshold opens
        (20, 14, False),  # 70 %
        (100, 50, False),  # a flaky receiver failing half its sends stays closed
        (0, 0, False),
    ],
)
def test_window_opens_only_with_min_calls_and_a_failure_rate_at_or_above_the_threshold(calls, failed, trips):
    assert breaker.window_trips(calls=calls, failed=failed, policy=POLICY) is trips


@pytest.mark.parametrize(
    ("succeeded", "failed", "percent", "verdict"),
    [
        (0, 0, 75, None),
        (0, 1, 75, None),  # one failed probe of three does not condemn a flaky receiver
        (0, 2, 75, None),
        (0, 3, 75, "reopen"),  # all three failed
        (1, 0, 75, "close"),  # even two more failures would be 67 % < 75 %
        (1, 2, 75, "close"),
        (0, 2, 50, "reopen"),  # a stricter connection: two of three is 67 % >= 50 %
        (1, 1, 50, None),
        (2, 0, 50, "close"),
        (3, 3, 50, "reopen"),  # more answers than probes (a lost slot retaken) count as more probes
    ],
)
def test_probe_verdict_is_decided_as_soon_as_the_unanswered_probes_cannot_change_it(
    succeeded, failed, percent, verdict
):
    p = policy(failure_percent=percent)
    assert breaker.probe_verdict(succeeded=succeeded, failed=failed, policy=p) == verdict


def test_policy_defaults_come_from_settings_and_each_can_be_set_per_connection(settings):
    settings.CROSSDOCK_BREAKER_WINDOW_S = 40
    settings.CROSSDOCK_BREAKER_MIN_CALLS = 12
    settings.CROSSDOCK_BREAKER_FAILURE_PERCENT = 80
    settings.CROSSDOCK_BREAKER_OPEN_S = 15
    settings.CROSSDOCK_BREAKER_PROBES = 4
    defaults = BreakerPolicy(window_s=40, min_calls=12, failure_percent=80, open_s=15, probes=4)

    assert breaker.breaker_policy(None) == defaults
    assert breaker.breaker_policy(WebhookConfig(url="https://example.com/h")) == defaults
    config = WebhookConfig(url="https://example.com/h", breaker_min_calls=5, breaker_probes=2)
    assert breaker.breaker_policy(config) == policy(
        window_s=40, min_calls=5, failure_percent=80, open_s=15, probes=2
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("breaker_failure_percent", 0),
        ("breaker_failure_percent", 101),
        ("breaker_min_calls", 0),
        ("breaker_probes", 0),
        ("breaker_open_s", 0),
        ("breaker_window_s", 3601),
        ("breaker_probes", "three"),
    ],
)
def test_out_of_range_breaker_config_is_refused_naming_the_field(field, value):
    with pytest.raises(ValidationFailed) as refused:
        webhook("bad-breaker", **{field: value})
    assert [e["field"] for e in refused.value.errors] == [f"config.{field}"]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "CROSSDOCK_BREAKER_THRESHOLD",
            "5",
            "CROSSDOCK_BREAKER_MIN_CALLS and CROSSDOCK_BREAKER_FAILURE_PERCENT",
        ),
        (
            "CROSSDOCK_BREAKER_FAILURE_PERCENT",
            "150",
            "CROSSDOCK_BREAKER_FAILURE_PERCENT=150 is above the maximum",
        ),
        ("CROSSDOCK_BREAKER_PROBES", "0", "CROSSDOCK_BREAKER_PROBES=0 is below the minimum"),
    ],
)
def test_start_up_refuses_a_bad_or_retired_breaker_setting_naming_it(variable, value, message):
    result = _start(**{variable: value})

    assert result.returncode != 0
    assert message in result.stderr


# --- The window on real Redis --------------------------------------------------------------------------


def test_window_adds_up_every_batch_of_answers():
    conn_id = uuid.uuid4()
    breaker.breaker_record(conn_id, succeeded=3, failed=1, policy=POLICY)
    breaker.breaker_record(conn_id, succeeded=0, failed=2, policy=POLICY)
    breaker.breaker_record(conn_id, succeeded=0, failed=0, policy=POLICY)  # an empty batch: nothing

    assert breaker.breaker_window(conn_id, policy=POLICY) == breaker.Window(calls=6, failed=3)
    assert breaker.breaker_state(conn_id) == "closed"


def test_a_flaky_receiver_failing_half_its_sends_keeps_the_circuit_closed():
    conn_id = uuid.uuid4()
    # A batch whose failures all come back together, then single answers alternating: never 75 %.
    assert breaker.breaker_record(conn_id, succeeded=25, failed=25, policy=POLICY) is None
    for n in range(100):
        assert breaker.breaker_record(conn_id, succeeded=n % 2, failed=1 - n % 2, policy=POLICY) is None

    assert breaker.breaker_window(conn_id, policy=POLICY) == breaker.Window(calls=150, failed=75)
    assert breaker.breaker_state(conn_id) == "closed"
    assert breaker.breaker_admit(conn_id, wanted=50, policy=POLICY).allowed == 50


def test_failures_below_min_calls_do_not_open_and_the_min_calls_th_does():
    conn_id = uuid.uuid4()
    for _ in range(POLICY.min_calls - 1):
        assert breaker.breaker_record(conn_id, succeeded=0, failed=1, policy=POLICY) is None
    assert breaker.breaker_state(conn_id) == "closed"

    assert breaker.breaker_record(conn_id, succeeded=0, failed=1, policy=POLICY) == "opened"
    assert breaker.breaker_state(conn_id) == "open"


def test_a_dead_receiver_opens_the_circuit_and_it_admits_nothing_for_the_cool_off():
    conn_id = uuid.uuid4()
    results = [breaker.breaker_record(conn_id, succeeded=0, failed=5, policy=POLICY) for _ in range(3)]

    assert results == [None, "opened", None]  # 10 sends, all failed; later answers change nothing
    admission = breaker.breaker_admit(conn_id, wanted=7, policy=POLICY)
    assert admission.allowed == 0
    assert POLICY.open_s - 1 < admission.wait_s <= POLICY.open_s
    assert admission.why == "circuit open"


def test_answers_arriving_while_open_are_ignored():
    conn_id = uuid.uuid4()
    trip(conn_id, POLICY)

    assert breaker.breaker_record(conn_id, succeeded=50, failed=0, policy=POLICY) is None
    assert breaker.breaker_state(conn_id) == "open"


def test_failures_older_than_the_window_are_forgotten():
    p = policy(window_s=1)  # buckets of 0.1 s
    conn_id = uuid.uuid4()
    breaker.breaker_record(conn_id, succeeded=0, failed=p.min_calls - 1, policy=p)
    time.sleep(1.15)

    assert breaker.breaker_window(conn_id, policy=p) == breaker.Window(calls=0, failed=0)
    assert breaker.breaker_record(conn_id, succeeded=0, failed=1, policy=p) is None
    assert breaker.breaker_state(conn_id) == "closed"


def test_breakers_are_per_connection():
    conn_id = uuid.uuid4()
    trip(conn_id, POLICY)

    other = uuid.uuid4()
    assert breaker.breaker_state(other) == "closed"
    assert breaker.breaker_admit(other, wanted=3, policy=POLICY).allowed == 3


# --- Half-open with several probes ---------------------------------------------------------------------


def test_half_open_lets_exactly_the_probes_through_however_many_callers_ask():
    p = policy(open_s=1)
    conn_id = uuid.uuid4()
    half_open(conn_id, p)

    first = breaker.breaker_admit(conn_id, wanted=2, policy=p)
    second = breaker.breaker_admit(conn_id, wanted=5, policy=p)
    third = breaker.breaker_admit(conn_id, wanted=1, policy=p)

    assert (first.allowed, second.allowed, third.allowed) == (2, 1, 0)
    assert second.wait_s == third.wait_s == breaker.HALF_OPEN_DEFER_S
    assert third.why == "circuit half-open, waiting for its probes"


def test_probes_that_succeed_close_the_circuit_with_an_empty_window():
    p = policy(open_s=1)
    conn_id = uuid.uuid4()
    half_open(conn_id, p)
    assert breaker.breaker_admit(conn_id, wanted=3, policy=p).allowed == 3

    assert breaker.breaker_record(conn_id, succeeded=0, failed=1, policy=p) is None  # flaky, not dead
    assert breaker.breaker_record(conn_id, succeeded=1, failed=0, policy=p) == "closed"

    assert breaker.breaker_state(conn_id) == "closed"
    assert breaker.breaker_window(conn_id, policy=p) == breaker.Window(calls=0, failed=0)
    assert breaker.breaker_admit(conn_id, wanted=50, policy=p).allowed == 50
    # The failures that opened it are not held against the receiver: it needs min_calls anew.
    assert breaker.breaker_record(conn_id, succeeded=0, failed=p.min_calls - 1, policy=p) is None


def test_probes_that_all_fail_reopen_the_circuit_for_a_full_cool_off():
    p = policy(open_s=1)
    conn_id = uuid.uuid4()
    half_open(conn_id, p)
    assert breaker.breaker_admit(conn_id, wanted=3, policy=p).allowed == 3

    verdicts = [breaker.breaker_record(conn_id, succeeded=0, failed=1, policy=p) for _ in range(3)]

    assert verdicts == [None, None, "opened"]
    assert breaker.breaker_state(conn_id) == "open"
    admission = breaker.breaker_admit(conn_id, wanted=1, policy=p)
    assert admission.allowed == 0 and 0.5 < admission.wait_s <= 1.0
    # The next half-open period has its own probes and its own answers.
    time.sleep(1.1)
    assert breaker.breaker_admit(conn_id, wanted=5, policy=p).allowed == 3
    assert breaker.breaker_record(conn_id, succeeded=0, failed=1, policy=p) is None


# --- Through the deliverer (real HTTP peer) -----------------------------------------------------------


@pytest.mark.django_db
def test_open_circuit_defers_every_delivery_without_spending_attempts(peer):  # noqa: F811
    subscribe(webhook("peer", peer.url, backoff_base_s=0.01, breaker_min_calls=3, breaker_open_s=60))
    deliveries = [record(ShipmentFactory()).deliveries.get() for _ in range(5)]
    for _ in range(5):
        peer.reply(503)

    _send_due()  # one batch of 5 sends, all failed: 5 >= 3 calls at 100 %
    Delivery.objects.update(next_attempt_at=timezone.now())
    _send_due()

    assert len(peer.requests) == 5
    rows = Delivery.objects.filter(pk__in=[d.pk for d in deliveries])
    assert {(d.status, d.attempts, d.last_error) for d in rows} == {("pending", 1, "deferred: circuit open")}
    assert all(d.next_attempt_at > timezone.now() + timedelta(seconds=50) for d in rows)


@pytest.mark.django_db
def test_half_open_sends_the_probes_only_and_their_success_closes_the_circuit(peer):  # noqa: F811
    connection = webhook("peer", peer.url, backoff_base_s=0.01, breaker_min_calls=2, breaker_open_s=1)
    subscribe(connection)
    deliveries = [record(ShipmentFactory()).deliveries.get() for _ in range(6)]
    conn_policy = breaker.breaker_policy(WebhookConfig(url=peer.url, breaker_min_calls=2, breaker_open_s=1))
    trip(connection.pk, conn_policy)
    time.sleep(1.1)

    _send_due()  # half-open: 3 probes go, all succeed; the other 3 wait for them

    assert len(peer.requests) == 3
    assert breaker.breaker_state(connection.pk) == "closed"
    rows = Delivery.objects.filter(pk__in=[d.pk for d in deliveries])
    assert sorted((d.status, d.attempts) for d in rows) == [("delivered", 1)] * 3 + [("pending", 0)] * 3
    assert {d.last_error for d in rows if d.status == "pending"} == {
        "deferred: circuit half-open, waiting for its probes"
    }

    Delivery.objects.filter(status="pending").update(next_attempt_at=timezone.now())
    _send_due()
    assert set(Delivery.objects.values_list("status", flat=True)) == {"delivered"}
    assert len(peer.requests) == 6


@pytest.mark.django_db
def test_client_errors_say_nothing_about_the_receivers_health(peer):  # noqa: F811
    connection = webhook("peer", peer.url, breaker_min_calls=3)
    subscribe(connection)
    for _ in range(5):
        record(ShipmentFactory())
        peer.reply(422)

    _send_due()

    assert set(Delivery.objects.values_list("status", flat=True)) == {"dead"}
    assert breaker.breaker_state(connection.pk) == "closed"
    assert breaker.breaker_window(connection.pk, policy=breaker.breaker_policy(None)) == breaker.Window(0, 0)
