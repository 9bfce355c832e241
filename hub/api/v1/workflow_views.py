"""``/api/v1/workflows/``: start a flow (idempotent per business key), list and inspect runs with their
step timeline, and the operator actions (retry, resume, compensate, cancel), each with a reason."""

from __future__ import annotations

import django_filters as filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from hub.api.v1.integration_views import IsAdminClient
from hub.api.v1.scoping import principal_for
from hub.api.v1.serializers import workflows as s
from hub.workflows import services
from hub.workflows.models import WorkflowRun


class WorkflowRunFilterSet(filters.FilterSet):
    class Meta:
        model = WorkflowRun
        fields = ["flow", "status", "business_key"]


def _actor(request) -> str:
    principal = principal_for(request)
    return f"api:{principal.name}" if principal else "api"


class WorkflowRunViewSet(mixins.RetrieveModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    permission_classes = [IsAdminClient]
    queryset = WorkflowRun.objects.all()
    filterset_class = WorkflowRunFilterSet

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action != "list":
            queryset = queryset.prefetch_related("steps", "actions")
        return queryset

    def get_serializer_class(self):
        return s.WorkflowRunSerializer if self.action == "list" else s.WorkflowRunDetailSerializer

    @extend_schema(request=s.WorkflowStartSerializer, responses={201: s.WorkflowRunDetailSerializer})
    def create(self, request):
        """Start a flow for a business key: 201 with the new run, or 200 with the existing one."""
        body = s.WorkflowStartSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        run, created = services.workflow_start(**body.validated_data, actor=_actor(request))
        data = s.WorkflowRunDetailSerializer(self.get_queryset().get(pk=run.pk)).data
        return Response(data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    def _operate(self, request, service) -> Response:
        run = self.get_object()
        body = s.WorkflowActionRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        service(run_id=run.pk, reason=body.validated_data["reason"], actor=_actor(request))
        return Response(s.WorkflowRunDetailSerializer(self.get_queryset().get(pk=run.pk)).data)

    @extend_schema(request=s.WorkflowActionRequestSerializer, responses=s.WorkflowRunDetailSerializer)
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        """Run the failed step again (409 unless a step failed)."""
        return self._operate(request, services.workflow_retry_step)

    @extend_schema(request=s.WorkflowActionRequestSerializer, responses=s.WorkflowRunDetailSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        """Look at a waiting or retrying run now."""
        return self._operate(request, services.workflow_resume)

    @extend_schema(request=s.WorkflowActionRequestSerializer, responses=s.WorkflowRunDetailSerializer)
    @action(detail=True, methods=["post"])
    def compensate(self, request, pk=None):
        """Undo the run's completed steps, last first."""
        return self._operate(request, services.workflow_compensate)

    @extend_schema(request=s.WorkflowActionRequestSerializer, responses=s.WorkflowRunDetailSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Stop the run; steps not done are skipped."""
        return self._operate(request, services.workflow_cancel)
