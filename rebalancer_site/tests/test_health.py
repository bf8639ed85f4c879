"""/health answers without touching anything; /ready names each failed check; the heartbeat task upserts."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import OperationalError
from django.db.migrations import Migration
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from marketdata.services import prices_fetch
from portfolios.tests.factories import make_portfolio, make_user
from rebalancer_site import health
from rebalancer_site.models import ClusterHeartbeat
from rebalancer_site.tasks import heartbeat

NEW_YORK = ZoneInfo("America/New_York")
# The session after the last loaded close (Monday 2025-06-30), in the morning.
NOW = datetime(2025, 7, 1, 10, 0, tzinfo=NEW_YORK)
CHECK_NAMES = ["database", "migrations", "heartbeat", "prices", "calendar"]


def load_prices(symbols, end=date(2025, 6, 30)) -> None:
    prices_fetch(symbols=list(symbols), provider_names=["sample"], start=date(2025, 3, 3), end=end)


@pytest.fixture
def clock(monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    return NOW


@pytest.fixture
def healthy(db, clock):
    """Everything /ready looks at is fine: prices of the portfolio's symbols, a fresh heartbeat."""
    load_prices(["SPY", "BND"])
    portfolio = make_portfolio(make_user(), symbols=["SPY", "BND"])
    heartbeat()
    return portfolio


def checks(response) -> dict[str, dict]:
    return {check["name"]: check for check in response.json()["checks"]}


def failed(response) -> list[str]:
    return [check["name"] for check in response.json()["checks"] if not check["ok"]]


def test_health_is_ok_without_login_database_or_cache(client):
    # No django_db mark: any database access would fail the test.
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-store" in response["Cache-Control"]
    assert client.head("/health").status_code == 200
    assert client.post("/health").status_code == 405


def test_ready_is_ok_when_every_check_passes(client, healthy):
    response = client.get("/ready")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok"
    assert [check["name"] for check in body["checks"]] == CHECK_NAMES
    assert all(check["ok"] for check in body["checks"])
    assert checks(response)["prices"]["detail"] == "2 symbols have the close of 2025-06-30"
    assert "no-store" in response["Cache-Control"]
    assert client.head("/ready").status_code == 200
    assert client.post("/ready").status_code == 405


def test_ready_without_any_heartbeat_is_unavailable(client, healthy, caplog):
    ClusterHeartbeat.objects.all().delete()
    with caplog.at_level(logging.WARNING):
        response = client.get("/ready")
    # One warning naming the failure; not Django's ERROR for a 5xx answer.
    assert [(r.levelname, r.name) for r in caplog.records] == [("WARNING", "rebalancer_site.health")]
    assert caplog.records[0].getMessage().startswith("not ready: heartbeat: no heartbeat")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert failed(response) == ["heartbeat"]
    assert checks(response)["heartbeat"]["detail"].startswith("no heartbeat from task cluster 'rebalancer' yet")


def test_ready_with_a_stale_heartbeat_is_unavailable(client, healthy, settings):
    settings.READY_HEARTBEAT_MAX_AGE_MINUTES = 5
    ClusterHeartbeat.objects.update(last_seen=NOW - timedelta(minutes=6))
    response = client.get("/ready")
    assert response.status_code == 503
    assert failed(response) == ["heartbeat"]
    assert checks(response)["heartbeat"]["detail"] == (
        "last heartbeat from task cluster 'rebalancer' 6 min ago (limit 5 min)"
    )
    ClusterHeartbeat.objects.update(last_seen=NOW - timedelta(minutes=4))
    assert client.get("/ready").status_code == 200


def test_ready_names_the_symbols_without_the_last_close(client, healthy):
    load_prices(["QQQ"], end=date(2025, 6, 27))
    make_portfolio(healthy.owner, name="Growth", symbols=["SPY", "QQQ"])
    response = client.get("/ready")
    assert response.status_code == 503
    assert failed(response) == ["prices"]
    assert checks(response)["prices"]["detail"] == "1 of 3 symbols lack the close of 2025-06-30: QQQ"


def test_ready_ignores_inactive_portfolios_and_falls_back_to_tickers(client, db, clock, settings):
    heartbeat()
    load_prices(["SPY"])
    load_prices(["QQQ"], end=date(2025, 6, 27))
    make_portfolio(make_user(), symbols=["QQQ"], active=False)
    settings.TICKERS = ["SPY", "VTI"]
    response = client.get("/ready")
    assert failed(response) == ["prices"]
    assert checks(response)["prices"]["detail"] == "1 of 2 symbols lack the close of 2025-06-30: VTI"


def test_ready_fails_when_the_calendar_data_ends_within_30_days(client, healthy, monkeypatch):
    monkeypatch.setattr("marketdata.calendar.calendar_last_session", lambda: date(2025, 7, 20))
    response = client.get("/ready")
    assert response.status_code == 503
    assert failed(response) == ["calendar"]
    assert checks(response)["calendar"]["detail"] == (
        "trading calendar data ends 2025-07-20, in 19 days (< 30): upgrade exchange_calendars"
    )


def test_ready_fails_on_an_unapplied_migration(client, healthy, monkeypatch):
    monkeypatch.setattr(
        MigrationExecutor, "migration_plan", lambda self, targets: [(Migration("0099_later", "portfolios"), False)]
    )
    response = client.get("/ready")
    assert response.status_code == 503
    assert failed(response) == ["migrations"]
    assert checks(response)["migrations"]["detail"] == (
        "1 unapplied migration(s), first portfolios.0099_later: run manage.py migrate"
    )


def test_ready_reports_a_database_error_in_one_line_without_secrets(client, healthy, monkeypatch):
    def unreachable() -> str:
        raise OperationalError('connection to server failed: password "hunter2-secret" rejected')

    monkeypatch.setitem(health.CHECKS, "database", unreachable)
    response = client.get("/ready")
    assert response.status_code == 503
    result = checks(response)
    assert result["database"] == {"name": "database", "ok": False, "detail": "database unreachable (OperationalError)"}
    # The checks that need the database are not tried; the calendar still is.
    for name in ("migrations", "heartbeat", "prices"):
        assert result[name]["detail"] == "not checked: the database is unreachable"
    assert result["calendar"]["ok"] is True
    assert "hunter2" not in response.content.decode()
    assert "Traceback" not in response.content.decode()


def test_a_check_that_raises_is_reported_failed_and_the_others_still_run(client, healthy, monkeypatch):
    def broken() -> None:
        raise RuntimeError("internal detail /srv/app/secret.py line 3")

    monkeypatch.setattr("marketdata.selectors.last_bar_dates", lambda symbols: broken())
    response = client.get("/ready")
    assert response.status_code == 503
    assert failed(response) == ["prices"]
    assert checks(response)["prices"]["detail"] == "prices check failed (RuntimeError)"
    assert "secret.py" not in response.content.decode()


def test_ready_runs_only_the_checks_asked_for(client, db, clock):
    # No heartbeat, no prices: the database and migrations checks alone pass.
    response = client.get("/ready?check=database&check=migrations")
    assert response.status_code == 200
    assert [check["name"] for check in response.json()["checks"]] == ["database", "migrations"]
    unknown = client.get("/ready?check=disk")
    assert unknown.status_code == 400
    assert unknown.json() == {
        "error": "unknown check disk: expected some of database, migrations, heartbeat, prices, calendar"
    }


def test_every_check_is_fast(healthy):
    health.warm_up()  # what gunicorn.conf.py does in each worker: the first /ready is then fast too
    for name, check in health.CHECKS.items():
        started = datetime.now()
        check()
        assert datetime.now() - started < timedelta(milliseconds=100), name


@pytest.mark.django_db
def test_heartbeat_upserts_one_row_per_cluster(monkeypatch, settings):
    first = datetime(2025, 7, 1, 10, 0, tzinfo=NEW_YORK)
    monkeypatch.setattr(timezone, "now", lambda: first)
    heartbeat()
    later = first + timedelta(minutes=1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    heartbeat()
    row = ClusterHeartbeat.objects.get()
    assert row.cluster_name == settings.Q_CLUSTER["name"]
    assert row.last_seen == later
    assert row.last_seen.tzinfo is not None
    assert row.host and row.pid


def test_the_endpoints_stay_open_when_the_site_requires_a_login_everywhere(client, healthy, settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "django.contrib.auth.middleware.LoginRequiredMiddleware"]
    assert client.get("/health").status_code == 200
    assert client.get("/ready").status_code == 200
    assert client.get("/metrics").status_code == 200
