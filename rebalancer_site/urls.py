"""URL configuration: accounts and API tokens, the REST API, the dashboard and portfolio pages, reports,
operations, admin."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from api import pages as api_pages
from rebalancer_site import accounts, health

urlpatterns = [
    path("admin/", admin.site.urls),
    # Accounts.
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("accounts/signup/", accounts.signup, name="signup"),
    path("accounts/tokens/", api_pages.api_tokens, name="api_tokens"),
    path("accounts/tokens/<int:pk>/revoke/", api_pages.api_token_revoke_view, name="api_token_revoke"),
    # The REST API (/api/v1/), its OpenAPI schema and Swagger UI.
    path("api/", include("api.urls")),
    # Operations: liveness, readiness, Prometheus metrics (rebalancer_site.health).
    path("health", health.health, name="health"),
    path("ready", health.ready, name="ready"),
    path("metrics", health.metrics, name="metrics"),
    # Reports of stored runs, and the dashboard with the portfolio and broker account pages.
    path("", include("portfolios.report_urls")),
    path("", include("portfolios.urls")),
]
