"""Property-based API tests: schemathesis generates requests from the OpenAPI document
(`/api/v1/schema/`) and sends them to the Django WSGI app, once with an admin key and once with a
partner key (a carrier-bound client).

Every answer must be no 5xx, a status code the document declares for the operation, the declared
content type and a body matching the declared schema (problem+json for errors, see
hub/api/v1/schema.py). A failure prints a curl line that reproduces it; fix it in hub/api/v1 and add
a plain regression test (tests/hub/api/test_api_robustness.py).

CI keeps a JUnit report (`.ci/run`: var/reports/schemathesis/junit.xml). Only the fuzzing phase runs,
random valid and invalid inputs: schemathesis' coverage phase sends ~350 boundary requests per write
operation and key (measured), which would take this file far past its 4-minute budget.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig

from hub.wsgi import application
from tests.factories.canonical import (
    CarrierFactory,
    InvoiceFactory,
    OrderFactory,
    ShipmentExceptionFactory,
    ShipmentFactory,
    StopFactory,
)

# Generated requests per operation and key (2 keys x 69 operations). The whole file took 33 s at a
# load average of 1.5 and 123 s at about 9 on the shared 2-core machine (.ci/run prints it).
MAX_EXAMPLES = 10
PARTNER_SCAC = "STPC"

CONFIG = SchemathesisConfig.from_dict(
    {
        "phases": {
            "examples": {"enabled": False},  # the document carries no examples
            "coverage": {"enabled": False},  # see the module docstring
            "stateful": {"enabled": False},
        },
        # Valid and schema-violating inputs; the key is ours, not generated.
        "generation": {"mode": "all", "with-security-parameters": False},
    }
)

schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", application, config=CONFIG)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(autouse=True)
def _keep_test_connection():
    """Requests go through the WSGI handler, whose request_started/finished signals close the
    database connection; the test's transaction lives on it. Django's test client disconnects
    the same handler for the same reason."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def records():
    """A few records of each kind, so reads serialize real rows (some the partner's, some not)."""
    partner_carrier = CarrierFactory(scac=PARTNER_SCAC)
    own = ShipmentFactory(carrier=partner_carrier)
    StopFactory(shipment=own)
    ShipmentExceptionFactory(shipment=own)
    ShipmentFactory()  # another carrier's: absent for the partner
    order = OrderFactory()
    InvoiceFactory(customer=order.customer, order=order)
    return partner_carrier


@pytest.fixture(params=["admin", "partner"])
def api_key(request, make_caller, records) -> str:
    if request.param == "admin":
        return make_caller("schemathesis-admin", admin=True).key
    return make_caller("schemathesis-partner", partner_code=records.scac).key


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,  # a loaded CI machine: response time is not under test here
    suppress_health_check=list(HealthCheck),
    database=None,  # no .hypothesis example store in the clone
)
@pytest.mark.django_db
def test_api_conforms_to_its_openapi_document(case, api_key):
    case.call_and_validate(headers={"Authorization": f"Token {api_key}"}, checks=CHECKS)
