"""``/api/v1/reconciliation/``: the checks, runs on demand (202, executed by a worker), and the
discrepancies with their operator actions (repair, resolve, ignore; each with a reason). Admin keys
only: partners see nothing of it."""

from __future__ import annotations

import django_filters as filters
from django.db.models import Q
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from hub.api.v1.integration_views import IsAdminClient
from hub.api.v1.scoping import principal_for
from hub.api.v1.serializers import reconciliation as s
from reconciliation import selectors, services
from reconciliation.models import Discrepancy, ReconciliationRun


def _actor(request) -> str:
    principal = principal_for(request)
    return f"api:{principal.name}" if principal else "api"


class CheckViewSet(viewsets.ViewSet):
    permission_classes = [IsAdminClient]
    serializer_class = s.CheckSerializer

    @extend_schema(responses=s.CheckSerializer(many=True))
    def list(self, request):
        """Every registered check with its schedule, options, last success and open discrepancies."""
        return Response(s.CheckSerializer(selectors.checks_overview(), many=True).data)


class RunFilterSet(filters.FilterSet):
    check = filters.CharFilter(field_name="check_name")

    class Meta:
        model = ReconciliationRun
        fields = ["check", "status", "dry_run"]


class RunViewSet(mixins.RetrieveModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    permission_classes = [IsAdminClient]
    queryset = ReconciliationRun.objects.all()
    serializer_class = s.ReconciliationRunSerializer
    filterset_class = RunFilterSet

    @extend_schema(request=s.RunStartSerializer, responses={202: s.ReconciliationRunSerializer})
    def create(self, request):
        """Queue a run of a check; a worker executes it. 202 with the run to poll."""
        body = s.RunStartSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        run = services.run_start(
            check=body.validated_data["check"],
            dry_run=body.validated_data["dry_run"],
            scope=body.validated_data.get("scope") or {},
            actor=_actor(request),
        )
        return Response(s.ReconciliationRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class DiscrepancyFilterSet(filters.FilterSet):
    check = filters.CharFilter(field_name="check_name")
    reference = filters.CharFilter(method="filter_reference", help_text="A business key or an external id.")

    class Meta:
        model = Discrepancy
        fields = ["check", "status", "severity", "reference"]

    def filter_reference(self, queryset, name, value):
        return queryset.filter(Q(business_key=value) | Q(external_ids__contains=[value]))


class DiscrepancyViewSet(mixins.RetrieveModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    permission_classes = [IsAdminClient]
    queryset = Discrepancy.objects.all()
    serializer_class = s.DiscrepancySerializer
    filterset_class = DiscrepancyFilterSet

    def _operate(self, request, service, **extra) -> Response:
        discrepancy = self.get_object()
        body = s.DiscrepancyActionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        result = service(
            discrepancy_id=discrepancy.pk,
            reason=body.validated_data["reason"],
            actor=_actor(request),
            **extra,
        )
        return Response(s.DiscrepancySerializer(result).data)

    @extend_schema(request=s.DiscrepancyActionSerializer, responses=s.DiscrepancySerializer)
    @action(detail=True, methods=["post"])
    def repair(self, request, pk=None):
        """Repair through the check (writes go through the ledger); ``dry_run`` shows the plan only.
        409 when not open or the check cannot repair it."""
        dry_run = s.DiscrepancyActionSerializer(data=request.data)
        dry_run.is_valid(raise_exception=True)
        return self._operate(request, services.discrepancy_repair, dry_run=dry_run.validated_data["dry_run"])

    @extend_schema(request=s.DiscrepancyActionSerializer, responses=s.DiscrepancySerializer)
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        """Close it: fixed by hand or not a problem (409 unless open)."""
        return self._operate(request, services.discrepancy_resolve)

    @extend_schema(request=s.DiscrepancyActionSerializer, responses=s.DiscrepancySerializer)
    @action(detail=True, methods=["post"])
    def ignore(self, request, pk=None):
        """Leave it as it is on purpose; later runs do not open it again (409 unless open)."""
        return self._operate(request, services.discrepancy_ignore)
