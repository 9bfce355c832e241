"""A staff login uses the API with its Django model permissions, not as an admin.

Reads need ``view_<model>``, creates ``add_<model>``, updates ``change_<model>`` on the model behind
the viewset; the operator resources (connections, dead letters, workflows...) need a superuser. API
keys keep their role (admin or partner), covered by the API matrix and the partner scoping tests.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from rest_framework.test import APIClient

from canonical.models import Customer
from tests.factories.canonical import CustomerFactory

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"
OPERATOR_RESOURCES = ["connections", "subscriptions", "messages", "dead-letters", "replay-jobs", "workflows"]
CANONICAL_RESOURCES = ["customers", "locations", "carriers", "products", "orders", "shipments", "invoices"]


def _session(*, superuser: bool = False, perms: tuple[str, ...] = ()) -> APIClient:
    user = User.objects.create_user(
        username="superuser" if superuser else "clerk",
        password="a-long-unguessable-pw-9731",
        is_staff=True,
        is_superuser=superuser,
    )
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    http = APIClient()
    http.force_login(user)
    return http


@pytest.mark.parametrize("resource", CANONICAL_RESOURCES + OPERATOR_RESOURCES)
def test_staff_without_permissions_cannot_list(resource):
    response = _session().get(f"/api/v1/{resource}/")
    assert response.status_code == 403, response.content
    assert response["Content-Type"] == PROBLEM


def test_staff_without_permissions_cannot_read_write_or_update_a_customer():
    customer = CustomerFactory()
    http = _session()
    assert http.get(f"/api/v1/customers/{customer.pk}/").status_code in (403, 404)
    created = http.post("/api/v1/customers/", {"code": "NEW", "name": "New"}, format="json")
    assert created.status_code == 403, created.content
    patched = http.patch(f"/api/v1/customers/{customer.pk}/", {"name": "Renamed"}, format="json")
    assert patched.status_code in (403, 404), patched.content
    customer.refresh_from_db()
    assert customer.name != "Renamed"
    assert not Customer.objects.filter(code="NEW").exists()


def test_staff_with_view_permission_reads_but_cannot_write():
    customer = CustomerFactory()
    http = _session(perms=("view_customer",))
    listed = http.get("/api/v1/customers/")
    assert listed.status_code == 200, listed.content
    assert [row["id"] for row in listed.json()["results"]] == [str(customer.pk)]
    assert http.get(f"/api/v1/customers/{customer.pk}/").status_code == 200
    assert http.post("/api/v1/customers/", {"code": "NEW", "name": "New"}, format="json").status_code == 403
    patched = http.patch(f"/api/v1/customers/{customer.pk}/", {"name": "Renamed"}, format="json")
    assert patched.status_code == 403, patched.content
    customer.refresh_from_db()
    assert customer.name != "Renamed"
    # A permission on one model opens that model only.
    assert http.get("/api/v1/carriers/").status_code == 403
    assert http.get("/api/v1/connections/").status_code == 403


def test_staff_with_add_and_change_permissions_writes_that_model():
    customer = CustomerFactory()
    http = _session(perms=("view_customer", "add_customer", "change_customer"))
    created = http.post("/api/v1/customers/", {"code": "NEW", "name": "New"}, format="json")
    assert created.status_code == 201, created.content
    patched = http.patch(f"/api/v1/customers/{customer.pk}/", {"name": "Renamed"}, format="json")
    assert patched.status_code == 200, patched.content
    customer.refresh_from_db()
    assert customer.name == "Renamed"


def test_staff_with_change_permission_only_cannot_create():
    http = _session(perms=("view_customer", "change_customer"))
    assert http.post("/api/v1/customers/", {"code": "NEW", "name": "New"}, format="json").status_code == 403


@pytest.mark.parametrize("resource", CANONICAL_RESOURCES + OPERATOR_RESOURCES)
def test_superuser_session_reads_everything(resource):
    response = _session(superuser=True).get(f"/api/v1/{resource}/")
    assert response.status_code == 200, response.content


def test_superuser_session_writes():
    http = _session(superuser=True)
    created = http.post("/api/v1/customers/", {"code": "NEW", "name": "New"}, format="json")
    assert created.status_code == 201, created.content
