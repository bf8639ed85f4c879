"""Two processes executing the same run at the same moment: exactly one sends the orders."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from brokers.models import Order, PaperOrder
from portfolios.models import RebalanceRun

from .execution_factories import MARKET_OPEN_NOW, paper_portfolio, planned_run

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.mark.django_db(transaction=True)
def test_two_executors_at_once_send_each_order_once(prices, clock):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: the test database of SQLite runs lives in memory, invisible to other processes")
    portfolio = paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000})
    run = planned_run(portfolio)
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "TEST_FAKE_NOW": MARKET_OPEN_NOW.isoformat(),
        "TEST_SLOW_BROKER_SECONDS": "3",
        "LOG_FORMAT": "text",
    }
    command = [
        sys.executable,
        "manage.py",
        "execute",
        "--run",
        str(run.pk),
        "--submit",
        "--settings",
        "tests.fakes.slow_settings",
    ]
    processes = [
        subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=120) for process in processes]
    codes = sorted(process.returncode for process in processes)
    joined = "\n".join(out + err for out, err in outputs)
    assert codes == [0, 3], joined
    assert "is being executed by another process" in joined
    run.refresh_from_db()
    assert run.status == RebalanceRun.Status.EXECUTED
    assert Order.objects.filter(run=run).count() == 2
    assert PaperOrder.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_due_run_another_dispatcher_holds_is_skipped_then_queued_once(prices, clock):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite has no row locks for a second dispatcher to skip")
    import psycopg

    from portfolios.services.execution_queue import executions_dispatch

    clock.now = MARKET_OPEN_NOW
    held, free = (
        planned_run(paper_portfolio(username=name, holdings_usd={"SPY": 8000, "BND": 2000})) for name in ("a", "b")
    )
    RebalanceRun.objects.filter(pk__in=[held.pk, free.pk]).update(execute_after=MARKET_OPEN_NOW)
    queued = []
    with psycopg.connect(database_url()) as other, other.transaction():
        # Another cluster's dispatcher, in the middle of queuing ``held``.
        other.execute("SELECT id FROM portfolios_rebalancerun WHERE id = %s FOR UPDATE", [held.pk])
        assert executions_dispatch(enqueue=queued.append) == [free.pk]
    assert executions_dispatch(enqueue=queued.append) == [held.pk]  # it never queued it: still due
    assert queued == [[free.pk], [held.pk]]
    assert executions_dispatch(enqueue=queued.append) == []
