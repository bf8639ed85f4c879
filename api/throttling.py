"""Request rates (settings.API_THROTTLE_RATES), counted in the default cache; over the rate is 429 + Retry-After."""

from __future__ import annotations

from rest_framework import throttling
from rest_framework.settings import api_settings


class _CurrentRates:
    """Reads the rate when a request comes (DRF binds the rates once, at import)."""

    scope: str

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class UserRateThrottle(_CurrentRates, throttling.UserRateThrottle):
    """Per authenticated user (per client IP for anonymous requests)."""

    scope = "user"


class AnonRateThrottle(_CurrentRates, throttling.AnonRateThrottle):
    """Per client IP, anonymous requests only."""

    scope = "anon"


class IpRateThrottle(_CurrentRates, throttling.SimpleRateThrottle):
    """Per client IP, every request: many users (or stolen tokens) from one address are still bounded."""

    scope = "ip"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
