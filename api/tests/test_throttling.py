"""Throttling per user and per IP address: 429 with Retry-After, counted in the default cache."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.core.cache import caches
from django.urls import reverse
from rest_framework.test import APIClient

from portfolios.tests.factories import make_user

from .conftest import token_client

LIST = reverse("api:portfolio-list")


@pytest.fixture
def rates(settings):
    def set_rates(**rates):
        settings.REST_FRAMEWORK = {
            **django_settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {"user": "1000/min", "anon": "1000/min", "ip": "1000/min", **rates},
        }

    return set_rates


def test_per_user(db, rates):
    rates(user="3/min")
    alice, bob = token_client(make_user("alice")), token_client(make_user("bob"))
    assert [alice.get(LIST).status_code for _ in range(3)] == [200, 200, 200]
    throttled = alice.get(LIST)
    assert throttled.status_code == 429
    assert 0 < int(throttled.headers["Retry-After"]) <= 60
    assert bob.get(LIST).status_code == 200  # another user has their own count


def test_per_ip_for_anonymous_callers(db, rates):
    rates(anon="2/min")
    statuses = [APIClient().get(LIST).status_code for _ in range(3)]
    assert statuses == [401, 401, 429]
    other_ip = APIClient(REMOTE_ADDR="10.1.2.3")
    assert other_ip.get(LIST).status_code == 401


def test_per_ip_for_everyone(db, rates):
    rates(ip="2/min")
    alice, bob = token_client(make_user("alice")), token_client(make_user("bob"))
    assert [alice.get(LIST).status_code, bob.get(LIST).status_code] == [200, 200]
    response = alice.get(LIST)
    assert response.status_code == 429 and "Retry-After" in response.headers


def test_counts_live_in_redis_when_configured(db, rates, settings):
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_connect_timeout=0.5).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/15",
            "KEY_PREFIX": "rebalancer-tests",
        }
    }
    caches["default"].clear()
    try:
        rates(user="2/min")
        alice = token_client(make_user("alice"))
        assert [alice.get(LIST).status_code for _ in range(3)] == [200, 200, 429]
        assert any(key.startswith(b"rebalancer-tests") for key in redis.Redis(db=15).scan_iter())
    finally:
        caches["default"].clear()
