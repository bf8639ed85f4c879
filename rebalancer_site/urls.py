"""URL configuration."""

from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from rebalancer_site import health

urlpatterns = [
    path("admin/", admin.site.urls),
    # Operations: liveness, readiness, Prometheus metrics (rebalancer_site.health).
    path("health", health.health, name="health"),
    path("ready", health.ready, name="ready"),
    path("metrics", health.metrics, name="metrics"),
    # The dashboard arrives with the web issue; until then the admin is the UI.
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
]
