"""Daily pipeline benchmark on PostgreSQL: N portfolios through a real q-cluster, end to end.

Target: 10,000 portfolios (1,000 users, a 50-symbol universe, 2 workers, the paper
broker): the whole daily run < 5 minutes, peak memory < 1 GiB per worker.

Set-up (not timed): a fresh database, synthetic sample prices for 50 symbols (32 ETFs the
project knows, 18 stocks it does not: whole shares), 1,000 users, N portfolios in `auto` mode,
each with its own paper account (NYSE hours) holding exactly the portfolio's holdings. A
portfolio follows one of 20 model universes of 8 to 15 symbols and has an investor age from 25
to 75. Two kinds of day:

- the worst day (`--drifted 1`, the default): every portfolio's holdings are drawn at random,
  far from its targets, so nearly every plan trades (about 12 orders each);
- a day after a rebalance (`--drifted 0`): every portfolio holds its targets of the previous
  session (computed and stored at set-up, as the previous day's run would have), so only what
  one session's prices and the new targets moved outside the bands trades.

Timed, through `manage.py qcluster` with `--workers` worker processes, in two phases as the
schedule runs them:

1. The daily run after the close: from enqueuing the daily-run task to the last portfolio's
   report ready (or failed): one fetch, then per portfolio sync, targets, plan, store, and (the
   market being closed) its execution scheduled for the next open.
2. The next open: every due execution, from the execute-due task (as its schedule runs it once
   a minute) queuing them in batches to the last run executed (the paper accounts switched to
   their "always open" simulation, which is what the open is to them; the due times moved to
   now).

With `--market-open` the paper accounts trade at any time from the start, as during market hours:
each portfolio's task then executes its plan at once, and the daily run's single pass covers
sync, targets, plan and execution (nothing is left for the next open).

Reported per phase: wall time, portfolios per second, the per-step breakdown, outcomes, the
processor time each cluster process and PostgreSQL used (where the two cores went), and the peak
resident memory of every cluster process (sampled from /proc every second); before and after,
the machine's speed (`timing.reference_ms`: a shared virtual machine's speed changes from hour to
hour and day to day, so figures are compared at a similar reference).

Run: `.venv/bin/python bench/pipeline.py [--portfolios 10000] [--users 1000] [--workers 2]
[--drifted 0..1] [--execute-limit N] [--market-open]` (set-up: half a minute, two with
`--drifted 0`). It creates and drops its own database (--keep keeps it).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path

from timing import reference_ms

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "rebalancer_bench_pipeline"
KNOWN = [
    "SPY", "VOO", "IVV", "QQQ", "VUG", "VTV", "VTI", "VO", "VB", "IWM", "VXUS", "VEA", "EFA", "VWO", "EEM", "VT",
    "BND", "AGG", "SHY", "IEF", "TLT", "TIP", "LQD", "HYG", "MUB", "BIL", "VNQ", "GLD", "DBC", "DIA", "BNDX", "VGIT",
]  # fmt: skip
STOCKS = ["AAPL", "MSFT", "AMZN", "GOOGL", "META", "NVDA", "JPM", "JNJ", "XOM", "PG", "V", "HD", "KO", "PEP", "MRK",
          "CVX", "WMT", "DIS"]  # fmt: skip
TARGET_S = 300
TARGET_MB = 1024


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--portfolios", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--drifted",
        type=float,
        default=1.0,
        help="share of portfolios whose holdings are drawn at random (the rest hold their previous "
        "session's targets, as after yesterday's rebalance); 1.0, the default, is the worst day",
    )
    parser.add_argument(
        "--execute-limit",
        type=int,
        default=None,
        help="time phase 2 on the first N scheduled runs only (the rest stay scheduled; 0 skips phase 2)",
    )
    parser.add_argument(
        "--market-open",
        action="store_true",
        help="the paper accounts trade at any time: each portfolio's task executes its plan at once (a run while "
        "the market is open), so the daily run's one pass covers sync, targets, plan and execution",
    )
    parser.add_argument("--seed", type=int, default=20261128)
    return parser.parse_args()


def setup_django(url: str) -> None:
    os.environ.update(DATABASE_URL=url, LOG_LEVEL="WARNING", LOG_FORMAT="text", PRICE_PROVIDERS="sample")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rebalancer_site.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def build(args: argparse.Namespace, day: date) -> None:
    """Users, paper accounts, portfolios, holdings and paper positions, in bulk."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    from brokers.models import BrokerAccount, PaperAccount, PaperPosition
    from marketdata import calendar
    from marketdata.models import Instrument
    from marketdata.selectors import latest_closes
    from marketdata.services import prices_fetch
    from portfolios.models import Holding, Portfolio

    rng = random.Random(args.seed)
    symbols = KNOWN[:32] + STOCKS
    prices_fetch(symbols=symbols, provider_names=["sample"], backfill_days=400, end=day)
    closes = {
        s: Decimal(str(p)).quantize(Decimal("0.000001"))
        for s, (_, p) in latest_closes(symbols=symbols, on_or_before=day).items()
    }
    previous_closes = {
        s: Decimal(str(p)).quantize(Decimal("0.000001"))
        for s, (_, p) in latest_closes(symbols=symbols, on_or_before=calendar.previous_session(day)).items()
    }
    instruments = {i.symbol: i for i in Instrument.objects.filter(symbol__in=symbols)}
    bonds = [s for s in symbols if instruments[s].asset_class == "bond"]
    models = []
    for _ in range(20):
        size = rng.randint(8, 15)
        universe = set(rng.sample(bonds, 2)) | set(rng.sample(symbols, size))
        models.append(sorted(universe))
    users = get_user_model()
    password = make_password(None)
    users.objects.bulk_create(
        [users(username=f"bench{u:05d}", password=password) for u in range(args.users)], batch_size=1000
    )
    owners = list(users.objects.filter(username__startswith="bench").order_by("pk").values_list("pk", flat=True))
    accounts = BrokerAccount.objects.bulk_create(
        [
            BrokerAccount(owner_id=owners[i % len(owners)], kind="paper", label=f"Paper {i}")
            for i in range(args.portfolios)
        ],
        batch_size=2000,
    )
    portfolios = Portfolio.objects.bulk_create(
        [
            Portfolio(
                owner_id=accounts[i].owner_id,
                name=f"Portfolio {i}",
                age=rng.randint(25, 75),
                mode="auto",
                broker_account=accounts[i],
                cash_usd=Decimal(rng.randint(0, 5000)),
            )
            for i in range(args.portfolios)
        ],
        batch_size=2000,
    )
    through = Portfolio.instruments.through
    universes = [models[rng.randrange(len(models))] for _ in portfolios]
    through.objects.bulk_create(
        [
            through(portfolio_id=portfolio.pk, instrument_id=instruments[symbol].pk)
            for portfolio, universe in zip(portfolios, universes, strict=True)
            for symbol in universe
        ],
        batch_size=5000,
    )
    at_target = _previous_targets(portfolios[: round(len(portfolios) * (1 - args.drifted))], day)
    holdings, papers, positions = [], [], []
    session_mode = "always_open" if args.market_open else "exchange"
    for portfolio, account, universe in zip(portfolios, accounts, universes, strict=True):
        value = rng.uniform(20_000, 2_000_000)
        targets = at_target.get(portfolio.pk)
        weights = [targets.get(symbol, 0.0) if targets else rng.random() ** 2 for symbol in universe]
        if targets:  # what a rebalance leaves: a little cash
            portfolio.cash_usd = Decimal(str(round(value * rng.uniform(0, 0.002), 2)))
        papers.append(PaperAccount(account=account, cash_usd=portfolio.cash_usd, session_mode=session_mode))
        for symbol, weight in zip(universe, weights, strict=True):
            close = previous_closes[symbol] if targets else closes[symbol]
            quantity = Decimal(value * weight / sum(weights)) / close
            quantity = quantity.quantize(Decimal(1) if not instruments[symbol].fractionable else Decimal("0.001"))
            if quantity > 0:
                holdings.append(Holding(portfolio=portfolio, instrument=instruments[symbol], quantity=quantity))
                positions.append((account.pk, symbol, quantity, close))
    Portfolio.objects.bulk_update([p for p in portfolios if p.pk in at_target], ["cash_usd"], batch_size=2000)
    Holding.objects.bulk_create(holdings, batch_size=5000)
    PaperAccount.objects.bulk_create(papers, batch_size=2000)
    paper_ids = dict(PaperAccount.objects.values_list("account_id", "pk"))
    PaperPosition.objects.bulk_create(
        [
            PaperPosition(paper_account_id=paper_ids[a], symbol=s, quantity=q, avg_entry_price_usd=p)
            for a, s, q, p in positions
        ],
        batch_size=5000,
    )
    print(
        f"set-up: {len(symbols)} symbols, {len(models)} model universes, {len(owners)} users, "
        f"{len(portfolios)} portfolios ({len(at_target)} holding their previous session's targets, the rest "
        f"drifted at random), {len(holdings)} holdings"
    )


def _previous_targets(portfolios: list, day: date) -> dict[int, dict[str, float]]:
    """Target weights by portfolio as of the session before ``day`` (what yesterday's run set),
    computed and stored as the daily run does (one solve per distinct universe and age)."""
    from marketdata import calendar
    from optimization.services.targets import targets_compute_many

    if not portfolios:
        return {}
    previous = calendar.previous_session(day)
    started = time.perf_counter()
    answers = targets_compute_many(portfolios, as_of=previous)
    failed = [a for a in answers if not hasattr(a, "result")]
    if failed:
        raise SystemExit(f"set-up: targets of {previous} failed for {len(failed)} portfolios: {failed[0]}")
    print(f"set-up: targets of {previous} for {len(portfolios)} portfolios in {time.perf_counter() - started:.0f} s")
    return {
        portfolio.pk: {symbol: float(weight) for symbol, weight in answer.result.weights().items()}
        for portfolio, answer in zip(portfolios, answers, strict=True)
    }


def worker_pids(cluster: subprocess.Popen) -> set[int]:
    """Every process of the cluster's session (master, sentinel, workers, monitor, pusher)."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == cluster.pid:
                    pids.add(int(entry.name))
            except (ProcessLookupError, PermissionError):
                continue
    return pids


def rss_mb(pid: int) -> tuple[str, float]:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return "", 0.0
    rss = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return cmdline, rss / 1024


def cpu_s(pid: int, *, children: bool = False) -> float:
    """Processor seconds (user + system) ``pid`` has used so far (``children``: and its children
    that have exited and been waited for)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def postgres_cpu_s() -> float:
    """Processor seconds used so far by this machine's PostgreSQL: its processes alive now, and
    the backends that have ended (connections are closed after DB_CONN_MAX_AGE), which their
    parent, the postmaster, has waited for."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    total += cpu_s(int(entry.name), children=True)
            except OSError:
                continue
    return total


class ProcessorTime:
    """Processor seconds the cluster's processes and PostgreSQL used over a phase."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        cluster.sample()
        self.cluster_start, self.postgres_start = dict(cluster.cpu), postgres_cpu_s()

    def report(self, n: int) -> str:
        self.cluster.sample()
        used = sorted(
            (seconds - self.cluster_start.get(pid, 0.0) for pid, seconds in self.cluster.cpu.items()), reverse=True
        )
        postgres = postgres_cpu_s() - self.postgres_start
        total = sum(used) + postgres
        return (
            f"  processor time: {total:.1f} s ({total / max(n, 1) * 1000:.1f} ms per portfolio): "
            f"cluster processes {', '.join(f'{s:.1f}' for s in used if s >= 0.05)} s; PostgreSQL {postgres:.1f} s"
        )


class Cluster:
    """`manage.py qcluster` in its own session, with its processes' peak memory sampled."""

    def __init__(self, url: str, workers: int):
        env = {**os.environ, "DATABASE_URL": url, "Q_WORKERS": str(workers), "LOG_LEVEL": "WARNING"}
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / "bench-pipeline-qcluster.log"
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.peak: dict[int, float] = defaultdict(float)
        self.cpu: dict[int, float] = {}  # processor seconds by process, as last sampled
        time.sleep(3)  # the cluster starts its workers

    def sample(self) -> None:
        for pid in worker_pids(self.process):
            self.peak[pid] = max(self.peak[pid], rss_mb(pid)[1])
            self.cpu[pid] = cpu_s(pid)

    def wait(self, done, total: int, limit_s: float = 7200) -> tuple[float, int]:
        """Seconds until ``done()`` reaches ``total`` (sampling memory each second), and the count."""
        started = time.perf_counter()
        count = 0
        while count < total and time.perf_counter() - started < limit_s:
            time.sleep(1)
            self.sample()
            count = done()
            if self.process.poll() is not None:
                raise SystemExit(f"the cluster stopped; see {self.log_path}")
        return time.perf_counter() - started, count

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.log.close()


def run(args: argparse.Namespace, url: str, day: date) -> None:
    from datetime import datetime, timedelta

    from django.db.models import Count, Q
    from django.utils import timezone
    from django_q.tasks import async_task

    from brokers.models import Order, PaperAccount
    from portfolios.models import PipelineDay, RebalanceRun

    runs = RebalanceRun.objects.active().filter(trading_date=day)
    cluster = Cluster(url, args.workers)
    try:
        processor = ProcessorTime(cluster)
        async_task("portfolios.tasks.daily_run", day.isoformat())
        closed = Q(report_ready_at__isnull=False) | Q(status__in=["failed", "execution_failed"])
        first_s, first_done = cluster.wait(lambda: runs.filter(closed).count(), args.portfolios)
        first_cpu = processor.report(first_done)
        outcomes_1 = dict(runs.values_list("status").annotate(n=Count("pk")))
        steps: Counter[str] = Counter()
        for timings in runs.values_list("timings", flat=True):
            for step, seconds in (timings or {}).items():
                steps[step] += seconds
        day_row = PipelineDay.objects.get(trading_date=day)

        # The next open: the runs made due at 09:35 are due now (the rest of a sample pushed a day
        # away), and the execute-due task, as its schedule runs it, queues them in batches.
        due = runs.filter(status="planned", execute_after__isnull=False)
        scheduled = list(due.order_by("pk").values_list("pk", flat=True))
        planned = len(scheduled)
        if args.execute_limit is not None:
            scheduled = scheduled[: args.execute_limit]
        PaperAccount.objects.update(session_mode="always_open")
        now = timezone.now()
        due.exclude(pk__in=scheduled).update(execute_after=now + timedelta(days=1))
        due.filter(pk__in=scheduled).update(execute_after=now)
        processor = ProcessorTime(cluster)
        async_task("portfolios.tasks.execute_due")
        finished = runs.filter(pk__in=scheduled, status__in=["executed", "execution_failed"])
        second_s, second_done = cluster.wait(lambda: finished.count(), len(scheduled))
        second_cpu = processor.report(second_done)
    finally:
        cluster.stop()
    execution_s = 0.0
    for execution in runs.filter(pk__in=scheduled).values_list("execution", flat=True):
        if execution.get("started_at") and execution.get("finished_at"):
            execution_s += (
                datetime.fromisoformat(execution["finished_at"]) - datetime.fromisoformat(execution["started_at"])
            ).total_seconds()
    outcomes_2 = dict(runs.filter(pk__in=scheduled).values_list("status").annotate(n=Count("pk")))
    orders = Order.objects.filter(run__trading_date=day).count()
    n = max(first_done, 1)
    when = "with the market open (plans executed in their task)" if args.market_open else "after the close"
    print(
        f"\n1. Daily run of {day} {when}: {first_done} portfolios in {first_s:.1f} s "
        f"({first_done / first_s:.1f} portfolios/s), {args.workers} workers; outcomes {outcomes_1}"
    )
    rows = [
        ("fetch (once, in the daily task)", day_row.timings.get("fetch", 0.0)),
        ("dispatch (one task per portfolio)", day_row.timings.get("dispatch", 0.0)),
    ]
    rows += [(f"run: {step}", seconds) for step, seconds in sorted(steps.items(), key=lambda kv: -kv[1])]
    # The workers' time the steps above do not account for (all busy: wall time x workers).
    untimed = first_s * args.workers - sum(seconds for _, seconds in rows)
    rows.append(("untimed: sync, events, lock, schedule, queue, idle", untimed))
    for name, seconds in rows:
        print(f"  {name:<46} {seconds:9.1f} s   {seconds / n * 1000:8.1f} ms per portfolio")
    print(first_cpu)
    print(
        f"\n2. Next open: {second_done} scheduled executions in {second_s:.1f} s "
        f"({second_done / max(second_s, 1e-9):.1f} runs/s); {orders:,} orders; outcomes {outcomes_2}"
    )
    print(
        f"  execution (checks, orders at the paper broker, reconcile, sync): {execution_s:.1f} s summed, "
        f"{execution_s / max(second_done, 1) * 1000:.0f} ms per run"
    )
    if second_done:
        outside = second_s * args.workers - execution_s
        print(
            f"  before its first stored step and after its last (task, run reads, lease, checks, queue): "
            f"{outside:.1f} s, {outside / second_done * 1000:.0f} ms per run"
        )
        print(second_cpu)
    workers = {pid: mb for pid, mb in cluster.peak.items() if mb > 0}
    biggest = max(workers.values(), default=0.0)
    print(f"\npeak resident memory per cluster process: max {biggest:.0f} MiB over {len(workers)} processes")
    print("\nSummary")
    print(
        f"  daily run {when}, {args.portfolios:,} portfolios: {first_s:.1f} s (target < {TARGET_S} s): "
        f"{'PASS' if first_s < TARGET_S else 'FAIL'}"
    )
    if scheduled:
        # A sample (--execute-limit) is judged at its rate over every planned run.
        all_s = second_s * planned / len(scheduled)
        print(
            f"  execution at the next open, {planned:,} runs: {all_s:.1f} s (target < {TARGET_S} s): "
            f"{'PASS' if all_s < TARGET_S else 'FAIL'}"
            + (f" (the rate of a sample of {len(scheduled):,}: {second_s:.1f} s)" if planned > len(scheduled) else "")
        )
        together = first_s + all_s
        print(
            f"  the two together: {together:.1f} s (target < {TARGET_S} s): {'PASS' if together < TARGET_S else 'FAIL'}"
        )
    else:
        print(f"  execution at the next open: not timed (--execute-limit 0; {planned:,} runs planned)")
    print(
        f"  peak memory per worker: {biggest:.0f} MiB (target < {TARGET_MB} MiB): "
        f"{'PASS' if biggest < TARGET_MB else 'FAIL'}"
    )


def main() -> int:
    args = parse()
    import psycopg

    with psycopg.connect(f"{args.pg_url}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME}")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    url = f"{args.pg_url}/{DB_NAME}"
    setup_django(url)
    from django.core.management import call_command
    from django.utils import timezone

    from marketdata import calendar

    call_command("migrate", verbosity=0)
    day = calendar.last_completed_session(timezone.now())
    started = time.perf_counter()
    build(args, day)
    print(
        f"set-up took {time.perf_counter() - started:.0f} s; trading date {day}; "
        f"load average {os.getloadavg()[0]:.2f}; machine speed reference {reference_ms():.0f} ms (lower is faster)"
    )
    try:
        run(args, url, day)
        # Shared machines change speed from hour to hour: compare figures taken at a similar reference.
        print(f"  machine speed reference after the run: {reference_ms():.0f} ms")
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            with psycopg.connect(f"{args.pg_url}/postgres", autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
