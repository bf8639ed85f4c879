"""URL configuration: accounts and API tokens, the REST API, the dashboard and portfolio pages, reports,
operations, admin."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from api import pages as api_pages
from rebalancer_site import accounts, health
from two_factor import views as two_factor

urlpatterns = [
    path("admin/", admin.site.urls),
    # Accounts: the login (password, then a code when two-factor authentication is on), password
    # change and reset by e-mail, the Security page.
    path("accounts/login/", two_factor.LoginView.as_view(), name="login"),
    path("accounts/login/code/", two_factor.login_code, name="login_code"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("accounts/password/reset/", auth_views.PasswordResetView.as_view(), name="password_reset"),
    path("accounts/password/reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "accounts/password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/password/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("accounts/security/", two_factor.security, name="security"),
    path("accounts/security/two-factor/", two_factor.two_factor_setup, name="two_factor_setup"),
    path("accounts/security/two-factor/off/", two_factor.two_factor_turn_off, name="two_factor_disable"),
    path("accounts/security/recovery-codes/", two_factor.recovery_codes_new, name="recovery_codes_new"),
    path("accounts/security/verify/", two_factor.two_factor_verify, name="two_factor_verify"),
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
