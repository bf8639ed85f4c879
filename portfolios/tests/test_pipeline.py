"""The daily pipeline: the trading date, one fetch, one day per portfolio, execution now or at the
next open, failing closed on missing prices, events and their e-mails, resuming, schedules."""

from __future__ import annotations

import io
import json
import logging
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.db.models import F
from django_q.models import Schedule

from brokers.adapters.paper import PaperBroker
from brokers.base import BrokerError
from brokers.models import BrokerAccount, PaperAccount, PaperOrder
from brokers.services.paper import paper_account_reset
from marketdata.models import PriceBar
from portfolios import events, tasks
from portfolios.models import AuditEntry, PipelineDay, RebalanceRun
from portfolios.schedules import schedules_setup
from portfolios.services import execution_queue, pipeline
from portfolios.services.execution.lease import lease_claim, new_owner

from .execution_factories import NEW_YORK, close, paper_portfolio, shares_worth
from .factories import AS_OF

pytestmark = pytest.mark.django_db
Status = RebalanceRun.Status
AFTER_CLOSE = datetime(2025, 6, 30, 16, 30, tzinfo=NEW_YORK)
NEXT_OPEN = datetime(2025, 7, 1, 9, 35, tzinfo=NEW_YORK)


@pytest.fixture(autouse=True)
def _offline(settings):
    settings.PRICE_PROVIDERS = ["sample"]
    settings.DRIFT_ALERT_THRESHOLD = 0.5  # the test portfolios drift 20%: no alert unless a test asks
    settings.EXECUTION_WAIT_SECONDS = 0.2
    settings.EXECUTION_POLL_SECONDS = 0.01


def events_of(portfolio) -> list[str]:
    return list(AuditEntry.objects.filter(portfolio=portfolio).order_by("id").values_list("event", flat=True))


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2025, 6, 30, 15, 59, tzinfo=NEW_YORK), None),  # before the close
        (datetime(2025, 6, 30, 16, 0, tzinfo=NEW_YORK), AS_OF),
        (datetime(2025, 7, 4, 16, 30, tzinfo=NEW_YORK), None),  # Independence Day
        (datetime(2025, 7, 5, 16, 30, tzinfo=NEW_YORK), None),  # Saturday
        (datetime(2025, 7, 3, 13, 1, tzinfo=NEW_YORK), datetime(2025, 7, 3).date()),  # early close at 13:00
        (datetime(2025, 7, 3, 12, 59, tzinfo=NEW_YORK), None),
    ],
)
def test_the_daily_run_plans_on_a_session_that_has_closed(now, expected):
    assert pipeline.daily_trading_date(now) == expected


def test_a_holiday_has_no_run():
    dispatched = []
    result = pipeline.daily_run(
        now=datetime(2025, 7, 4, 16, 30, tzinfo=NEW_YORK), dispatch=lambda *a: dispatched.append(a)
    )
    assert result is None and dispatched == [] and not PipelineDay.objects.exists()


def test_before_the_close_the_run_waits_for_it():
    pipeline.daily_run(now=datetime(2025, 7, 3, 10, 0, tzinfo=NEW_YORK), dispatch=lambda *a: None)
    deferred = Schedule.objects.get(name="daily-run-after-close-2025-07-03")
    assert deferred.func == "portfolios.tasks.daily_run" and deferred.schedule_type == Schedule.ONCE
    assert deferred.next_run == datetime(2025, 7, 3, 13, 1, tzinfo=NEW_YORK)  # the early close, plus a minute


def test_one_fetch_for_every_portfolios_symbols_then_one_task_per_batch(prices, clock, settings):
    clock.now = AFTER_CLOSE
    first = paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000})
    second = paper_portfolio(username="bob", holdings_usd={"QQQ": 5000}, targets={"QQQ": "0.5", "VXUS": "0.5"})
    idle = paper_portfolio(username="carol", holdings_usd={"SPY": 1000}, active=False)
    dispatched = []
    result = pipeline.daily_run(dispatch=lambda ids, day: dispatched.append((ids, day)))
    assert dispatched == [([first.pk, second.pk], AS_OF)] and idle.pk not in result.portfolio_ids
    settings.PIPELINE_BATCH_SIZE = 1
    dispatched.clear()
    pipeline.daily_run(dispatch=lambda ids, day: dispatched.append((ids, day)))
    assert dispatched == [([first.pk], AS_OF), ([second.pk], AS_OF)]
    day = PipelineDay.objects.get(trading_date=AS_OF)
    assert day.portfolios == 2 and day.fetch_log is not None
    assert sorted(day.fetch_log.symbols) == ["BND", "QQQ", "SPY", "VXUS"]


def test_a_propose_portfolio_is_planned_and_its_report_made_ready(prices, clock):
    clock.now = AFTER_CLOSE
    portfolio = paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000}, mode="propose")
    assert pipeline.portfolio_day(portfolio_id=portfolio.pk, trading_date=AS_OF) == pipeline.Outcome.PLANNED
    run = RebalanceRun.objects.get(portfolio=portfolio)
    assert run.status == Status.PLANNED and run.report_ready_at == AFTER_CLOSE
    assert PaperOrder.objects.count() == 0
    assert events_of(portfolio) == ["rebalancing_started", "rebalancing_completed"]


def test_an_auto_portfolio_planned_after_the_close_executes_at_the_next_open(prices, clock):
    clock.now = AFTER_CLOSE
    portfolio = paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000})
    assert pipeline.portfolio_day(portfolio_id=portfolio.pk, trading_date=AS_OF) == pipeline.Outcome.SCHEDULED
    run = RebalanceRun.objects.get(portfolio=portfolio)
    # Due at the next open, on the run itself: no schedule row per run.
    assert run.execute_after == NEXT_OPEN and run.report_ready_at == AFTER_CLOSE
    assert not Schedule.objects.exists()
    assert run.status == Status.PLANNED and PaperOrder.objects.count() == 0
    queued = []
    clock.now = NEXT_OPEN - timedelta(minutes=1)
    assert execution_queue.executions_dispatch(enqueue=queued.append) == [] and queued == []
    clock.now = NEXT_OPEN
    assert execution_queue.executions_dispatch(enqueue=queued.append) == [run.pk] and queued[-1] == [run.pk]
    run.refresh_from_db()
    assert run.execute_after == NEXT_OPEN + timedelta(minutes=30)  # due again only if the task dies
    assert execution_queue.executions_dispatch(enqueue=queued.append) == []
    assert tasks.execute_runs_task([run.pk]) == {pipeline.Outcome.EXECUTED: 1}
    run.refresh_from_db()
    assert run.status == Status.EXECUTED and PaperOrder.objects.count() == run.trades.count() == 2
    assert events_of(portfolio) == ["rebalancing_started", "rebalancing_completed"]
    # Executed: never due again.
    clock.now = NEXT_OPEN + timedelta(hours=1)
    assert execution_queue.executions_dispatch(enqueue=queued.append) == []


def test_due_executions_are_queued_in_batches_of_ids(prices, clock, settings, monkeypatch):
    clock.now = AFTER_CLOSE
    settings.EXECUTION_BATCH_RUNS = 2
    portfolios = [paper_portfolio(username=f"user{i}", holdings_usd={"SPY": 8000, "BND": 2000}) for i in range(3)]
    for portfolio in portfolios:
        assert pipeline.portfolio_day(portfolio_id=portfolio.pk, trading_date=AS_OF) == pipeline.Outcome.SCHEDULED
    runs = list(RebalanceRun.objects.filter(portfolio__in=portfolios).order_by("pk").values_list("pk", flat=True))
    queued = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda *args, **kwargs: queued.append(args))
    clock.now = NEXT_OPEN
    assert tasks.execute_due() is None
    assert queued == [
        ("portfolios.tasks.execute_runs_task", runs[:2]),
        ("portfolios.tasks.execute_runs_task", runs[2:]),
    ]
    for _, batch in queued:
        assert tasks.execute_runs_task(batch) == {pipeline.Outcome.EXECUTED: len(batch)}
    assert set(RebalanceRun.objects.filter(pk__in=runs).values_list("status", flat=True)) == {Status.EXECUTED}
    assert PaperOrder.objects.count() == 6


def test_a_run_that_raises_does_not_stop_its_batch(prices, clock, monkeypatch):
    clock.now = AFTER_CLOSE
    first = paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000})
    second = paper_portfolio(username="bob", holdings_usd={"SPY": 8000, "BND": 2000})
    for portfolio in (first, second):
        pipeline.portfolio_day(portfolio_id=portfolio.pk, trading_date=AS_OF)
    broken, fine = (RebalanceRun.objects.get(portfolio=p).pk for p in (first, second))
    real = pipeline.execute_planned_run

    def execute(run_id):
        if run_id == broken:
            raise RuntimeError("a bug in one run")
        return real(run_id)

    monkeypatch.setattr(execution_queue, "execute_planned_run", execute)
    clock.now = NEXT_OPEN
    with pytest.raises(execution_queue.ExecutionErrors, match=rf"1 of 2 run\(s\) raised an error: \[{broken}\]"):
        execution_queue.execute_runs([broken, fine])
    assert RebalanceRun.objects.get(pk=fine).status == Status.EXECUTED
    left = RebalanceRun.objects.get(pk=broken)
    assert left.status == Status.PLANNED and left.execute_after == NEXT_OPEN  # still due: tried again
    assert PaperOrder.objects.count() == 2


def test_a_batch_over_its_time_budget_queues_the_rest(prices, clock):
    clock.now = AFTER_CLOSE
    portfolios = [paper_portfolio(username=f"user{i}", holdings_usd={"SPY": 8000, "BND": 2000}) for i in range(3)]
    for portfolio in portfolios:
        pipeline.portfolio_day(portfolio_id=portfolio.pk, trading_date=AS_OF)
    runs = list(RebalanceRun.objects.filter(portfolio__in=portfolios).order_by("pk").values_list("pk", flat=True))
    clock.now = NEXT_OPEN
    ticks = iter([0.0, 10.0, 20.0])  # the batch starts, then each run starts 10 s after the one before
    queued = []
    outcomes = execution_queue.execute_runs(runs, budget_s=15, enqueue=queued.append, clock=lambda: next(ticks))
    assert outcomes == {pipeline.Outcome.EXECUTED: 2, "queued again": 1} and queued == [runs[2:]]
    statuses = dict(RebalanceRun.objects.filter(pk__in=runs).values_list("pk", "status"))
    assert statuses == {runs[0]: Status.EXECUTED, runs[1]: Status.EXECUTED, runs[2]: Status.PLANNED}


def test_a_run_left_waiting_for_its_orders_is_due_again_in_five_minutes(prices, clock):
    clock.now = AFTER_CLOSE
    portfolio = paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000}, order_type="limit", fractional_shares=False)
    pipeline.portfolio_day(portfolio_id=portfolio.pk, trading_date=AS_OF)
    run = RebalanceRun.objects.get(portfolio=portfolio)
    # The limits cannot fill: the price moved away from them after the plan.
    PriceBar.objects.filter(date=AS_OF).update(adj_close=F("adj_close") * 2, adj_close_f8=F("adj_close_f8") * 2)
    clock.now = NEXT_OPEN
    assert execution_queue.execute_runs([run.pk]) == {pipeline.Outcome.WAITING: 1}
    run.refresh_from_db()
    assert run.status == Status.EXECUTING and run.execute_after == NEXT_OPEN + timedelta(minutes=5)
    assert execution_queue.executions_dispatch(enqueue=lambda ids: None) == []
    clock.now = NEXT_OPEN + timedelta(minutes=5)
    assert execution_queue.executions_dispatch(enqueue=lambda ids: None) == [run.pk]


def test_the_execution_task_logs_with_the_run_portfolio_and_owner(prices, clock):
    clock.now = AFTER_CLOSE
    portfolio = paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000})
    assert pipeline.portfolio_day(portfolio_id=portfolio.pk, trading_date=AS_OF) == pipeline.Outcome.SCHEDULED
    run = RebalanceRun.objects.get(portfolio=portfolio)
    clock.now = NEXT_OPEN
    # The configured console handler (its JSON formatter and context filter), into a buffer.
    console = next(h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler))
    previous = console.setStream(buffer := io.StringIO())
    try:
        assert tasks.execute_run_task(run.pk) == pipeline.Outcome.EXECUTED
    finally:
        console.setStream(previous)
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    executed = next(line for line in lines if line["message"] == "run executed")
    bound = (executed["run_id"], executed["portfolio_id"], executed["user_id"])
    assert bound == (run.pk, portfolio.pk, portfolio.owner_id)
    done = next(line for line in lines if line["message"] == "execution task done")
    assert done["run_id"] == run.pk and done["outcome"] == pipeline.Outcome.EXECUTED


def test_an_auto_portfolio_on_an_always_open_paper_account_executes_in_the_same_day(prices, clock):
    clock.now = AFTER_CLOSE
    portfolio = paper_portfolio(
        holdings_usd={"SPY": 8000, "BND": 2000}, session_mode=PaperAccount.SessionMode.ALWAYS_OPEN
    )
    assert pipeline.portfolio_day(portfolio_id=portfolio.pk, trading_date=AS_OF) == pipeline.Outcome.EXECUTED
    # Again: nothing more happens, nothing is sent twice.
    assert pipeline.portfolio_day(portfolio_id=portfolio.pk, trading_date=AS_OF) == pipeline.Outcome.EXECUTED
    assert RebalanceRun.objects.filter(portfolio=portfolio).count() == 1 and PaperOrder.objects.count() == 2


class OneConnection(PaperBroker):
    """As IB with one client id: an adapter opened while another is still open is refused."""

    open_now = 0

    def __init__(self, config):
        if OneConnection.open_now:
            raise BrokerError("IB: client id 1 is already in use")
        super().__init__(config)
        OneConnection.open_now += 1

    def close(self):
        OneConnection.open_now -= 1


def test_the_days_adapter_is_let_go_before_an_execution_opens_its_own(prices, clock, settings, monkeypatch):
    monkeypatch.setattr(OneConnection, "open_now", 0)
    settings.BROKER_ADAPTERS = {**settings.BROKER_ADAPTERS, "paper": "portfolios.tests.test_pipeline.OneConnection"}
    clock.now = AFTER_CLOSE
    portfolio = paper_portfolio(
        holdings_usd={"SPY": 8000, "BND": 2000}, session_mode=PaperAccount.SessionMode.ALWAYS_OPEN
    )
    assert pipeline.portfolio_day(portfolio_id=portfolio.pk, trading_date=AS_OF) == pipeline.Outcome.EXECUTED
    assert PaperOrder.objects.count() == 2 and OneConnection.open_now == 0


def test_a_missing_price_fails_the_portfolio_closed_and_names_the_symbol(prices, clock):
    clock.now = AFTER_CLOSE
    portfolio = paper_portfolio(
        holdings_usd={"SPY": 8000, "BND": 2000}, session_mode=PaperAccount.SessionMode.ALWAYS_OPEN
    )
    portfolio.owner.email = "alice@example.com"
    portfolio.owner.save()
    PriceBar.objects.filter(instrument__symbol="BND", date=AS_OF).delete()
    assert pipeline.portfolio_day(portfolio_id=portfolio.pk, trading_date=AS_OF) == pipeline.Outcome.FAILED
    run = RebalanceRun.objects.get(portfolio=portfolio)
    assert run.status == Status.FAILED and run.error.startswith("no price on 2025-06-30 for BND")
    assert PaperOrder.objects.count() == 0
    assert events_of(portfolio) == ["rebalancing_started", "rebalancing_failed"]
    assert "BND" in mail.outbox[-1].body and mail.outbox[-1].to == ["alice@example.com"]


def test_a_broker_that_cannot_be_opened_fails_the_day_closed_with_its_reason(prices, clock):
    # An Alpaca account whose keys were never entered: no sync, no plan, the owner told why.
    clock.now = AFTER_CLOSE
    portfolio = paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000})
    BrokerAccount.objects.filter(pk=portfolio.broker_account_id).update(kind="alpaca")
    assert pipeline.portfolio_day(portfolio_id=portfolio.pk, trading_date=AS_OF) == pipeline.Outcome.FAILED
    run = RebalanceRun.objects.get(portfolio=portfolio)
    assert run.status == Status.FAILED and run.trades.count() == 0
    account = portfolio.broker_account_id
    assert run.error.startswith(f"cannot read positions from Paper alice: Alpaca account {account}: missing")
    assert events_of(portfolio) == ["rebalancing_started", "rebalancing_failed"]
    assert run.execute_after is None


def test_a_failed_day_is_planned_afresh_once_the_price_is_there(prices, clock):
    clock.now = AFTER_CLOSE
    portfolio = paper_portfolio(
        holdings_usd={"SPY": 8000, "BND": 2000}, session_mode=PaperAccount.SessionMode.ALWAYS_OPEN
    )
    bar = PriceBar.objects.get(instrument__symbol="BND", date=AS_OF)
    bar.delete()
    assert pipeline.portfolio_day(portfolio_id=portfolio.pk, trading_date=AS_OF) == pipeline.Outcome.FAILED
    failed = RebalanceRun.objects.get(portfolio=portfolio)
    bar.pk = None
    bar.save()
    assert pipeline.portfolio_day(portfolio_id=portfolio.pk, trading_date=AS_OF) == pipeline.Outcome.EXECUTED
    run = RebalanceRun.objects.get(portfolio=portfolio)  # the failed run replaced, not kept beside it
    assert run.pk != failed.pk and run.status == Status.EXECUTED and PaperOrder.objects.count() == 2


def test_a_provider_down_for_the_whole_fetch_fails_every_portfolio_closed(prices, clock, settings):
    clock.now = datetime(2025, 7, 1, 16, 30, tzinfo=NEW_YORK)  # 07-01 was never loaded
    settings.PRICE_PROVIDERS = ["csv"]
    settings.PRICE_PROVIDER_OPTIONS = {**settings.PRICE_PROVIDER_OPTIONS, "csv": {"path": "/nonexistent/prices"}}
    portfolio = paper_portfolio(
        holdings_usd={"SPY": 8000, "BND": 2000}, session_mode=PaperAccount.SessionMode.ALWAYS_OPEN
    )
    day = datetime(2025, 7, 1).date()
    result = pipeline.daily_run(dispatch=lambda ids, d: pipeline.portfolios_day(portfolio_ids=ids, trading_date=d))
    assert result.fetch_error.startswith("nothing could be fetched")
    run = RebalanceRun.objects.get(portfolio=portfolio, trading_date=day)
    assert run.status == Status.FAILED and "no price on 2025-07-01" in run.error
    assert PaperOrder.objects.count() == 0


@pytest.fixture
def drifting(prices, clock, settings):
    """A propose portfolio 35% off its targets after the close, its owner with an address; alerts from 15%."""
    clock.now = AFTER_CLOSE
    settings.DRIFT_ALERT_THRESHOLD = 0.15
    portfolio = paper_portfolio(holdings_usd={"SPY": 9500, "BND": 500}, mode="propose")
    portfolio.owner.email = "alice@example.com"
    portfolio.owner.save()
    return portfolio


def test_a_drift_above_the_alert_threshold_tells_the_owner(drifting, clock, settings):
    portfolio = drifting
    pipeline.portfolio_day(portfolio_id=portfolio.pk, trading_date=AS_OF)
    assert "drift_alert" in events_of(portfolio)
    assert tasks.drift_digest() == 0  # the owner's alerts may still be coming in
    clock.now = AFTER_CLOSE + timedelta(minutes=settings.DRIFT_DIGEST_QUIET_MINUTES)
    assert tasks.drift_digest() == 1
    assert [m.subject for m in mail.outbox] == ["Core has drifted 35.0% from its targets"]


def test_a_failing_event_receiver_does_not_stop_the_pipeline(prices, clock):
    clock.now = AFTER_CLOSE
    portfolio = paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000}, mode="propose")

    def broken(**kwargs):
        raise RuntimeError("receiver bug")

    events.rebalancing_started.connect(broken)
    try:
        assert pipeline.portfolio_day(portfolio_id=portfolio.pk, trading_date=AS_OF) == pipeline.Outcome.PLANNED
    finally:
        events.rebalancing_started.disconnect(broken)


def test_an_execution_left_by_a_dead_worker_is_queued_again(prices, clock):
    clock.now = AFTER_CLOSE
    portfolio = paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000})
    pipeline.portfolio_day(portfolio_id=portfolio.pk, trading_date=AS_OF)
    run = RebalanceRun.objects.get(portfolio=portfolio)
    RebalanceRun.objects.filter(pk=run.pk).update(
        status=Status.EXECUTING, execution_step="sells_sent", lease_owner="gone:1:x", lease_until=AFTER_CLOSE
    )
    clock.now = AFTER_CLOSE + timedelta(hours=1)
    assert pipeline.resume_interrupted() == [run.pk]
    assert RebalanceRun.objects.get(pk=run.pk).execute_after == clock.now  # due now: queued within a minute
    assert execution_queue.executions_dispatch(enqueue=lambda ids: None) == [run.pk]


def test_portfolios_never_reached_are_dispatched_again(prices, clock):
    clock.now = AFTER_CLOSE
    portfolio = paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000}, mode="propose")
    PipelineDay.objects.create(trading_date=AS_OF, started_at=AFTER_CLOSE)
    clock.now = AFTER_CLOSE + timedelta(minutes=45)
    again = []
    pipeline.resume_interrupted(dispatch=lambda ids, day: again.append((ids, day)))
    assert again == [([portfolio.pk], AS_OF)]


def test_schedules_are_declared_once_whatever_the_number_of_calls(settings):
    settings.EXECUTION_TIME = datetime(2025, 1, 1, 16, 30).time()
    first = dict(schedules_setup())
    Schedule.objects.create(name="daily-run", func="portfolios.tasks.daily_run", schedule_type=Schedule.DAILY)
    second = dict(schedules_setup())
    assert set(first.values()) == {"created"} and second["daily-run"] in ("updated", "unchanged")
    assert Schedule.objects.filter(name="daily-run").count() == 1 and Schedule.objects.count() == 7
    daily = Schedule.objects.get(name="daily-run")
    assert daily.cron == "30 16 * * 1-5" and daily.schedule_type == Schedule.CRON
    assert Schedule.objects.get(name="cluster-heartbeat").minutes == 1
    assert Schedule.objects.get(name="execute-due").minutes == 1
    assert Schedule.objects.get(name="drift-digest").minutes == 5
    assert Schedule.objects.get(name="prune-task-history").cron == "0 3 * * *"  # an hour after the refresh
    out = io.StringIO()
    call_command("setup_schedules", stdout=out)
    assert "daily-run" in out.getvalue() and "unchanged" in out.getvalue()


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        # Spring forward (2025-03-09): 16:30 local is 21:30 UTC before and 20:30 UTC after.
        (datetime(2025, 3, 7, 17, 0, tzinfo=NEW_YORK), datetime(2025, 3, 10, 16, 30, tzinfo=NEW_YORK)),
        (datetime(2025, 3, 6, 17, 0, tzinfo=NEW_YORK), datetime(2025, 3, 7, 16, 30, tzinfo=NEW_YORK)),
        # Fall back (2025-11-02).
        (datetime(2025, 10, 31, 17, 0, tzinfo=NEW_YORK), datetime(2025, 11, 3, 16, 30, tzinfo=NEW_YORK)),
    ],
)
def test_the_daily_run_stays_at_1630_local_across_daylight_saving_changes(clock, after, expected):
    # django-q2 computes the next run of a cron schedule in its time zone (TIMEZONE).
    clock.now = after
    schedule = Schedule(func="portfolios.tasks.daily_run", schedule_type=Schedule.CRON, cron="30 16 * * 1-5")
    nxt = schedule.calculate_next_run()
    assert nxt == expected and nxt.astimezone(NEW_YORK).hour == 16


def test_run_pipeline_runs_the_day_inline(prices, clock):
    clock.now = AFTER_CLOSE
    paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000}, session_mode=PaperAccount.SessionMode.ALWAYS_OPEN)
    paper_portfolio(username="bob", holdings_usd={"SPY": 6000, "BND": 4000}, mode="propose")
    out = io.StringIO()
    call_command("run_pipeline", "--date", "2025-06-30", stdout=out, verbosity=0)
    text = out.getvalue()
    assert "Daily run of 2025-06-30: 2 portfolio(s)" in text
    assert "executed" in text and ("planned" in text or "no_action" in text)
    assert RebalanceRun.objects.filter(trading_date=AS_OF).count() == 2
    assert Decimal(0) < PaperOrder.objects.count()


def test_the_daily_run_schedule_can_be_handed_to_a_cronjob(settings):
    schedules_setup()
    settings.SCHEDULE_DAILY_RUN = False
    assert ("daily-run", "removed") in schedules_setup()
    assert not Schedule.objects.filter(name="daily-run").exists() and Schedule.objects.count() == 6
    heartbeat = Schedule.objects.get(name="cluster-heartbeat")
    assert heartbeat.kwargs == "{'q_options': {'save': False}}"  # kept out of the task history


def test_lock_keys_are_distinct_for_every_portfolio_and_day():
    from portfolios.services.locks import lock_key

    days = [AS_OF + timedelta(days=n) for n in range(400)]
    keys = {lock_key(pid, day) for pid in (1, 2, 3, 4, 5, 6, 7, 255, 2**31 - 1) for day in days}
    assert len(keys) == 9 * 400 and all(0 < key < 2**63 for key in keys)


def test_holding_one_portfolios_lock_does_not_block_another():

    from portfolios.services.locks import portfolio_day_lock

    with portfolio_day_lock(1, AS_OF) as first:
        assert first
        others = []
        for pid in range(2, 40):
            with portfolio_day_lock(pid, AS_OF) as mine:
                others.append(mine)
        assert all(others)
        if connection.vendor == "postgresql":
            # The same key from a second connection is refused while the first holds it.
            import psycopg

            settings_dict = connection.settings_dict
            with psycopg.connect(
                host=settings_dict["HOST"] or "127.0.0.1",
                port=settings_dict["PORT"] or 5432,
                user=settings_dict["USER"],
                dbname=settings_dict["NAME"],
                autocommit=True,
            ) as other:
                from portfolios.services.locks import lock_key

                held = other.execute("SELECT pg_try_advisory_lock(%s)", [lock_key(1, AS_OF)]).fetchone()[0]
                free = other.execute("SELECT pg_try_advisory_lock(%s)", [lock_key(2, AS_OF)]).fetchone()[0]
                assert (held, free) == (False, True)


def _broker_now_holds(portfolio, holdings_usd: dict[str, int]) -> None:
    """The owner traded at the broker outside the project: the day's sync will read this."""
    paper_account_reset(
        account=portfolio.broker_account,
        cash_usd=Decimal(0),
        positions={s: (shares_worth(Decimal(usd), s), close(s)) for s, usd in holdings_usd.items()},
    )


def test_the_daily_run_replans_a_stored_plan_whose_inputs_changed(drifting):
    portfolio = drifting
    assert pipeline.portfolio_day(portfolio_id=portfolio.pk, trading_date=AS_OF) == pipeline.Outcome.PLANNED
    first = RebalanceRun.objects.get(portfolio=portfolio)
    _broker_now_holds(portfolio, {"SPY": 2000, "BND": 8000})

    assert pipeline.portfolio_day(portfolio_id=portfolio.pk, trading_date=AS_OF) == pipeline.Outcome.PLANNED

    first.refresh_from_db()
    second = RebalanceRun.objects.active().get(portfolio=portfolio, trading_date=AS_OF)
    assert second.pk != first.pk and first.superseded_by_id == second.pk
    # The new plan is made from what the broker holds now: it buys SPY and sells BND.
    assert {t.instrument.symbol: t.side for t in second.trades.select_related("instrument")} == {
        "SPY": "buy",
        "BND": "sell",
    }
    assert events_of(portfolio).count("drift_alert") == 2  # one per plan: each one drifted


def test_the_daily_run_answers_the_stored_plan_again_when_nothing_changed(drifting):
    portfolio = drifting
    pipeline.portfolio_day(portfolio_id=portfolio.pk, trading_date=AS_OF)
    assert pipeline.portfolio_day(portfolio_id=portfolio.pk, trading_date=AS_OF) == pipeline.Outcome.PLANNED
    assert RebalanceRun.objects.filter(portfolio=portfolio).count() == 1
    assert events_of(portfolio).count("drift_alert") == 1


def test_an_auto_plan_due_at_the_open_is_replaced_by_the_plan_of_changed_targets(prices, clock):
    clock.now = AFTER_CLOSE
    portfolio = paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000})
    assert pipeline.portfolio_day(portfolio_id=portfolio.pk, trading_date=AS_OF) == pipeline.Outcome.SCHEDULED
    first = RebalanceRun.objects.get(portfolio=portfolio)
    portfolio.manual_targets = {"SPY": "0.3", "BND": "0.7"}
    portfolio.save()

    assert pipeline.portfolio_day(portfolio_id=portfolio.pk, trading_date=AS_OF) == pipeline.Outcome.SCHEDULED

    second = RebalanceRun.objects.active().get(portfolio=portfolio, trading_date=AS_OF)
    assert second.pk != first.pk and second.execute_after == NEXT_OPEN
    clock.now = NEXT_OPEN
    queued = []
    assert execution_queue.executions_dispatch(enqueue=queued.append) == [second.pk]
    assert tasks.execute_runs_task([second.pk]) == {pipeline.Outcome.EXECUTED: 1}
    # Only the new plan traded: SPY sold down to 30%, BND bought.
    assert sorted(PaperOrder.objects.values_list("symbol", "side")) == [("BND", "buy"), ("SPY", "sell")]
    assert not first.orders.exists()


def test_the_daily_run_never_replans_a_run_whose_execution_began(prices, clock):
    clock.now = AFTER_CLOSE
    portfolio = paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000}, mode="propose")
    pipeline.portfolio_day(portfolio_id=portfolio.pk, trading_date=AS_OF)
    run = RebalanceRun.objects.get(portfolio=portfolio)
    lease_claim(run, new_owner())  # an executor holds it
    portfolio.manual_targets = {"SPY": "0.3", "BND": "0.7"}
    portfolio.save()

    pipeline.portfolio_day(portfolio_id=portfolio.pk, trading_date=AS_OF)

    assert list(RebalanceRun.objects.values_list("pk", "superseded_at")) == [(run.pk, None)]
