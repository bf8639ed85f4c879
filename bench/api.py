"""REST API benchmark: 1,000 portfolios; in-process medians and a sustained load on gunicorn.

Targets: with 1,000 portfolios in the database, `GET /api/v1/portfolios/` (a page of 50) and
`GET /api/v1/portfolios/{id}/holdings/` answer in a median < 30 ms in-process (Django's test
client, token authentication, every middleware). Then gunicorn serves the same database on
127.0.0.1 and a second process (wrk, else a Python load generator with threads) drives each
endpoint for `--duration` seconds: requests/s and errors (non-2xx or socket errors; target 0).

The database is a fresh SQLite file in a temporary folder unless `--database-url` names one
(e.g. postgres://postgres@127.0.0.1:5432/bench_api, created and dropped by you). Throttling is
lifted for the run (the rates would answer 429 to a load test, as they should).

Run: .venv/bin/python bench/api.py [--portfolios 1000] [--duration 30] [--connections 16]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

from timing import reference_ms

ROOT = Path(__file__).resolve().parent.parent
SYMBOLS = ["SPY", "QQQ", "VXUS", "BND", "AGG", "GLD"]
TARGET_MS = 30.0
KEY = "rb_bench_" + "k" * 40
NO_THROTTLE = {
    "API_THROTTLE_USER_RATE": "1000000/s",
    "API_THROTTLE_ANON_RATE": "1000000/s",
    "API_THROTTLE_IP_RATE": "1000000/s",
}


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--portfolios", type=int, default=1_000)
    parser.add_argument("--requests", type=int, default=300, help="in-process requests per endpoint")
    parser.add_argument("--duration", type=int, default=30, help="seconds of load per endpoint")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="gunicorn worker processes")
    parser.add_argument("--database-url", default="")
    return parser.parse_args()


def setup_django(url: str) -> None:
    os.environ.update(DATABASE_URL=url, LOG_LEVEL="WARNING", LOG_FORMAT="text", **NO_THROTTLE)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rebalancer_site.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def build(count: int) -> tuple[int, int]:
    """A user owning ``count`` portfolios of 6 instruments and 6 holdings each, in bulk; (user id, a portfolio id)."""
    import hashlib

    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from api.models import ApiToken
    from marketdata.services import instruments_ensure
    from portfolios.models import Holding, Portfolio

    call_command("migrate", verbosity=0)
    instruments = list(instruments_ensure(symbols=SYMBOLS).values())
    user = get_user_model().objects.create_user("bench", password=None)
    ApiToken.objects.create(
        user=user, name="bench", key_digest=hashlib.sha256(KEY.encode()).hexdigest(), prefix=KEY[:8]
    )
    portfolios = Portfolio.objects.bulk_create(
        [Portfolio(owner=user, name=f"Portfolio {n:05d}", cash_usd=Decimal("1000")) for n in range(count)],
        batch_size=500,
    )
    through = Portfolio.instruments.through
    through.objects.bulk_create(
        [through(portfolio_id=p.pk, instrument_id=i.pk) for p in portfolios for i in instruments], batch_size=2000
    )
    Holding.objects.bulk_create(
        [
            Holding(portfolio=p, instrument=i, quantity=Decimal("10.5"), cost_basis_usd=Decimal("1000"))
            for p in portfolios
            for i in instruments
        ],
        batch_size=2000,
    )
    return user.pk, portfolios[len(portfolios) // 2].pk


def in_process(paths: dict[str, str], requests: int) -> dict[str, tuple[float, float]]:
    """(median ms, p95 ms) per endpoint with Django's test client."""
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Bearer {KEY}", HTTP_HOST="127.0.0.1")
    figures = {}
    for name, path in paths.items():
        for _ in range(10):
            assert client.get(path).status_code == 200
        times = []
        for _ in range(requests):
            start = time.perf_counter()
            response = client.get(path)
            times.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, response.content[:200]
        times.sort()
        figures[name] = (statistics.median(times), times[int(len(times) * 0.95)])
    return figures


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(url: str, port: int, workers: int) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "WARNING", **NO_THROTTLE}
    command = [
        str(ROOT / ".venv" / "bin" / "gunicorn"),
        "rebalancer_site.wsgi",
        "-c",
        "gunicorn.conf.py",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
    ]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/portfolios/?page_size=1")
            request.add_header("Authorization", f"Bearer {KEY}")
            if urllib.request.urlopen(request, timeout=2).status == 200:
                return server
        except OSError:
            time.sleep(0.3)
    server.kill()
    raise SystemExit("gunicorn did not answer within 30 s")


def load_wrk(url: str, duration: int, connections: int) -> tuple[float, int, int]:
    """(requests/s, requests, errors) from wrk."""
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "-H", f"Authorization: Bearer {KEY}", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non_2xx.group(1)) if non_2xx else 0) + (sum(map(int, sockets.groups())) if sockets else 0)
    return rate, total, errors


def load_python(url: str, duration: int, connections: int) -> tuple[float, int, int]:
    """(requests/s, requests, errors) from threads with keep-alive connections (when wrk is absent)."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    counts = {"ok": 0, "errors": 0}
    lock = threading.Lock()
    stop = time.time() + duration

    def worker() -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        ok = errors = 0
        while time.time() < stop:
            try:
                connection.request("GET", path, headers={"Authorization": f"Bearer {KEY}"})
                response = connection.getresponse()
                response.read()
                ok, errors = (ok + 1, errors) if response.status == 200 else (ok, errors + 1)
            except OSError:
                errors += 1
                connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        with lock:
            counts["ok"] += ok
            counts["errors"] += errors

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = counts["ok"] + counts["errors"]
    return total / duration, total, counts["errors"]


def main() -> None:
    args = parse()
    folder = Path(tempfile.mkdtemp(prefix="bench-api-"))
    url = args.database_url or f"sqlite:///{folder / 'bench.sqlite3'}"
    print(f"reference: {reference_ms():.0f} ms (machine speed; lower is faster)")
    print(f"database: {url.split('@')[-1]}")
    setup_django(url)
    start = time.perf_counter()
    _, portfolio_id = build(args.portfolios)
    print(f"built {args.portfolios} portfolios with 6 holdings each in {time.perf_counter() - start:.1f} s\n")
    paths = {
        "GET /api/v1/portfolios/ (page of 50)": "/api/v1/portfolios/",
        "GET /api/v1/portfolios/{id}/holdings/": f"/api/v1/portfolios/{portfolio_id}/holdings/",
    }
    results = []
    print(f"in-process, {args.requests} requests each (Django test client, token auth):")
    for name, (median, p95) in in_process(paths, args.requests).items():
        verdict = "PASS" if median < TARGET_MS else "FAIL"
        print(f"  {name:<42} median {median:6.2f} ms  p95 {p95:6.2f} ms  [{verdict} < {TARGET_MS:.0f} ms]")
        results.append(verdict)
    if args.duration <= 0:
        print(f"\nsummary: {results.count('PASS')}/{len(results)} pass (no load test: --duration 0)")
        return
    port = free_port()
    tool = "wrk" if shutil.which("wrk") else "python threads"
    print(
        f"\nsustained load: gunicorn ({args.workers} workers) on 127.0.0.1:{port}, {tool}, "
        f"{args.connections} connections, {args.duration} s per endpoint:"
    )
    server = start_gunicorn(url, port, args.workers)
    try:
        for name, path in paths.items():
            load = load_wrk if tool == "wrk" else load_python
            rate, total, errors = load(f"http://127.0.0.1:{port}{path}", args.duration, args.connections)
            verdict = "PASS" if errors == 0 else "FAIL"
            print(f"  {name:<42} {rate:8.1f} requests/s  {total} requests  {errors} errors  [{verdict}]")
            results.append(verdict)
    finally:
        server.terminate()
        server.wait(timeout=30)
        if not args.database_url:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"\nsummary: {results.count('PASS')}/{len(results)} pass")


if __name__ == "__main__":
    main()
