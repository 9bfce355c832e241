"""Shared serializer pieces: business-key references, external refs, service-backed saves."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from rest_framework import serializers

from canonical import services
from canonical.models import ExternalRef


class BusinessKeyRelatedField(serializers.RelatedField):
    """A related record given by its business key (``scac``, ``code``, ``sku``, ``reference``) or its id.

    Reads render the business key, so bodies round-trip.
    """

    default_error_messages = {
        "does_not_exist": "no {model} with {key_name} {value!r} (nor with that id)",
        "invalid": "expected a {key_name} string or an id",
        "null_character": "null characters are not allowed",
    }

    def __init__(self, *, key: str, **kwargs: Any) -> None:
        self.key = key
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any):
        if not isinstance(data, str) or not data:
            self.fail("invalid", key_name=self.key)
        if "\x00" in data:  # PostgreSQL text cannot hold NUL: the lookup would fail with a 500
            self.fail("null_character")
        queryset = self.get_queryset()
        try:
            return queryset.get(**{self.key: data})
        except ObjectDoesNotExist:
            pass
        try:
            return queryset.get(pk=uuid.UUID(data))
        except (ValueError, ObjectDoesNotExist):
            self.fail(
                "does_not_exist", model=queryset.model._meta.verbose_name, key_name=self.key, value=data
            )

    def to_representation(self, value) -> str:
        return getattr(value, self.key)


class ExternalRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = ExternalRef
        fields = ["system", "external_id"]
        # Uniqueness is (system, entity, external_id) and checked by the service, which knows the entity.
        validators: list = []


class CanonicalSerializer(serializers.ModelSerializer):
    """A canonical record with its external refs; writes go through canonical.services.

    On create or update, ``external_refs`` adds links (existing ones are kept).
    """

    external_refs = ExternalRefSerializer(many=True, required=False)
    #: nested collections handed to the service rather than set as attributes
    nested: tuple[str, ...] = ()

    def _split(self, validated_data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], list]:
        refs = validated_data.pop("external_refs", [])
        children = {name: validated_data.pop(name) for name in self.nested if name in validated_data}
        return validated_data, children, refs

    def create(self, validated_data):
        data, children, refs = self._split(validated_data)
        return self.save_record(instance=None, data=data, children=children, external_refs=refs)

    def update(self, instance, validated_data):
        data, children, refs = self._split(validated_data)
        return self.save_record(instance=instance, data=data, children=children, external_refs=refs)

    def save_record(self, *, instance, data, children, external_refs):
        model = self.Meta.model
        if instance is None:
            return services.record_create(model=model, data=data, external_refs=external_refs)
        return services.record_update(instance=instance, data=data, external_refs=external_refs)


TIMESTAMPS = ["created_at", "updated_at"]
