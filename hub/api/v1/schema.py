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
