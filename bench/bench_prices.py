"""Market-data benchmarks: importing the 504-stock table into PostgreSQL, and price_frame latency.

Targets: import >= 200k bars/s into PostgreSQL; price_frame for 500 symbols x
252 sessions < 100 ms from PostgreSQL and < 30 ms from parquet.

Run: `make bench` (or .venv/bin/python bench/bench_prices.py [--pg-url postgres://...]).
It creates and drops its own database (rebalancer_bench) and a temporary parquet folder.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from datetime import date
from pathlib import Path

from timing import timed

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "pooksoft_sp500_alphavantage"
WIDE = DATA / "pooksoft_sp500_adjusted_close_wide_2014-01-02_2021-04-21.derived.csv"
DB_NAME = "rebalancer_bench"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--repeat", type=int, default=30, help="price_frame calls per store (median reported)")
    parser.add_argument("--runs", type=int, default=3, help="bulk writes and imports per figure (median reported)")
    args = parser.parse_args()
    if not WIDE.exists():
        print(f"skipped: {WIDE} not found (the benchmark needs ../shared/data)")
        return 0

    import psycopg

    admin_url = f"{args.pg_url}/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME}")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    parquet_dir = tempfile.mkdtemp(prefix="bench-parquet-")
    os.environ.update(
        DATABASE_URL=f"{args.pg_url}/{DB_NAME}", STORAGE_PATH=parquet_dir, LOG_LEVEL="WARNING", LOG_FORMAT="text"
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rebalancer_site.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    from marketdata import quality
    from marketdata.providers.csv_files import CsvProvider
    from marketdata.services import _to_long, instruments_ensure, prices_import
    from marketdata.stores.database import DatabasePriceStore
    from marketdata.stores.parquet import ParquetPriceStore

    rows: list[tuple[str, str, str]] = []

    parse_s, read = timed(lambda: CsvProvider(path=str(WIDE)).read_all())
    bars = sum(len(f) for f in read.bars.values())
    symbols = sorted(read.bars)
    rows.append(("parse CSV (504 columns)", f"{parse_s:.2f} s", f"{bars / parse_s:,.0f} bars/s"))

    long = _to_long(read.bars, dict.fromkeys(symbols, "bench"), dict.fromkeys(symbols, False))
    validate_s, _ = timed(lambda: quality.validate_long(long))
    rows.append(("validate (quality rules)", f"{validate_s:.2f} s", f"{bars / validate_s:,.0f} bars/s"))

    from django.db import connection

    def truncate() -> None:
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE marketdata_pricebar")

    def fresh_write() -> int:
        truncate()
        return DatabasePriceStore().write_bars(long)

    instruments_ensure(symbols=symbols)
    write_s, written = timed(fresh_write, args.runs)
    rows.append(("PostgreSQL store write (COPY)", f"{write_s:.2f} s", f"{written / write_s:,.0f} bars/s"))

    def fresh_import():
        truncate()
        return prices_import(path=WIDE, store=DatabasePriceStore())

    import_s, log = timed(fresh_import, args.runs)
    rows.append(
        ("import_prices end to end -> PostgreSQL", f"{import_s:.2f} s", f"{log.rows_written / import_s:,.0f} bars/s")
    )
    again_s, again = timed(lambda: prices_import(path=WIDE, store=DatabasePriceStore()))
    rows.append(("import_prices again (nothing new)", f"{again_s:.2f} s", f"{again.rows_written} bars written"))
    with connection.cursor() as cursor:
        # What autovacuum does after a bulk load; reads then skip the visibility checks.
        cursor.execute("VACUUM ANALYZE marketdata_pricebar")

    parquet_s, written_pq = timed(lambda: ParquetPriceStore().write_bars(long))
    rows.append(("parquet store write", f"{parquet_s:.2f} s", f"{written_pq / parquet_s:,.0f} bars/s"))

    # 500 symbols x 252 sessions: the last trading year of the table.
    wanted = symbols[:500]
    start, end = date(2020, 4, 21), date(2021, 4, 21)
    pg_s, frame = timed(lambda: DatabasePriceStore().price_frame(wanted, start, end), args.repeat)
    shape = f"{frame.shape[0]} x {frame.shape[1]}"
    pq_s, frame_pq = timed(lambda: ParquetPriceStore().price_frame(wanted, start, end), args.repeat)
    assert frame.equals(frame_pq), "stores disagree"
    rows.append((f"price_frame {shape} from PostgreSQL (median)", f"{pg_s * 1000:.1f} ms", "target < 100 ms"))
    rows.append((f"price_frame {shape} from parquet (median)", f"{pq_s * 1000:.1f} ms", "target < 30 ms"))

    width = max(len(r[0]) for r in rows)
    print(f"\n{bars:,} bars, {len(symbols)} symbols, {WIDE.name}\n")
    for name, seconds, rate in rows:
        print(f"{name:<{width}}  {seconds:>10}  {rate}")

    from django.db import connections

    connections.close_all()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
