from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from hub.api.v1 import problems
from hub.ops import dashboard, metrics
from hub.ops import views as ops_views

admin.site.site_header = "Crossdock operations"
admin.site.site_title = "Crossdock"
admin.site.index_title = "Operations console"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health/", ops_views.health, name="health"),
    path("ops/", dashboard.ops_dashboard, name="ops-dashboard"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("api/v1/schema/", SpectacularAPIView.as_view(api_version="v1"), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("hub.api.v1.urls")),
]

handler404 = problems.not_found_view
handler500 = problems.server_error_view
