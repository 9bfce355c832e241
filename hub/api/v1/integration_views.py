"""API v1 for the integration resources: connectors, connections, subscriptions, the inbound
endpoint, message traces, dead letters and replay jobs. Operator resources are for admin clients only."""

from __future__ import annotations

import django_filters as filters
from django.conf import settings
from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from connectors import registry
from connectors.base import InboundRequest
from connectors.errors import AuthError, NotSupported
from hub.api.v1.authentication import ApiKeyAuthentication
from hub.api.v1.scoping import principal_for
from hub.api.v1.serializers import integration as s
from hub.api.v1.throttling import InboundRateThrottle
from hub.connections.models import Connection, Subscription
from hub.connections.services import (
    connection_active_get,
    connection_config,
    connection_secret,
    signature_nonce_claim,
    signature_nonce_release,
)
from hub.deadletters import replay
from hub.deadletters.models import DeadLetter, ReplayJob
from hub.inbox.models import InboundMessage
from hub.inbox.services import inbound_message_receive
from hub.outbox.models import Delivery, OutboxEvent


class IsAdminClient(BasePermission):
    message = "only admin clients may use this resource"

    def has_permission(self, request, view) -> bool:
        principal = principal_for(request)
        if principal is None:
            return False
        if not principal.is_admin:
            raise exceptions.PermissionDenied(self.message)
        return True


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = "body too large"
    default_code = "payload_too_large"


def _actor(request) -> str:
    principal = principal_for(request)
    return principal.name if principal else "anonymous"


class ConnectorViewSet(viewsets.ViewSet):
    permission_classes = [IsAdminClient]

    @extend_schema(responses={200: OpenApiResponse(description="Installed connectors with capabilities")})
    def list(self, request):
        return Response([spec.describe() for spec in registry.all_specs()])


class AdminCrudViewSet(
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    """Create, read, update for admin clients (deactivate rather than delete: history refers to them)."""

    permission_classes = [IsAdminClient]
    http_method_names = ["get", "post", "put", "patch", "head", "options"]


class ConnectionViewSet(AdminCrudViewSet):
    queryset = Connection.objects.select_related("carrier")
    serializer_class = s.ConnectionSerializer
    filterset_fields = ["slug", "system", "connector", "is_active"]
    lookup_field = "slug"


class SubscriptionViewSet(AdminCrudViewSet):
    queryset = Subscription.objects.select_related("connection")
    serializer_class = s.SubscriptionSerializer
    filterset_fields = ["is_active"]


class MessageFilterSet(filters.FilterSet):
    connection = filters.CharFilter(field_name="connection__slug")

    class Meta:
        model = InboundMessage
        fields = ["status", "correlation_id"]


class MessageViewSet(mixins.RetrieveModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    permission_classes = [IsAdminClient]
    queryset = InboundMessage.objects.select_related("connection").defer("body")
    filterset_class = MessageFilterSet

    def get_queryset(self):
        if self.action == "retrieve":
            deliveries = Delivery.objects.select_related("subscription__connection").prefetch_related(
                "attempt_log"
            )
            return InboundMessage.objects.select_related("connection").prefetch_related(
                Prefetch(
                    "outbox_events",
                    queryset=OutboxEvent.objects.prefetch_related(
                        Prefetch("deliveries", queryset=deliveries)
                    ),
                ),
                "dead_letters",
            )
        return super().get_queryset()

    def get_serializer_class(self):
        return s.MessageTraceSerializer if self.action == "retrieve" else s.InboundMessageSerializer


class DeadLetterFilterSet(filters.FilterSet):
    connection = filters.CharFilter(field_name="connection__slug")

    class Meta:
        model = DeadLetter
        fields = ["stage", "status", "waiting_for_shipment"]


class DeadLetterViewSet(mixins.RetrieveModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    permission_classes = [IsAdminClient]
    queryset = DeadLetter.objects.select_related("connection")
    serializer_class = s.DeadLetterSerializer
    filterset_class = DeadLetterFilterSet

    @extend_schema(
        request=s.ReplayRequestSerializer,
        responses={200: s.DeadLetterSerializer, 202: s.DeadLetterSerializer},
    )
    @action(detail=True, methods=["post"])
    def replay(self, request, pk=None):
        """Replay one letter with the current configuration; answers the letter after the replay."""
        letter = self.get_object()
        body = s.ReplayRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        outcome = replay.dead_letter_replay(
            letter_id=letter.pk, actor=_actor(request), reason=body.validated_data["reason"]
        )
        code = status.HTTP_202_ACCEPTED if outcome.succeeded is None else status.HTTP_200_OK
        return Response(self.get_serializer(outcome.letter).data, status=code)

    @extend_schema(request=s.ReplayRequestSerializer, responses=s.DeadLetterSerializer)
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        """Close a letter without replaying it."""
        letter = self.get_object()
        body = s.ReplayRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        letter = replay.dead_letter_resolve(
            letter_id=letter.pk, actor=_actor(request), reason=body.validated_data["reason"]
        )
        return Response(self.get_serializer(letter).data)

    @extend_schema(
        request=s.BulkReplaySerializer,
        responses={202: s.ReplayJobSerializer, 200: s.BulkReplayDryRunSerializer},
    )
    @action(detail=False, methods=["post"], url_path="replay")
    def bulk_replay(self, request):
        """Replay every letter matching a filter, as a job (202); ``dry_run`` says what would be replayed."""
        body = s.BulkReplaySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        dry_run, reason = data.pop("dry_run"), data.pop("reason")
        filters_ = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in data.items()}
        if dry_run:
            selected = replay.dead_letters_filter(filters_)
            sample = selected[: replay.DRY_RUN_SAMPLE]
            return Response(
                {
                    "dry_run": True,
                    "filters": filters_,
                    "count": selected.count(),
                    "sample": s.DeadLetterSerializer(sample, many=True).data,
                }
            )
        job = replay.replay_job_create(filters=filters_, actor=_actor(request), reason=reason)
        headers = {"Location": f"/api/v1/replay-jobs/{job.pk}/"}
        return Response(s.ReplayJobSerializer(job).data, status=status.HTTP_202_ACCEPTED, headers=headers)


class ReplayJobViewSet(mixins.RetrieveModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    permission_classes = [IsAdminClient]
    queryset = ReplayJob.objects.defer("letter_ids")
    serializer_class = s.ReplayJobSerializer


class InboundView(APIView):
    """`POST /api/v1/inbound/<slug>/`: store the native body, answer 202 before any processing.

    Authentication: an API key (an admin client, or the partner carrier the connection is bound to),
    or the connector's own signature check (e.g. X-Crossdock-Signature with the connection secret).
    """

    authentication_classes = [ApiKeyAuthentication]
    permission_classes: list = []
    throttle_classes = [InboundRateThrottle]
    parser_classes: list = []

    @extend_schema(
        request={"application/json": dict, "application/edi-x12": str, "text/plain": str},
        responses={
            202: OpenApiResponse(description='{"message_id", "status": "accepted"}'),
            200: OpenApiResponse(description='{"message_id", "status": "duplicate"}'),
        },
    )
    def post(self, request, slug: str):
        raw = request._request
        headers = {k.lower(): v for k, v in raw.headers.items()}
        connection = connection_active_get(slug=slug)
        if request.auth is None and (connection is None or not self._self_verifying(connection, headers)):
            raise exceptions.NotAuthenticated(
                "send an API key (Authorization: Token <key>) or a signed request"
            )
        if connection is None:
            raise exceptions.NotFound(f"no active connection {slug!r}")
        limit = settings.CROSSDOCK_INBOUND_MAX_BYTES
        declared = raw.META.get("CONTENT_LENGTH")
        if declared and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"body of {declared} bytes exceeds the limit of {limit} bytes")
        body = raw.read(limit + 1)
        if len(body) > limit:
            raise PayloadTooLarge(f"body exceeds the limit of {limit} bytes")
        content_type = raw.META.get("CONTENT_TYPE", "")
        nonce_key = self._authorize(
            request, connection, InboundRequest(body=body, content_type=content_type, headers=headers)
        )
        try:
            received = inbound_message_receive(
                connection=connection,
                body=body,
                content_type=content_type,
                headers=headers,
                idempotency_key=headers.get("idempotency-key"),
                correlation_id=raw.correlation_id,
            )
        except BaseException:
            if nonce_key is not None:  # not stored: the sender's retry is not a replay
                signature_nonce_release(key=nonce_key)
            raise
        if received.created:
            return Response(
                {"message_id": str(received.message.pk), "status": "accepted"},
                status=status.HTTP_202_ACCEPTED,
            )
        return Response(
            {"message_id": str(received.message.pk), "status": "duplicate"}, status=status.HTTP_200_OK
        )

    @staticmethod
    def _self_verifying(connection: Connection, headers: dict[str, str]) -> bool:
        """Whether a call without an API key may try the connector's own check: a Crossdock
        signature, or a connector that authenticates its system's webhooks itself (Karrio's shared
        secret, BottleCRM's HMAC)."""
        if "x-crossdock-signature" in headers:
            return True
        return registry.get(connection.connector).verifies_own_webhooks

    def _authorize(self, request, connection: Connection, inbound: InboundRequest) -> str | None:
        """Raises 401/403 unless the caller may post here. Returns the key of the signature nonce
        it claimed (a signed call), or None (an API key, or a scheme without a time window)."""
        principal = principal_for(request)
        if principal is not None:
            if principal.is_admin:
                return None
            if principal.carrier_id is not None and principal.carrier_id == connection.carrier_id:
                return None
            raise exceptions.PermissionDenied(
                f"this API client may not post to connection {connection.slug!r}"
            )
        spec = registry.get(connection.connector)
        secret = connection_secret(connection)
        if not secret:
            raise exceptions.AuthenticationFailed("this connection has no secret: send an API key")
        connector = spec.instance()
        try:
            connector.verify(inbound, secret, connection_config(connection))
            nonce_ttl = connector.replay_nonce(inbound)
        except NotSupported:
            raise exceptions.AuthenticationFailed(
                f"connector {spec.key!r} does not verify signatures: send an API key"
            ) from None
        except AuthError as exc:
            raise exceptions.AuthenticationFailed(exc.detail) from None
        if nonce_ttl is None:
            return None
        nonce, ttl_s = nonce_ttl
        key = signature_nonce_claim(connection=connection, nonce=nonce, ttl_s=ttl_s)
        if key is None:
            raise exceptions.AuthenticationFailed(
                "signature already used: a signed request is accepted once; sign each request afresh"
            )
        return key
