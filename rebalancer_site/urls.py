"""URL configuration."""

from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

urlpatterns = [
    path("admin/", admin.site.urls),
    # The dashboard arrives with the web issue; until then the admin is the UI.
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
]
