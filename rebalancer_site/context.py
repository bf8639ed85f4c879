"""Template context every page gets."""

from __future__ import annotations

from django.conf import settings


def site(request) -> dict:
    return {"allow_signup": settings.ALLOW_SIGNUP, "debug": settings.DEBUG}
