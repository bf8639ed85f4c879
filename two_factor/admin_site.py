"""The admin site: staff who turned two-factor authentication on need a verified session, and every
login goes through the site's own two-step login (the admin's password-only form is never offered)."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from two_factor.services import session_is_verified, two_factor_enabled


class AdminSite(admin.AdminSite):
    def has_permission(self, request: HttpRequest) -> bool:
        if not super().has_permission(request):
            return False
        return session_is_verified(request.user) or not two_factor_enabled(request.user)

    def login(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        next_url = request.GET.get(REDIRECT_FIELD_NAME) or reverse("admin:index", current_app=self.name)
        if not request.user.is_authenticated:
            return redirect_to_login(next_url, reverse("login"))
        if request.user.is_active and request.user.is_staff:
            # Staff with a device whose session has not entered a code yet.
            return redirect_to_login(next_url, reverse("two_factor_verify"))
        raise PermissionDenied("the admin is for staff accounts")
