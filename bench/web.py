"""Web pages benchmark: the dashboard with 50 portfolios and the report of a run with 50 holdings.

Target: median server time < 150 ms for each page on SQLite and on PostgreSQL; the
report's HTML (plotly.js is a separate, cached static file) < 500 KB.

Set-up (not timed), per database: a fresh database (a temporary SQLite file; a new PostgreSQL
database that is dropped afterwards), offline sample prices for 50 symbols, one user with 50
portfolios of 8 holdings each and four stored runs each (a value history), and one more user whose portfolio holds
50 symbols, with its optimizer targets (glide path, frontier, risk figures) and its plan stored.

Timed: the page requested in-process through Django's test client (URL routing, middleware,
session, selectors, templates, charts: everything but the network), `--repeat` times after two
warm-ups. Printed: median and p95 milliseconds, SQL queries per request, HTML size.

Run: `.venv/bin/python bench/web.py [--repeat 30] [--only sqlite|postgresql]`. Each database runs
in its own process (Django connects to one database per process).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_URL = "postgres://postgres@127.0.0.1:5432"
PG_DB = "rebalancer_bench_web"
TARGET_MS = 150
TARGET_KB = 500
HISTORY_RUNS = 20  # sessions back of each dashboard portfolio's first stored run
ETFS = ["SPY", "QQQ", "VTI", "VXUS", "BND", "AGG", "TLT", "IEF", "SHY", "LQD", "HYG", "TIP", "GLD", "VNQ", "VEA", "VWO"]
ETFS += ["EFA", "EEM", "IWM", "VB", "VO", "VUG", "VTV", "DIA", "MUB", "BIL", "DBC", "BNDX", "VOO", "IVV", "VT", "VGIT"]
FIFTY = ETFS + [f"ZQ{i:02d}" for i in range(50 - len(ETFS))]


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    parser.add_argument("--database-url", help=argparse.SUPPRESS)  # set for the child process
    return parser.parse_args()


def setup_django(url: str) -> None:
    os.environ.update(DATABASE_URL=url, LOG_LEVEL="WARNING", LOG_FORMAT="text", PRICE_PROVIDERS="sample")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rebalancer_site.settings")
    sys.path.insert(0, str(ROOT))
    import warnings

    import django

    # The benchmark does not run collectstatic; whitenoise's note about the missing folder is noise.
    warnings.filterwarnings("ignore", "No directory at", UserWarning)
    django.setup()
    from django.conf import settings

    settings.ALLOWED_HOSTS = ["testserver"]
    # Passwords are set once here; the production hasher's slowness is not what is measured.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def build() -> tuple[object, object, int]:
    """(dashboard user, report user, report run id)."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.utils import timezone

    from marketdata import calendar
    from marketdata.models import Instrument
    from marketdata.services import prices_fetch
    from portfolios.models import Portfolio
    from portfolios.services.holdings import holdings_replace
    from portfolios.services.rebalancing import rebalance_run_create

    call_command("migrate", verbosity=0)
    prices_fetch(symbols=FIFTY, provider_names=["sample"])
    last = calendar.last_completed_session(timezone.now())
    days = [calendar.sessions_back(last, count) for count in (HISTORY_RUNS, 10, 2)] + [last]
    closes = _closes(FIFTY)
    users = get_user_model().objects
    many = users.create_user("many", password="bench-password-1")
    for index in range(50):
        symbols = [ETFS[(index + k) % len(ETFS)] for k in range(8)]
        portfolio = Portfolio.objects.create(owner=many, name=f"Portfolio {index + 1:02d}", age=25 + index)
        portfolio.instruments.set(Instrument.objects.filter(symbol__in=symbols))
        rows = [{"symbol": s, "quantity": (Decimal(1000 + 250 * k) / closes[s]).quantize(Decimal("0.001"))}
                for k, s in enumerate(symbols)]  # fmt: skip
        holdings_replace(portfolio=portfolio, rows=rows, cash_usd=Decimal(2500))
        for day in days:  # a value history for the dashboard's small chart
            rebalance_run_create(portfolio=portfolio, as_of=day, manual=True)
    wide = users.create_user("wide", password="bench-password-1")
    portfolio = Portfolio.objects.create(owner=wide, name="Fifty holdings", age=45, min_trade_usd=Decimal(1))
    portfolio.instruments.set(Instrument.objects.filter(symbol__in=FIFTY))
    rows = [{"symbol": s, "quantity": (Decimal(2000) / closes[s]).quantize(Decimal("0.001"))} for s in FIFTY]
    holdings_replace(portfolio=portfolio, rows=rows, cash_usd=Decimal(500))
    run = rebalance_run_create(portfolio=portfolio, manual=True).run
    return many, wide, run.pk


def _closes(symbols: list[str]) -> dict[str, Decimal]:
    from datetime import date

    from marketdata.selectors import price_frame

    frame = price_frame(symbols=symbols, start=date(2000, 1, 1), end=date.today())
    return {symbol: Decimal(repr(float(frame[symbol].dropna().iloc[-1]))) for symbol in symbols}


def measure(user, path: str, repeat: int) -> dict:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(user)
    for _ in range(2):  # warm-up: template loading, first connection, caches
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(path)
        times.append(time.perf_counter() - started)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    html = response.content.decode()
    charts = html.count('class="plotly-graph-div') + html.count("data-figure=")
    times.sort()
    return {
        "median_ms": statistics.median(times) * 1000,
        "p95_ms": times[min(len(times) - 1, int(len(times) * 0.95))] * 1000,
        "queries": len(queries),
        "kb": len(response.content) / 1024,
        "charts": charts,
    }


def child(url: str, repeat: int) -> None:
    setup_django(url)
    from django.db import connection

    started = time.perf_counter()
    many, wide, run_id = build()
    print(f"  set-up: {time.perf_counter() - started:.1f} s ({connection.vendor})", flush=True)
    for label, user, path in (
        ("dashboard, 50 portfolios", many, "/"),
        ("report, 50 holdings", wide, f"/runs/{run_id}/"),
    ):
        figures = measure(user, path, repeat)
        verdict = "ok" if figures["median_ms"] < TARGET_MS else f"OVER the {TARGET_MS} ms target"
        size = "" if path == "/" else (" ok" if figures["kb"] < TARGET_KB else f" OVER the {TARGET_KB} KB target")
        print(
            f"  {label:<26} median {figures['median_ms']:7.1f} ms  p95 {figures['p95_ms']:7.1f} ms  "
            f"{figures['queries']:3d} queries  {figures['charts']:2d} charts  "
            f"HTML {figures['kb']:6.1f} KB{size}  [{verdict}]",
            flush=True,
        )


def psql(sql: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc", sql], check=True)


def main() -> None:
    args = parse()
    if args.database_url:
        child(args.database_url, args.repeat)
        return
    sys.path.insert(0, str(ROOT / "bench"))
    from timing import reference_ms

    print(f"Web pages benchmark (targets: median < {TARGET_MS} ms, report HTML < {TARGET_KB} KB without plotly.js)")
    print(f"Machine reference: {reference_ms():.0f} ms (bench/timing.py; lower is faster)")
    backends = [args.only] if args.only else ["sqlite", "postgresql"]
    for backend in backends:
        print(f"\n{backend}:", flush=True)
        with tempfile.TemporaryDirectory() as folder:
            if backend == "sqlite":
                url = f"sqlite:///{folder}/bench.sqlite3"
            else:
                psql(f"DROP DATABASE IF EXISTS {PG_DB}")
                psql(f"CREATE DATABASE {PG_DB}")
                url = f"{PG_URL}/{PG_DB}"
            env = {**os.environ, "STORAGE_PATH": f"{folder}/data"}
            try:
                command = [sys.executable, __file__, "--database-url", url, "--repeat", str(args.repeat)]
                subprocess.run(command, check=True, env=env)
            finally:
                if backend == "postgresql":
                    psql(f"DROP DATABASE IF EXISTS {PG_DB}")


if __name__ == "__main__":
    main()
