"""Odd but well-formed input found by the schemathesis run (test_schemathesis.py): each answers a
specific problem or a correct result, never a 500, and the OpenAPI document says what it answers."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from canonical.models import Shipment
from tests.factories.canonical import CarrierFactory, ShipmentFactory

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


def test_updated_after_with_an_offset_postgres_cannot_store_filters_by_the_instant(admin_caller):
    # -22:10 is a valid ISO 8601 offset (Python accepts up to 24 h) but beyond PostgreSQL's +-15:59.
    shipment = ShipmentFactory()
    Shipment.objects.filter(pk=shipment.pk).update(updated_at=dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC))

    before = admin_caller.http.get("/api/v1/shipments/", {"updated_after": "2026-03-01T12:00:00-22:10"})
    after = admin_caller.http.get("/api/v1/shipments/", {"updated_after": "2026-03-02T00:00:00-22:10"})

    assert before.status_code == 200, before.content
    assert [row["reference"] for row in before.json()["results"]] == [shipment.reference]
    assert after.status_code == 200, after.content
    assert after.json()["results"] == []  # 2026-03-02T22:10Z is after the update


def test_updated_after_beyond_the_last_representable_instant_is_400_problem(admin_caller):
    response = admin_caller.http.get("/api/v1/shipments/", {"updated_after": "9999-12-31T23:00:00-05:00"})

    assert response.status_code == 400, response.content
    assert response["Content-Type"] == PROBLEM
    assert [e["field"] for e in response.json()["errors"]] == ["updated_after"]


def test_business_key_with_a_nul_character_is_400_problem(admin_caller):
    CarrierFactory(scac="NULC")

    response = admin_caller.http.post(
        "/api/v1/shipments/", {"reference": "SHP-NUL", "carrier": "NU\x00LC"}, format="json"
    )

    assert response.status_code == 400, response.content
    assert response["Content-Type"] == PROBLEM
    assert [e["field"] for e in response.json()["errors"]] == ["carrier"]
    assert "null character" in response.json()["detail"]


def _schema(caller) -> dict:
    response = caller.http.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def test_schema_declares_problem_responses_on_every_operation(admin_caller):
    schema = _schema(admin_caller)
    operations = [(path, method, op) for path, ops in schema["paths"].items() for method, op in ops.items()]

    assert operations
    for path, method, op in operations:
        for status in ("400", "401", "403", "404", "429"):
            content = op["responses"].get(status, {}).get("content", {})
            assert content.get(PROBLEM, {}).get("schema") == {"$ref": "#/components/schemas/Problem"}, (
                method,
                path,
                status,
            )
    assert schema["components"]["schemas"]["Problem"]["required"] == ["type", "title", "status", "detail"]


def test_schema_declares_the_dry_run_200_of_bulk_replay_and_the_202_of_a_queued_replay(admin_caller):
    paths = _schema(admin_caller)["paths"]

    bulk = paths["/api/v1/dead-letters/replay/"]["post"]["responses"]
    one = paths["/api/v1/dead-letters/{id}/replay/"]["post"]["responses"]

    assert {"200", "202"} <= bulk.keys()
    assert (
        bulk["200"]["content"]["application/json"]["schema"]
        != bulk["202"]["content"]["application/json"]["schema"]
    )
    assert {"200", "202"} <= one.keys()


def test_updated_after_now_still_filters(admin_caller):
    ShipmentFactory()
    response = admin_caller.http.get(
        "/api/v1/shipments/", {"updated_after": (timezone.now() + dt.timedelta(hours=1)).isoformat()}
    )
    assert response.status_code == 200
    assert response.json()["results"] == []


@pytest.mark.parametrize("page_size", ["abc", "-5", "0", "1.5"])
def test_page_size_that_is_not_a_positive_whole_number_is_400_problem(admin_caller, page_size):
    response = admin_caller.http.get("/api/v1/carriers/", {"page_size": page_size})

    assert response.status_code == 400, response.content
    assert response["Content-Type"] == PROBLEM
    assert [e["field"] for e in response.json()["errors"]] == ["page_size"]


def test_page_size_above_the_maximum_is_capped(admin_caller):
    CarrierFactory.create_batch(2)

    response = admin_caller.http.get("/api/v1/carriers/", {"page_size": "100000"})

    assert response.status_code == 200, response.content
    assert len(response.json()["results"]) == 2
