"""The daily pipeline: one fetch for every portfolio's symbols, then each portfolio's day.

`daily_run` (the schedule at EXECUTION_TIME on weekdays) picks the trading date (today's session,
once it has closed: early closes included; no run on holidays), fetches prices once for the
union of the active portfolios' symbols, and dispatches one `portfolios_day` per batch of
`PIPELINE_BATCH_SIZE` portfolios (ids only). `portfolios_day` does, for each portfolio and date,
under a lock (the batch planned together, set-wise):

    sync from the broker -> targets -> plan (the stored run) -> execute (auto mode, triggers fired)
    -> report ready

Each step stores its result, so calling it again resumes where it stopped: a stored plan is
answered again when its inputs (holdings and cash as synced, targets, settings) are the same, and
superseded by a new plan when they changed and its execution has not begun; an execution in
progress is resumed. A portfolio whose prices are missing or
stale on the date fails closed (a failed run naming the symbols, nothing traded). When the market
is closed at planning time (the usual case after the close) the execution of an `auto` plan is
made due at the next open (`RebalanceRun.execute_after`), when the execute-due schedule queues it
(`portfolios.services.execution_queue`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from brokers.base import BrokerError, Clock
from brokers.services.accounts import accounts_clocks
from ground import metrics
from ground.logcontext import log_context
from marketdata import calendar
from marketdata.services import NothingFetched, prices_fetch
from portfolios import events
from portfolios.models import HoldingsSync, PipelineDay, Portfolio, RebalanceRun
from portfolios.services.execution import ExecutionBusy, ExecutionRefused, execute_run
from portfolios.services.locks import portfolio_day_locks
from portfolios.services.rebalancing import RunExecuting, plan_revisable, rebalance_runs_create
from portfolios.services.sync import SyncError, syncs_from_brokers
from portfolios.subscribers import audit_entries_together

logger = logging.getLogger(__name__)
Status = RebalanceRun.Status


class Outcome(models.TextChoices):
    """What `portfolio_day` or an execution did with a portfolio's day."""

    PLANNED = "planned"
    EXECUTED = "executed"
    SCHEDULED = "execution_scheduled"
    NO_ACTION = "no_action"
    FAILED = "failed"
    BUSY = "busy"
    WAITING = "waiting"


@dataclass
class DayResult:
    """What `daily_run` did (None when there was no run: a holiday, or before the close)."""

    trading_date: date
    portfolio_ids: list[int] = field(default_factory=list)
    fetch_error: str = ""
    seconds: dict[str, float] = field(default_factory=dict)


def daily_trading_date(now: datetime) -> date | None:
    """Today's NYSE session once it has closed (early closes included), else None."""
    today = timezone.localtime(now, calendar.nyse().tz).date()
    if not calendar.is_session(today) or now < calendar.session_close(today):
        return None
    return today


def active_portfolio_ids() -> list[int]:
    return list(Portfolio.objects.filter(active=True).order_by("pk").values_list("pk", flat=True))


def portfolio_symbols(portfolio_ids: Iterable[int] | None = None) -> list[str]:
    """The union of the portfolios' universes and holdings (the active ones by default)."""
    portfolios = (
        Portfolio.objects.filter(active=True)
        if portfolio_ids is None
        else Portfolio.objects.filter(pk__in=list(portfolio_ids))
    )
    universe = portfolios.values_list("instruments__symbol", flat=True)
    held = portfolios.values_list("holdings__instrument__symbol", flat=True)
    return sorted({s for s in (*universe, *held) if s})


def enqueue_portfolios_day(portfolio_ids: list[int], trading_date: date) -> None:
    """One queued task per batch of portfolios and day (ids only). A success is not kept in the
    task history (the day's run rows are its record; a failure is kept)."""
    from django_q.tasks import async_task

    async_task(
        "portfolios.tasks.run_portfolios_day",
        portfolio_ids,
        trading_date.isoformat(),
        task_name=f"portfolios-{portfolio_ids[0]}-{len(portfolio_ids)}-{trading_date}",
        group=f"daily-{trading_date}",
        save=False,
    )


def in_batches(portfolio_ids: list[int]) -> Iterator[list[int]]:
    """``portfolio_ids`` cut into batches of `PIPELINE_BATCH_SIZE`."""
    size = settings.PIPELINE_BATCH_SIZE
    for start in range(0, len(portfolio_ids), size):
        yield portfolio_ids[start : start + size]


def daily_run(
    *,
    trading_date: date | None = None,
    portfolio_ids: list[int] | None = None,
    now: datetime | None = None,
    dispatch: Callable[[list[int], date], object] = enqueue_portfolios_day,
) -> DayResult | None:
    """Fetch prices once for every portfolio's symbols, then dispatch the portfolios' day in batches.

    Without ``trading_date``: today's session once closed; None (and nothing done) on a holiday;
    before today's close the run is deferred to the close (a one-off schedule).
    """
    now = now or timezone.now()
    if trading_date is None:
        trading_date = daily_trading_date(now)
        if trading_date is None:
            _defer_or_skip(now)
            return None
    ids = portfolio_ids if portfolio_ids is not None else active_portfolio_ids()
    result = DayResult(trading_date=trading_date, portfolio_ids=ids)
    day, _ = PipelineDay.objects.get_or_create(trading_date=trading_date, defaults={"started_at": now})
    started = time.perf_counter()
    # All active portfolios are named by the query, not by their ids: one statement carries at most
    # 65,535 parameters.
    symbols = portfolio_symbols(portfolio_ids)
    if symbols:
        try:
            day.fetch_log = prices_fetch(symbols=symbols, end=trading_date)
        except NothingFetched as error:
            # Every portfolio then fails closed on its own missing prices, naming them.
            result.fetch_error = day.fetch_error = str(error)
            logger.error("daily fetch got nothing", extra={"trading_date": str(trading_date), "error": str(error)})
    result.seconds["fetch"] = round(time.perf_counter() - started, 3)
    metrics.observe_step("fetch", result.seconds["fetch"])
    started = time.perf_counter()
    for batch in in_batches(ids):
        dispatch(batch, trading_date)
    result.seconds["dispatch"] = round(time.perf_counter() - started, 3)
    day.portfolios = len(ids)
    day.timings = {**day.timings, **result.seconds}
    day.save()
    logger.info(
        "daily run dispatched",
        extra={"trading_date": str(trading_date), "portfolios": len(ids), "symbols": len(symbols), **result.seconds},
    )
    return result


def _defer_or_skip(now: datetime) -> None:
    today = timezone.localtime(now, calendar.nyse().tz).date()
    if not calendar.is_session(today):
        logger.info("no NYSE session today: no daily run", extra={"date": str(today)})
        return
    close = calendar.session_close(today)
    run_at = close + timedelta(minutes=1)
    _schedule_once(f"daily-run-after-close-{today}", "portfolios.tasks.daily_run", run_at)
    logger.info("daily run deferred to after the close", extra={"date": str(today), "run_at": run_at.isoformat()})


def _schedule_once(name: str, func: str, when: datetime) -> None:
    """A one-off django-q2 schedule, declared once by name."""
    from django_q.models import Schedule

    fields = {"func": func, "args": None, "schedule_type": Schedule.ONCE, "repeats": -1, "next_run": when}
    # Names are not unique in django-q2; one writer per name holds here (the scheduler's row lock
    # on the daily run that defers itself).
    if not Schedule.objects.filter(name=name).update(**fields):
        Schedule.objects.create(name=name, **fields)


def portfolio_day(*, portfolio_id: int, trading_date: date, execute: bool = True) -> Outcome:
    """One portfolio's day (see the module docstring): `portfolios_day` of one."""
    return portfolios_day(portfolio_ids=[portfolio_id], trading_date=trading_date, execute=execute)[portfolio_id]


def portfolios_day(*, portfolio_ids: list[int], trading_date: date, execute: bool = True) -> dict[int, Outcome]:
    """A batch of portfolios' day, each one's outcome by id: every portfolio syncs, then the batch
    is planned together (set-wise reads, one transaction for its runs), then each run is executed,
    scheduled or finished. A portfolio whose day another process holds is `BUSY`."""
    with portfolio_day_locks(portfolio_ids, trading_date) as held:
        outcomes = {portfolio_id: Outcome.BUSY for portfolio_id in portfolio_ids if portfolio_id not in held}
        if outcomes:
            logger.info("portfolio days already in progress elsewhere", extra={"portfolio_ids": sorted(outcomes)})
        # The owners come along: a drift alert or a failure mails them.
        portfolios = Portfolio.objects.select_related("broker_account", "owner").filter(pk__in=held).order_by("pk")
        portfolios = list(portfolios)
        runs = RebalanceRun.objects.active().filter(portfolio_id__in=held, trading_date=trading_date)
        stored = {run.portfolio_id: run for run in runs}
        # A stored plan whose execution has not begun is checked against today's inputs (synced
        # first) and superseded when they changed; one whose execution began stands.
        planned = _plan([p for p in portfolios if _replanned(stored.get(p.pk))], trading_date)
        runs = {p.pk: planned[p.pk] if p.pk in planned else stored[p.pk] for p in portfolios}
        outcomes.update(_days_ended(portfolios, runs, execute=execute))
    return outcomes


def _days_ended(
    portfolios: list[Portfolio], runs: dict[int, RebalanceRun | None], *, execute: bool
) -> dict[int, Outcome]:
    """Each planned portfolio's day to its end, by id: the runs due for execution ask their
    brokers' clocks together; those whose market is closed are made due at the next open and
    finished with the batch's others (one write); the rest are executed, one after the other."""
    outcomes: dict[int, Outcome] = {}
    finished, due = [], []
    for portfolio in portfolios:
        run = runs[portfolio.pk]
        with log_context(portfolio_id=portfolio.pk, user_id=portfolio.owner_id):
            decided = Outcome.FAILED if run is None else _day_decided(portfolio, run, execute=execute)
        _sort(portfolio, decided, finished=finished, onward=due, outcomes=outcomes)
    clocks = accounts_clocks([portfolio.broker_account for portfolio in due])
    executing = []
    for portfolio in due:
        run = runs[portfolio.pk]
        with log_context(portfolio_id=portfolio.pk, user_id=portfolio.owner_id, run_id=run.pk):
            decided = _execution_due(portfolio, run, clocks[portfolio.broker_account_id])
        _sort(portfolio, decided, finished=finished, onward=executing, outcomes=outcomes)
    outcomes.update(_finished(finished))
    for portfolio in executing:
        run = runs[portfolio.pk]
        with log_context(portfolio_id=portfolio.pk, user_id=portfolio.owner_id, run_id=run.pk):
            outcomes[portfolio.pk] = execute_planned_run(run.pk)
    return outcomes


def _sort(
    portfolio: Portfolio,
    decided: Outcome | _Finish | _Execute,
    *,
    finished: list[_Finish],
    onward: list[Portfolio],
    outcomes: dict[int, Outcome],
) -> None:
    """File a decision: a run to finish, a portfolio to take onward (its run to execute), or an outcome."""
    if isinstance(decided, _Finish):
        finished.append(decided)
    elif isinstance(decided, _Execute):
        onward.append(portfolio)
    else:
        outcomes[portfolio.pk] = decided


def _replanned(run: RebalanceRun | None) -> bool:
    return run is None or run.status == Status.FAILED or plan_revisable(run)


@dataclass
class _Execute:
    """A run to execute now (its broker's market is open)."""

    run: RebalanceRun


@dataclass
class _Finish:
    """A run whose day ends now: its outcome, whether to tell the event bus it completed, and
    when its execution is due (None: not scheduled)."""

    portfolio: Portfolio
    run: RebalanceRun
    outcome: Outcome
    completed: bool = True
    execute_after: datetime | None = None


def _day_decided(portfolio: Portfolio, run: RebalanceRun, *, execute: bool) -> Outcome | _Finish | _Execute:
    """What ``run``'s day comes to: an outcome, a `_Finish` (stored with the batch's others), or
    an `_Execute` (now)."""
    if run.status == Status.NO_ACTION:
        return _Finish(portfolio, run, Outcome.NO_ACTION)
    auto = portfolio.mode == Portfolio.Mode.AUTO and portfolio.broker_account_id is not None
    fired = any(trigger != "manual" for trigger in run.triggers_fired)
    if run.status == Status.PLANNED and not (execute and auto and fired):
        return _Finish(portfolio, run, Outcome.PLANNED)
    if run.status in (Status.EXECUTED, Status.EXECUTION_FAILED):
        return _Finish(portfolio, run, Outcome.EXECUTED if run.status == Status.EXECUTED else Outcome.FAILED)
    if not execute:
        return Outcome.PLANNED
    return _Execute(run)  # now or at the next open, as the broker's clock says


def _plan(portfolios: list[Portfolio], trading_date: date) -> dict[int, RebalanceRun | None]:
    """Sync each portfolio, then plan and store the batch's runs (or answer the stored ones whose
    inputs are the same); by portfolio id, None where the day failed (stored and sent)."""
    results: dict[int, RebalanceRun | None] = {}
    with audit_entries_together():
        for portfolio in portfolios:
            with log_context(portfolio_id=portfolio.pk, user_id=portfolio.owner_id):
                events.emit(events.rebalancing_started, portfolio=portfolio, trading_date=trading_date)
    synced = [portfolio for portfolio in portfolios if portfolio.broker_account_id is None]
    for portfolio, sync in _synced([p for p in portfolios if p.broker_account_id is not None]):
        if isinstance(sync, SyncError):
            with log_context(portfolio_id=portfolio.pk, user_id=portfolio.owner_id):
                results[portfolio.pk] = _failed(portfolio, trading_date, sync)
        else:
            synced.append(portfolio)
    answers = rebalance_runs_create(synced, as_of=trading_date) if synced else {}
    with audit_entries_together():  # the drift alerts and failures of the batch
        for portfolio in synced:
            answer = answers[portfolio.pk]
            with log_context(portfolio_id=portfolio.pk, user_id=portfolio.owner_id):
                if isinstance(answer, RunExecuting):  # an execution took the stored plan up meanwhile: it stands
                    answer.run.refresh_from_db()
                    results[portfolio.pk] = answer.run
                elif isinstance(answer, Exception):
                    results[portfolio.pk] = _failed(portfolio, trading_date, answer)
                else:
                    if not answer.existing:
                        for step, seconds in answer.run.timings.items():
                            metrics.observe_step(step, seconds)
                        _drift_alert(portfolio, answer.run)
                    results[portfolio.pk] = answer.run
    return results


def _synced(portfolios: list[Portfolio]) -> list[tuple[Portfolio, HoldingsSync | SyncError]]:
    """Holdings and cash from each portfolio's broker account, read and stored together."""
    if not portfolios:
        return []
    started = time.perf_counter()
    syncs = syncs_from_brokers(portfolios)
    share = (time.perf_counter() - started) / len(portfolios)
    for _ in portfolios:
        metrics.observe_step("sync", share)
    return [(portfolio, syncs[portfolio.pk]) for portfolio in portfolios]


def _failed(portfolio: Portfolio, trading_date: date, error: Exception) -> None:
    """Record and send a failed day: the planning stored its failed run; a failed sync stores one."""
    run = RebalanceRun.objects.active().filter(portfolio=portfolio, trading_date=trading_date).first()
    if run is None:
        run = _store_failed(portfolio, trading_date, str(error))
    metrics.run_finished(success=False)
    events.emit(events.rebalancing_failed, portfolio=portfolio, trading_date=trading_date, run=run, reason=str(error))
    logger.warning("portfolio day failed", extra={"trading_date": str(trading_date), "error": str(error)})


def _store_failed(portfolio: Portfolio, trading_date: date, message: str) -> RebalanceRun | None:
    try:
        with transaction.atomic():
            return RebalanceRun.objects.create(
                portfolio=portfolio,
                trading_date=trading_date,
                status=Status.FAILED,
                error=message,
                trigger="sync from the broker failed",
            )
    except IntegrityError:
        return RebalanceRun.objects.active().filter(portfolio=portfolio, trading_date=trading_date).first()


def _drift_alert(portfolio: Portfolio, run: RebalanceRun) -> None:
    threshold = Decimal(str(settings.DRIFT_ALERT_THRESHOLD))
    if run.drift_before is not None and run.drift_before >= threshold:
        events.emit(events.drift_alert, portfolio=portfolio, run=run, drift=run.drift_before, threshold=threshold)


def _execution_due(portfolio: Portfolio, run: RebalanceRun, clock: Clock | BrokerError) -> Outcome | _Finish | _Execute:
    """Execute now when the broker's market is open, else make it due at the next open."""
    if isinstance(clock, BrokerError):
        # Cannot tell: try again in a while rather than fail the day.
        when = timezone.now() + timedelta(minutes=15)
        _execute_after(run, when)
        logger.warning("broker unreachable; execution rescheduled", extra={"error": str(clock), "at": when.isoformat()})
        return Outcome.SCHEDULED
    if not clock.is_open and run.status == Status.PLANNED:
        when = clock.next_open + timedelta(minutes=settings.EXECUTE_AFTER_OPEN_MINUTES)
        logger.info("execution scheduled for the next open", extra={"at": when.isoformat()})
        return _Finish(portfolio, run, Outcome.SCHEDULED, completed=False, execute_after=when)
    return _Execute(run)


def _execute_after(run: RebalanceRun, when: datetime) -> None:
    """Make ``run``'s execution due at ``when`` (the execute-due schedule queues it then)."""
    run.execute_after = when
    RebalanceRun.objects.filter(pk=run.pk).update(execute_after=when)


def execute_planned_run(run_id: int) -> Outcome:
    """Execute (or resume) a stored run; a run left waiting is due again in five minutes."""
    started = time.perf_counter()
    try:
        result = execute_run(run=RebalanceRun(pk=run_id), submit=True)  # it reads the run itself
    except ExecutionBusy:
        return Outcome.BUSY
    except ExecutionRefused as error:
        logger.warning("execution refused", extra={"run_id": run_id, "error": str(error)})
        return Outcome.FAILED
    metrics.observe_step("execute", time.perf_counter() - started)
    run = result.run
    if result.waiting:
        _execute_after(run, timezone.now() + timedelta(minutes=5))
        return Outcome.WAITING
    outcome = Outcome.EXECUTED if run.status == Status.EXECUTED else Outcome.FAILED
    return _finish(run.portfolio, run, outcome, completed=False)


def _finish(portfolio: Portfolio, run: RebalanceRun, outcome: Outcome, *, completed: bool = True) -> Outcome:
    return _finished([_Finish(portfolio, run, outcome, completed=completed)])[portfolio.pk]


def _finished(finishes: list[_Finish]) -> dict[int, Outcome]:
    """Mark the runs' reports ready (and their executions due at ``execute_after``) in one
    statement; tell the event bus of those completed, its audit entries stored together. Each
    outcome by portfolio id."""
    now = timezone.now()
    changed = []
    for finish in finishes:
        run = finish.run
        if finish.execute_after is not None or run.report_ready_at is None:
            run.execute_after = finish.execute_after or run.execute_after
            run.report_ready_at = run.report_ready_at or now
            run.updated_at = now
            changed.append(run)
    RebalanceRun.objects.bulk_update(changed, ["execute_after", "report_ready_at", "updated_at"])
    with audit_entries_together():
        for finish in finishes:
            if finish.completed:
                with log_context(portfolio_id=finish.portfolio.pk, run_id=finish.run.pk):
                    events.emit(events.rebalancing_completed, portfolio=finish.portfolio, run=finish.run)
    for finish in finishes:
        metrics.run_finished(success=finish.outcome not in (Outcome.FAILED,))
    return {finish.portfolio.pk: finish.outcome for finish in finishes}


def resume_interrupted(*, now: datetime | None = None, dispatch=enqueue_portfolios_day) -> list[int]:
    """Find work a dead worker left behind and queue it again; the run ids resumed.

    Runs being executed whose lease has run out are made due now (the execute-due schedule
    queues them within a minute); active portfolios without a run for the latest daily run
    (started over 30 minutes ago) get their day queued again. Duplicates are harmless: the day's
    lock, the one run per day and the execution lease keep it single.
    """
    now = now or timezone.now()
    stale = RebalanceRun.objects.filter(status=Status.EXECUTING).exclude(lease_until__gt=now)
    resumed = list(stale.values_list("pk", flat=True))
    RebalanceRun.objects.filter(pk__in=resumed).update(execute_after=now)
    day = PipelineDay.objects.filter(started_at__lt=now - timedelta(minutes=30)).order_by("-trading_date").first()
    if day is not None:
        planned = RebalanceRun.objects.filter(trading_date=day.trading_date).values_list("portfolio_id", flat=True)
        missing = Portfolio.objects.filter(active=True).exclude(pk__in=planned).order_by("pk")
        for batch in in_batches(list(missing.values_list("pk", flat=True))):
            dispatch(batch, day.trading_date)
    if resumed:
        logger.warning("interrupted executions resumed", extra={"runs": resumed})
    return resumed


def data_refresh() -> None:
    """Fetch what is missing for the active portfolios' symbols (and TICKERS), incrementally."""
    symbols = sorted(set(portfolio_symbols()) | set(settings.TICKERS))
    try:
        prices_fetch(symbols=symbols)
    except NothingFetched as error:
        logger.error("nightly refresh got nothing", extra={"error": str(error)})
