"""Throttling per user and per IP address: 429 with Retry-After, counted atomically in the default
cache (Redis in production), so parallel requests never pass more than the rate."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings as django_settings
from django.core.cache import caches
from django.db import connections
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
    # A sliding window: the requests of the last minute still weigh a little after it ends.
    assert 0 < int(throttled.headers["Retry-After"]) <= 2 * 60
    assert bob.get(LIST).status_code == 200  # another user has their own count


def test_refused_tokens_are_counted_per_ip(db, rates):
    rates(anon="2/min")
    guesser = APIClient()
    guesser.credentials(HTTP_AUTHORIZATION="Bearer rb_guessed")
    assert [guesser.get(LIST).status_code for _ in range(3)] == [401, 401, 429]
    other_ip = APIClient(REMOTE_ADDR="10.1.2.3")
    other_ip.credentials(HTTP_AUTHORIZATION="Bearer rb_guessed")
    assert other_ip.get(LIST).status_code == 401


def test_a_call_without_credentials_is_always_told_to_authenticate(db, rates):
    rates(anon="2/min", ip="2/min")
    assert {APIClient().get(LIST).status_code for _ in range(5)} == {401}


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


@pytest.fixture
def redis_cache(settings):
    """The default cache in a Redis database and key prefix of the tests' own (skipped without Redis)."""
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url("redis://127.0.0.1:6379/14", socket_connect_timeout=0.5).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis at 127.0.0.1:6379: the parallel count is checked against a real Redis")
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/14",
            "KEY_PREFIX": "rebalancer-throttle-tests",
        }
    }
    caches["default"].clear()
    yield
    caches["default"].clear()


def parallel_statuses(client: APIClient, url: str, *, requests: int, workers: int) -> list[int]:
    """Status codes of ``requests`` GETs sent by ``workers`` threads at once."""
    start = threading.Barrier(workers)

    def send(_) -> int:
        try:
            return client.get(url).status_code
        finally:
            connections.close_all()

    def worker(count: int) -> list[int]:
        start.wait()
        return [send(i) for i in range(count)]

    shares = [requests // workers + (1 if i < requests % workers else 0) for i in range(workers)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return [status for statuses in pool.map(worker, shares) for status in statuses]


@pytest.mark.parametrize("backend", ["redis", "local memory"])
def test_parallel_requests_pass_exactly_the_rate(transactional_db, rates, request, backend):
    if backend == "redis":
        request.getfixturevalue("redis_cache")
    alice = token_client(make_user("alice"))
    assert alice.get(LIST).status_code == 200  # the token's first use is written once, before the race
    caches["default"].clear()
    rates(user="25/day")
    statuses = parallel_statuses(alice, LIST, requests=100, workers=8)
    assert statuses.count(200) == 25
    assert statuses.count(429) == 75
