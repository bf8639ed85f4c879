"""Operations endpoints: /health (liveness), /ready (readiness report) and /metrics.

``GET /health`` says the process answers and touches nothing else (no database): 200
``{"status": "ok"}``. Use it for liveness probes.

``GET /ready`` runs the checks below and answers 200 when all pass, 503 otherwise, with
``{"status": "ok" | "unavailable", "checks": [{"name", "ok", "detail"}, ...]}``:

    database     a SELECT 1 answers
    migrations   no migration is waiting to be applied
    heartbeat    the task cluster (Q_CLUSTER name) beat within READY_HEARTBEAT_MAX_AGE_MINUTES
    prices       every symbol of the active portfolios (TICKERS when none has any) has its close for
                 the last NYSE session completed READY_PRICES_GRACE_MINUTES ago (the daily run
                 fetches after the close: without a grace /ready would fail every afternoon)
    calendar     the exchange calendar's data reaches at least 30 days ahead

``?check=database&check=migrations`` runs only the named checks. /ready reports the state of the
whole system: used as a load balancer's or Kubernetes' readiness probe it would take every web
process out of service when prices are late or the task cluster is down, which the web pages
do not need. Probe with /health, or with /ready restricted to ``database`` and ``migrations``,
and alert on the full /ready.

A check that raises is reported failed with the exception's type only (the traceback goes to
the log); the checks that need the database are not run when it is unreachable. No endpoint
needs a login, accepts other methods than GET and HEAD, or may be cached.

``GET /metrics`` is the Prometheus exposition (`rebalancer_site.metrics`), answered only to the
clients METRICS_ALLOWED_IPS lets in (403 otherwise).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from marketdata import calendar

logger = logging.getLogger(__name__)

CALENDAR_MIN_DAYS = 30
# Stale symbols named in a failed prices check; the rest are counted.
SHOWN_SYMBOLS = 10
SLOW_CHECK_SECONDS = 0.1


class CheckFailed(Exception):
    """A check's negative answer: the message is the detail shown."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


# --- the checks: each returns the detail of a pass or raises CheckFailed -------------------------------


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "reachable"


def check_migrations() -> str:
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        first = plan[0][0]
        raise CheckFailed(
            f"{len(plan)} unapplied migration(s), first {first.app_label}.{first.name}: run manage.py migrate"
        )
    return "all applied"


def check_heartbeat() -> str:
    from rebalancer_site.models import ClusterHeartbeat
    from rebalancer_site.tasks import cluster_name

    name = cluster_name()
    limit = settings.READY_HEARTBEAT_MAX_AGE_MINUTES
    last_seen = ClusterHeartbeat.objects.filter(cluster_name=name).values_list("last_seen", flat=True).first()
    if last_seen is None:
        raise CheckFailed(
            f"no heartbeat from task cluster {name!r} yet: is qcluster running with its schedules set up?"
        )
    age = timezone.now() - last_seen
    if age > timedelta(minutes=limit):
        raise CheckFailed(f"last heartbeat from task cluster {name!r} {_age_text(age)} ago (limit {limit} min)")
    return f"task cluster {name!r} beat {_age_text(max(age, timedelta(0)))} ago"


def check_prices() -> str:
    from marketdata.models import Instrument
    from marketdata.selectors import last_bar_dates

    symbols = sorted(
        Instrument.objects.filter(portfolios__active=True).values_list("symbol", flat=True).distinct()
    ) or list(settings.TICKERS)
    grace = timedelta(minutes=settings.READY_PRICES_GRACE_MINUTES)
    try:
        session = calendar.last_completed_session(timezone.now() - grace)
    except calendar.CalendarRangeError as exc:
        raise CheckFailed(f"cannot tell the last session: {exc}") from None
    last = last_bar_dates(symbols=symbols)
    stale = [symbol for symbol in symbols if last.get(symbol) is None or last[symbol] < session]
    if stale:
        shown = ", ".join(stale[:SHOWN_SYMBOLS])
        more = f" and {len(stale) - SHOWN_SYMBOLS} more" if len(stale) > SHOWN_SYMBOLS else ""
        raise CheckFailed(f"{len(stale)} of {len(symbols)} symbols lack the close of {session}: {shown}{more}")
    return f"{len(symbols)} symbols have the close of {session}"


def check_calendar() -> str:
    today = timezone.localtime(timezone.now(), calendar.nyse().tz).date()
    ends = calendar.calendar_last_session()
    days = (ends - today).days
    if days < CALENDAR_MIN_DAYS:
        raise CheckFailed(
            f"trading calendar data ends {ends}, in {days} days (< {CALENDAR_MIN_DAYS}): upgrade exchange_calendars"
        )
    return f"trading calendar data until {ends} ({days} days)"


CHECKS: dict[str, Callable[[], str]] = {
    "database": check_database,
    "migrations": check_migrations,
    "heartbeat": check_heartbeat,
    "prices": check_prices,
    "calendar": check_calendar,
}
NEEDS_DATABASE = frozenset({"migrations", "heartbeat", "prices"})


def run_checks(names: list[str] | None = None) -> list[CheckResult]:
    """Runs the named checks (all by default) in order; never raises."""
    results: list[CheckResult] = []
    database_down = False
    for name in names or list(CHECKS):
        if database_down and name in NEEDS_DATABASE:
            results.append(CheckResult(name, False, "not checked: the database is unreachable"))
            continue
        started = time.perf_counter()
        try:
            results.append(CheckResult(name, True, CHECKS[name]()))
        except CheckFailed as failure:
            results.append(CheckResult(name, False, _one_line(str(failure))))
        except Exception as exc:
            logger.warning(
                "readiness check %s raised %s", name, type(exc).__name__, extra={"check": name}, exc_info=True
            )
            what = "database unreachable" if name == "database" else f"{name} check failed"
            results.append(CheckResult(name, False, f"{what} ({type(exc).__name__})"))
            database_down = database_down or name == "database"
        seconds = time.perf_counter() - started
        if seconds > SLOW_CHECK_SECONDS:
            logger.warning(
                "slow readiness check %s: %.0f ms", name, seconds * 1000, extra={"check": name, "seconds": seconds}
            )
    return results


def warm_up() -> None:
    """Loads what the first /ready of a process would otherwise wait for: the trading calendar, the
    migration modules and the price store's (gunicorn.conf.py calls it in each new worker)."""
    from django.db.migrations.loader import MigrationLoader

    from marketdata.stores import get_price_store

    calendar.nyse()
    MigrationLoader(None, ignore_no_migrations=True)
    get_price_store()


def _one_line(text: str) -> str:
    return " ".join(text.split())[:500]


def _age_text(age: timedelta) -> str:
    seconds = int(age.total_seconds())
    return f"{seconds} s" if seconds < 120 else f"{seconds // 60} min"


# --- views ---------------------------------------------------------------------------------------


@login_not_required
@require_safe
@never_cache
def health(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok"})


@login_not_required
@require_safe
@never_cache
def ready(request: HttpRequest) -> HttpResponse:
    names = request.GET.getlist("check")
    unknown = sorted(set(names) - set(CHECKS))
    if unknown:
        return JsonResponse(
            {"error": f"unknown check {', '.join(unknown)}: expected some of {', '.join(CHECKS)}"}, status=400
        )
    results = run_checks([name for name in CHECKS if name in names] if names else None)
    ok = all(result.ok for result in results)
    body = {"status": "ok" if ok else "unavailable", "checks": [asdict(result) for result in results]}
    response = JsonResponse(body, status=200 if ok else 503)
    if not ok:
        failed = [result for result in results if not result.ok]
        logger.warning(
            "not ready: %s",
            "; ".join(f"{result.name}: {result.detail}" for result in failed),
            extra={"failed_checks": [result.name for result in failed]},
        )
        # A failed check is not a server error: Django would log every such probe at ERROR.
        response._has_been_logged = True
    return response


@login_not_required
@require_safe
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from rebalancer_site.metrics import client_allowed, request_forwarded, scrape_registry

    allowed = settings.METRICS_ALLOWED_IPS
    if not client_allowed(request.META.get("REMOTE_ADDR"), allowed, forwarded=request_forwarded(request.META)):
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain; charset=utf-8")
    return HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST)
