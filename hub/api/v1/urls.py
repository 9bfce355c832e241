from django.urls import path
from rest_framework.routers import DefaultRouter

from hub.api.v1 import integration_views, reconciliation_views, views, workflow_views

router = DefaultRouter()
router.register("customers", views.CustomerViewSet)
router.register("locations", views.LocationViewSet)
router.register("carriers", views.CarrierViewSet)
router.register("products", views.ProductViewSet)
router.register("orders", views.OrderViewSet)
router.register("shipments", views.ShipmentViewSet)
router.register("invoices", views.InvoiceViewSet)
router.register("exceptions", views.ShipmentExceptionViewSet)
router.register("connectors", integration_views.ConnectorViewSet, basename="connector")
router.register("connections", integration_views.ConnectionViewSet)
router.register("subscriptions", integration_views.SubscriptionViewSet)
router.register("messages", integration_views.MessageViewSet)
router.register("dead-letters", integration_views.DeadLetterViewSet)
router.register("replay-jobs", integration_views.ReplayJobViewSet)
router.register("workflows", workflow_views.WorkflowRunViewSet)
router.register("reconciliation/checks", reconciliation_views.CheckViewSet, basename="reconciliation-check")
router.register("reconciliation/runs", reconciliation_views.RunViewSet)
router.register("reconciliation/discrepancies", reconciliation_views.DiscrepancyViewSet)

urlpatterns = [
    path("inbound/<slug:slug>/", integration_views.InboundView.as_view(), name="api-inbound"),
    *router.urls,
]
