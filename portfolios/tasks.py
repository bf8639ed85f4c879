"""Task-queue entry points (django-q2): ids in, one service call, logging. No logic here."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import date

from ground.logcontext import log_context
from portfolios.services import execution_queue, pipeline
from portfolios.services.drift_digest import drift_digests_send

logger = logging.getLogger(__name__)


def daily_run(trading_date: str | None = None) -> None:
    """The schedule at EXECUTION_TIME: fetch once, then one task per batch of active portfolios."""
    pipeline.daily_run(trading_date=date.fromisoformat(trading_date) if trading_date else None)


def run_portfolios_day(portfolio_ids: list[int], trading_date: str) -> dict[str, int]:
    """A batch of the daily run: the portfolios' day, planned together; the outcomes counted."""
    outcomes = pipeline.portfolios_day(portfolio_ids=portfolio_ids, trading_date=date.fromisoformat(trading_date))
    counted = dict(Counter(outcomes.values()))
    logger.info("portfolios day done", extra={"trading_date": trading_date, "outcomes": counted})
    return counted


def run_portfolio_day(portfolio_id: int, trading_date: str) -> str:
    with log_context(portfolio_id=portfolio_id):
        outcome = pipeline.portfolio_day(portfolio_id=portfolio_id, trading_date=date.fromisoformat(trading_date))
        logger.info("portfolio day done", extra={"trading_date": trading_date, "outcome": outcome})
        return outcome


def execute_due() -> None:
    """Once a minute: queue the executions that are due (the next open's, retries)."""
    execution_queue.executions_dispatch()


def execute_runs_task(run_ids: list[int]) -> dict[str, int]:
    """A batch of due executions, one after the other."""
    outcomes = execution_queue.execute_runs(run_ids)
    logger.info("execution batch done", extra={"outcomes": outcomes})
    return outcomes


def execute_run_task(run_id: int) -> str:
    # The execution reads the run itself, fresh, and binds its portfolio and owner to the logs.
    with log_context(run_id=run_id):
        outcome = pipeline.execute_planned_run(run_id)
        logger.info("execution task done", extra={"outcome": outcome})
        return outcome


def resume_interrupted() -> None:
    pipeline.resume_interrupted()


def data_refresh() -> None:
    """The nightly market-data refresh for every active portfolio's symbols."""
    pipeline.data_refresh()


def drift_digest() -> int:
    """The drift digests due now (the number of owners told)."""
    return drift_digests_send()
