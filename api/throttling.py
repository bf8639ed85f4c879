"""Request rates (settings.API_THROTTLE_RATES), counted in the default cache; over the rate is 429 + Retry-After.

The count is a sliding window made of two fixed windows, each one cache counter changed only with
the cache's atomic ``incr``/``decr`` (atomic in Redis across every web process, and under the
local-memory cache's lock in one process): parallel requests can never pass more than the rate.
A refused request gives its count back, so a client that keeps retrying while refused is let in
again once its earlier requests have aged out of the window.
"""

from __future__ import annotations

import contextlib
import math
import time
from abc import ABC, abstractmethod

from django.core.cache import cache
from rest_framework import throttling
from rest_framework.settings import api_settings

#: The units of a rate such as "600/min" (its first letter, as DRF reads it).
PERIOD_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class SlidingWindowThrottle(throttling.BaseThrottle, ABC):
    """At most ``rate`` requests in any window of the rate's length, per scope and client.

    The requests counted in the previous fixed window are weighted by how much of it still lies
    inside the sliding window (the approximation Cloudflare and Redis' own examples use).
    """

    scope: str
    #: Seconds a refused request should wait (set when `allow_request` refuses it).
    wait_s: float | None = None

    def get_rate(self) -> tuple[int, int] | None:
        """(requests, seconds) of the scope's rate as configured now (DRF binds rates at import),
        or None when the scope is unlimited."""
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        if rate is None:
            return None
        count, period = rate.split("/")
        return int(count), PERIOD_SECONDS[period[0]]

    @abstractmethod
    def get_ident_key(self, request, view) -> str | None:
        """Who is counted, or None when this throttle does not apply to the request."""

    def allow_request(self, request, view) -> bool:
        rate = self.get_rate()
        ident = self.get_ident_key(request, view)
        if rate is None or ident is None:
            return True
        limit, duration_s = rate
        now = time.time()
        window = int(now // duration_s)
        current_key = f"throttle:{self.scope}:{ident}:{window}"
        previous = cache.get(f"throttle:{self.scope}:{ident}:{window - 1}", 0)
        current = _increment(current_key, timeout_s=2 * duration_s)
        elapsed_share = (now - window * duration_s) / duration_s
        weighted = previous * (1 - elapsed_share) + current
        if weighted <= limit:
            return True
        with contextlib.suppress(ValueError):  # expired meanwhile: nothing left to give back
            cache.decr(current_key)
        self.wait_s = _wait_s(previous, current - 1, limit, duration_s, elapsed_share)
        return False

    def wait(self) -> float | None:
        return self.wait_s


def _increment(key: str, *, timeout_s: int) -> int:
    """The counter at ``key`` plus one, created (expiring after ``timeout_s``) when absent."""
    for _ in range(3):
        cache.add(key, 0, timeout=timeout_s)
        try:
            return cache.incr(key)
        except ValueError:  # expired between add and incr
            continue
    raise RuntimeError(f"throttle counter {key} could not be incremented")


def _wait_s(previous: int, current: int, limit: int, duration_s: int, elapsed_share: float) -> float:
    """Seconds until one more request fits the sliding window (assuming no other request comes)."""
    if current + 1 <= limit and previous > 0:
        # The previous window's weight must fall to (limit - current - 1) / previous.
        share_needed = 1 - (limit - current - 1) / previous
        return max(1.0, math.ceil((share_needed - elapsed_share) * duration_s))
    # The current window alone is full: wait for it to end and decay enough in the next one.
    share_needed = 1 - (limit - 1) / current if current else 0
    return max(1.0, math.ceil((1 - elapsed_share + max(share_needed, 0)) * duration_s))


class UserRateThrottle(SlidingWindowThrottle):
    """Per authenticated user (per client IP for anonymous requests)."""

    scope = "user"

    def get_ident_key(self, request, view) -> str:
        if request.user and request.user.is_authenticated:
            return f"user-{request.user.pk}"
        return f"ip-{self.get_ident(request)}"


class AnonRateThrottle(SlidingWindowThrottle):
    """Per client IP, anonymous requests only."""

    scope = "anon"

    def get_ident_key(self, request, view) -> str | None:
        if request.user and request.user.is_authenticated:
            return None
        return self.get_ident(request)


class IpRateThrottle(SlidingWindowThrottle):
    """Per client IP, every request: many users (or stolen tokens) from one address are still bounded."""

    scope = "ip"

    def get_ident_key(self, request, view) -> str:
        return self.get_ident(request)
