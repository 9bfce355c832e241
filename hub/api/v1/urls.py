from rest_framework.routers import DefaultRouter

from hub.api.v1 import views

router = DefaultRouter()
router.register("customers", views.CustomerViewSet)
router.register("locations", views.LocationViewSet)
router.register("carriers", views.CarrierViewSet)
router.register("products", views.ProductViewSet)
router.register("orders", views.OrderViewSet)
router.register("shipments", views.ShipmentViewSet)
router.register("invoices", views.InvoiceViewSet)
router.register("exceptions", views.ShipmentExceptionViewSet)

urlpatterns = router.urls
