"""Django's admin on the site of `two_factor.admin_site`."""

from __future__ import annotations

from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig


class AdminConfig(DjangoAdminConfig):
    default_site = "two_factor.admin_site.AdminSite"
