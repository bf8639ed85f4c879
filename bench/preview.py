"""The what-if preview: server time of `POST /api/v1/portfolios/{id}/preview/` for a 20-holding
portfolio whose optimizer targets for the day are already stored.

Target: median < 300 ms. Set-up (not timed): a fresh SQLite file (or `--database-url`), offline
sample prices for 20 ETFs, one user with a glide-path portfolio of 20 holdings, and one preview
that computes and stores the day's targets (as the daily run does). Timed: the request in-process
through Django's test client with a token (routing, authentication, validation, the snapshot, the
plan, the needs, the risk figures and the JSON answer), `--repeat` times after two warm-ups, for
the default strategy and for each planning strategy with a $5,000 deposit. Printed: median and
p95 ms, SQL queries per request; the row counts before and after show that nothing was stored.

Run: `.venv/bin/python bench/preview.py [--repeat 30] [--database-url postgres://...]`
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from web import ETFS, _closes, setup_django  # the web benchmark's set-up

TARGET_MS = 300
SYMBOLS = ETFS[:20]
STRATEGIES = ("threshold", "full", "cash_flow", "minimize_trades", "minimize_costs", "risk_aware")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--database-url", help="default: a temporary SQLite file")
    return parser.parse_args()


def build():
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from api.services import api_token_create
    from marketdata.models import Instrument
    from marketdata.services import prices_fetch
    from portfolios.models import Portfolio
    from portfolios.services.holdings import holdings_replace

    call_command("migrate", verbosity=0)
    prices_fetch(symbols=SYMBOLS, provider_names=["sample"])
    closes = _closes(SYMBOLS)
    user = get_user_model().objects.create_user("preview", password="bench-password-1")
    portfolio = Portfolio.objects.create(owner=user, name="Twenty holdings", age=40, min_trade_usd=Decimal(1))
    portfolio.instruments.set(Instrument.objects.filter(symbol__in=SYMBOLS))
    rows = [{"symbol": s, "quantity": (Decimal(1000 + 100 * k) / closes[s]).quantize(Decimal("0.001"))}
            for k, s in enumerate(SYMBOLS)]  # fmt: skip
    holdings_replace(portfolio=portfolio, rows=rows, cash_usd=Decimal(1000))
    _, key = api_token_create(user=user, name="bench")
    return portfolio, key


def row_counts() -> dict[str, int]:
    from django.apps import apps

    return {model._meta.label: model.objects.count() for model in apps.get_models()}


def measure(portfolio, key: str, body: dict, repeat: int) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    path = f"/api/v1/portfolios/{portfolio.pk}/preview/"
    for _ in range(2):
        response = client.post(path, body, format="json")
        assert response.status_code == 200, response.content
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        client.post(path, body, format="json")
        times.append(time.perf_counter() - started)
    with CaptureQueriesContext(connection) as queries:
        answer = client.post(path, body, format="json").json()
    times.sort()
    return {
        "median_ms": statistics.median(times) * 1000,
        "p95_ms": times[min(len(times) - 1, int(len(times) * 0.95))] * 1000,
        "queries": len(queries),
        "trades": len(answer["trades"]),
    }


def main() -> None:
    args = parse()
    with tempfile.TemporaryDirectory() as folder:
        setup_django(args.database_url or f"sqlite:///{folder}/bench.sqlite3")
        from django.db import connection

        portfolio, key = build()
        measure(portfolio, key, {}, 1)  # the day's targets computed and stored, as the daily run would
        before = row_counts()
        rows = [("default (threshold)", measure(portfolio, key, {}, args.repeat))]
        for strategy in STRATEGIES:
            body = {"strategy": strategy, "cash_flow_usd": "5000"}
            rows.append((f"{strategy} +$5,000", measure(portfolio, key, body, args.repeat)))
        stored = sum(row_counts().values()) - sum(before.values())
        print(f"preview of 20 holdings, stored targets ({connection.vendor}, {args.repeat} requests each)")
        print(f"{'request':<26}{'median ms':>10}{'p95 ms':>9}{'queries':>9}{'trades':>8}")
        for name, row in rows:
            print(f"{name:<26}{row['median_ms']:>10.1f}{row['p95_ms']:>9.1f}{row['queries']:>9}{row['trades']:>8}")
        print(f"rows stored by {len(rows) * (args.repeat + 3)} previews: {stored}")
        default = rows[0][1]["median_ms"]
        verdict = "PASS" if default < TARGET_MS else "FAIL"
        print(f"target: median < {TARGET_MS} ms for the default request: {default:.1f} ms {verdict}")


if __name__ == "__main__":
    main()
