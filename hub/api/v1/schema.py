"""drf-spectacular extensions so the OpenAPI document describes our auth and business-key fields."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import build_basic_type
from drf_spectacular.types import OpenApiTypes


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "hub.api.v1.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <key>`; keys come from `manage.py create_api_client`.",
        }


class StaffSessionScheme(OpenApiAuthenticationExtension):
    target_class = "hub.api.v1.authentication.StaffSessionAuthentication"
    name = "StaffSession"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": "sessionid",
            "description": "Ops console (staff) login.",
        }


class BusinessKeyFieldSchema(OpenApiSerializerFieldExtension):
    target_class = "hub.api.v1.serializers.base.BusinessKeyRelatedField"

    def map_serializer_field(self, auto_schema, direction):
        schema = build_basic_type(OpenApiTypes.STR)
        schema["description"] = f"The related record's `{self.target.key}` (its id is accepted too)."
        return schema


# Error statuses every API operation may answer, each as an RFC 9457 problem (hub/api/v1/problems.py):
# malformed or invalid input, no or a bad key, a partner on an admin resource, an unknown or another
# partner's record (or a page past the end), and the per-client rate limit.
PROBLEM_STATUSES = {
    "400": "Malformed or invalid request (`errors` lists each field).",
    "401": "No API key, or an unknown or revoked one.",
    "403": "The client may not use this operation.",
    "404": "No such record for this client, or no such page.",
    "429": "Rate limit exceeded (`retry_after` in seconds, and a `Retry-After` header).",
}
# The inbound endpoint also refuses bodies over CROSSDOCK_INBOUND_MAX_BYTES.
PROBLEM_STATUSES_BY_PATH = {"/api/v1/inbound/{slug}/": {"413": "Body larger than the inbound limit."}}

PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "properties": {
        "type": {"type": "string", "description": "URN naming the kind, `urn:crossdock:problem:<slug>`."},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "Validation failures; `field` is a dotted path into the request.",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                "required": ["field", "message"],
            },
        },
        "retry_after": {"type": "integer", "description": "Seconds to wait (429 only)."},
    },
    "required": ["type", "title", "status", "detail"],
}


def add_problem_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook: declare the problem+json error responses on every
    operation (statuses an operation already declares are left as they are)."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM_SCHEMA
    reference = {"$ref": "#/components/schemas/Problem"}
    for path, operations in result.get("paths", {}).items():
        statuses = {**PROBLEM_STATUSES, **PROBLEM_STATUSES_BY_PATH.get(path, {})}
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for code, description in statuses.items():
                responses.setdefault(
                    code,
                    {
                        "description": description,
                        "content": {"application/problem+json": {"schema": reference}},
                    },
                )
    return result
