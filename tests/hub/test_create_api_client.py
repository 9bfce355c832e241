"""`manage.py create_api_client NAME [--admin | --partner CODE]`: the key is the last line printed."""

from __future__ import annotations

import hashlib
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from hub.connections.models import ApiClient
from tests.factories.canonical import CarrierFactory, CustomerFactory

pytestmark = pytest.mark.django_db


def run(*args: str) -> list[str]:
    out = StringIO()
    call_command("create_api_client", *args, stdout=out)
    return out.getvalue().splitlines()


def test_admin_client_key_is_the_last_line_and_authenticates():
    lines = run("ops-console", "--admin")
    key = lines[-1]
    client = ApiClient.objects.get(name="ops-console")
    assert client.is_admin
    assert (client.carrier, client.customer) == (None, None)
    assert key.startswith(client.key_prefix)

    http = APIClient()
    http.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert http.get("/api/v1/carriers/").status_code == 200
    http.credentials(HTTP_AUTHORIZATION=f"Token {key[:-1]}")
    assert http.get("/api/v1/carriers/").status_code == 401


def test_partner_scac_binds_the_carrier():
    carrier = CarrierFactory(scac="ACME")
    run("acme-tms", "--partner", "ACME")
    client = ApiClient.objects.get(name="acme-tms")
    assert client.role == ApiClient.Role.PARTNER
    assert client.carrier == carrier
    assert client.customer is None


def test_partner_customer_code_binds_the_customer():
    customer = CustomerFactory(code="GLOBEX")
    lines = run("globex-erp", "--partner", "GLOBEX")
    client = ApiClient.objects.get(name="globex-erp")
    assert client.customer == customer
    assert client.carrier is None
    assert "GLOBEX" in lines[0]


def test_unknown_partner_code_is_a_command_error_naming_the_code():
    with pytest.raises(CommandError, match=r"no carrier with SCAC 'NOPE' and no customer with code 'NOPE'"):
        run("ghost", "--partner", "NOPE")
    assert not ApiClient.objects.filter(name="ghost").exists()


def test_neither_admin_nor_partner_is_an_error():
    with pytest.raises(CommandError, match=r"--admin.*--partner|required"):
        run("nobody")
    assert not ApiClient.objects.exists()


def test_both_admin_and_partner_is_an_error():
    CarrierFactory(scac="ACME")
    with pytest.raises(CommandError, match="not allowed with"):
        run("both", "--admin", "--partner", "ACME")
    assert not ApiClient.objects.exists()


def test_duplicate_name_is_a_command_error():
    run("twice", "--admin")
    with pytest.raises(CommandError, match="an API client named 'twice' already exists"):
        run("twice", "--admin")
    assert ApiClient.objects.filter(name="twice").count() == 1


def test_only_a_digest_of_the_key_is_stored():
    key = run("digest-check", "--admin")[-1]
    client = ApiClient.objects.get(name="digest-check")
    assert client.key_digest != key
    assert key not in client.key_digest
    assert client.key_digest == hashlib.sha256(key.encode()).hexdigest()
    assert len(client.key_prefix) < len(key)


def test_partner_code_that_is_both_a_scac_and_a_customer_code_binds_the_carrier():
    carrier = CarrierFactory(scac="DUAL")
    CustomerFactory(code="DUAL")
    run("dual", "--partner", "DUAL")
    client = ApiClient.objects.get(name="dual")
    assert (client.carrier, client.customer) == (carrier, None)
