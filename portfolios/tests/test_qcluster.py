"""The daily run through real q-clusters against PostgreSQL: two clusters with the schedule due
make one run per portfolio; a worker killed mid-execution and restarted resumes without
sending anything twice."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.db import connection
from django_q.models import Schedule, Success

from brokers.models import Order, PaperAccount, PaperOrder
from portfolios.models import PipelineDay, RebalanceRun

from .execution_factories import NEW_YORK, paper_portfolio
from .factories import AS_OF
from .test_execution_concurrency import database_url

ROOT = Path(__file__).resolve().parents[2]
AFTER_CLOSE = datetime(2025, 6, 30, 16, 30, tzinfo=NEW_YORK)
pytestmark = pytest.mark.django_db(transaction=True)


def start_cluster(**extra_env) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "TEST_FAKE_NOW": AFTER_CLOSE.isoformat(),
        "TEST_SLOW_BROKER_SECONDS": "0",
        "PRICE_PROVIDERS": "sample",
        "LOG_FORMAT": "text",
        "Q_WORKERS": "2",
        **extra_env,
    }
    command = [sys.executable, "manage.py", "qcluster", "--settings", "tests.fakes.slow_settings"]
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM) -> str:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        output, _ = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
    return output or ""


def wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def wait_for_clusters(clusters, condition, timeout_s: float, what: str, state) -> None:
    """`wait_for`; on a timeout, stop the clusters and fail with ``state()`` and their output."""
    try:
        wait_for(condition, timeout_s, what)
    except AssertionError as error:
        outputs = [stop(cluster)[-3000:] for cluster in clusters]
        raise AssertionError(f"{error}\n{state()}\n" + "\n----\n".join(outputs)) from None


def always_open_auto_portfolios(prefix: str, count: int) -> list:
    """``count`` auto portfolios off their 60/40 targets, at paper accounts that trade at any hour."""
    return [
        paper_portfolio(
            username=f"{prefix}{i}",
            holdings_usd={"SPY": 8000, "BND": 2000},
            session_mode=PaperAccount.SessionMode.ALWAYS_OPEN,
        )
        for i in range(count)
    ]


@pytest.fixture
def postgres():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: q-clusters in other processes cannot see SQLite's in-memory test database")


def test_two_clusters_with_the_schedule_due_make_one_run_per_portfolio(postgres, prices, clock):
    clock.now = AFTER_CLOSE
    auto = always_open_auto_portfolios("auto", 3)
    proposed = [
        paper_portfolio(username=f"prop{i}", holdings_usd={"SPY": 7000, "BND": 3000}, mode="propose") for i in range(3)
    ]
    daily = Schedule.objects.create(
        name="daily-run",
        func="portfolios.tasks.daily_run",
        schedule_type=Schedule.CRON,
        cron="30 16 * * 1-5",
        repeats=-1,
    )
    # Due a minute ago (saving a cron schedule computes its next run: set it afterwards).
    Schedule.objects.filter(pk=daily.pk).update(next_run=AFTER_CLOSE - timedelta(minutes=1))
    clusters = [start_cluster(), start_cluster()]
    ids = [p.pk for p in auto + proposed]
    wait_for_clusters(
        clusters,
        lambda: RebalanceRun.objects.filter(portfolio_id__in=ids, report_ready_at__isnull=False).count() == len(ids),
        150,
        "every portfolio's report",
        state=lambda: list(RebalanceRun.objects.values_list("portfolio_id", "status", "report_ready_at", "error")),
    )
    outputs = [stop(c) for c in clusters]
    assert PipelineDay.objects.count() == 1, outputs
    # The daily task's success is in the task history; the portfolio days' are not (their runs are).
    saved = set(Success.objects.values_list("func", flat=True))
    assert "portfolios.tasks.daily_run" in saved and "portfolios.tasks.run_portfolio_day" not in saved
    for portfolio in auto + proposed:
        assert RebalanceRun.objects.filter(portfolio=portfolio).count() == 1
    executed = RebalanceRun.objects.filter(portfolio__in=auto)
    assert {run.status for run in executed} == {RebalanceRun.Status.EXECUTED}
    planned = sum(run.trades.count() for run in executed)
    assert PaperOrder.objects.count() == Order.objects.count() == planned > 0
    assert {run.status for run in RebalanceRun.objects.filter(portfolio__in=proposed)} <= {
        RebalanceRun.Status.PLANNED,
        RebalanceRun.Status.NO_ACTION,
    }


def test_a_worker_killed_mid_execution_resumes_without_duplicates(postgres, prices, clock, tmp_path):
    # Killed once the broker has taken the sell, before its answer is recorded: the order was
    # stored "submitting" before the call, and the resume finds it by lookup instead of resending.
    from django_q.tasks import async_task

    clock.now = AFTER_CLOSE
    portfolio = paper_portfolio(
        holdings_usd={"SPY": 8000, "BND": 2000}, session_mode=PaperAccount.SessionMode.ALWAYS_OPEN
    )
    marker = tmp_path / "submitted"
    async_task("portfolios.tasks.run_portfolio_day", portfolio.pk, AS_OF.isoformat())
    first = start_cluster(TEST_SLOW_SUBMIT_SECONDS="30", TEST_SUBMIT_MARKER=str(marker))
    try:
        wait_for(marker.exists, 60, "the broker taking the sell")
        time.sleep(0.5)  # the broker has the order; its answer is not recorded yet
    except AssertionError as error:
        raise AssertionError(f"{error}\n{stop(first)[-3000:]}") from None
    stop(first, signal.SIGKILL)
    run = RebalanceRun.objects.get(portfolio=portfolio)
    assert run.status == RebalanceRun.Status.EXECUTING and run.execution_step == "checked"
    assert PaperOrder.objects.count() == 1 and run.orders.get().state == "submitting"
    # Restarted, and the day asked again (the resume sweep or an operator does this).
    async_task("portfolios.tasks.run_portfolio_day", portfolio.pk, AS_OF.isoformat())
    second = start_cluster()
    wait_for_clusters(
        [second],
        lambda: RebalanceRun.objects.filter(pk=run.pk, status=RebalanceRun.Status.EXECUTED).exists(),
        90,
        "the resumed run",
        state=lambda: list(
            RebalanceRun.objects.filter(pk=run.pk).values_list("status", "execution_step", "lease_owner")
        ),
    )
    stop(second)
    run.refresh_from_db()
    assert PaperOrder.objects.count() == Order.objects.filter(run=run).count() == run.trades.count() == 2
    sell = run.orders.get(side="sell")
    assert [e.kind for e in sell.events.all()][:2] == ["request", "lookup"]


def test_two_clusters_with_executions_due_execute_each_run_once_in_batches(postgres, prices, clock):
    # Plans made after the close, due at the open: the execute-due schedule queues them (two ids
    # per task), two clusters take the tasks, and every run is executed once.
    from portfolios.services import pipeline

    clock.now = AFTER_CLOSE
    portfolios = always_open_auto_portfolios("due", 5)
    for portfolio in portfolios:
        assert (
            pipeline.portfolio_day(portfolio_id=portfolio.pk, trading_date=AS_OF, execute=False)
            == pipeline.Outcome.PLANNED
        )
    runs = RebalanceRun.objects.filter(portfolio__in=portfolios)
    runs.update(execute_after=AFTER_CLOSE - timedelta(minutes=1))
    Schedule.objects.create(
        name="execute-due",
        func="portfolios.tasks.execute_due",
        schedule_type=Schedule.MINUTES,
        minutes=1,
        repeats=-1,
        next_run=AFTER_CLOSE - timedelta(minutes=1),  # due by the clusters' clock
    )
    clusters = [start_cluster(EXECUTION_BATCH_RUNS="2"), start_cluster(EXECUTION_BATCH_RUNS="2")]
    wait_for_clusters(
        clusters,
        lambda: runs.filter(status=RebalanceRun.Status.EXECUTED).count() == 5,
        120,
        "every due run executed",
        state=lambda: list(runs.values_list("status", "error")),
    )
    for cluster in clusters:
        stop(cluster)
    batches = sorted(Success.objects.filter(func="portfolios.tasks.execute_runs_task").values_list("args", flat=True))
    assert sorted(len(args[0]) for args in batches) == [1, 2, 2]  # five runs, two per task
    planned = sum(run.trades.count() for run in runs)
    assert PaperOrder.objects.count() == Order.objects.filter(run__in=runs).count() == planned == 10
