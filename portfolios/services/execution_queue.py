"""Executions queued when they are due: at the next open, or again after waiting.

A plan made while the market is closed is not executed then: its run is made due at the next
open (`RebalanceRun.execute_after`, written with the run's report-ready mark). The execute-due
schedule (every minute) queues every due run, `EXECUTION_BATCH_RUNS` ids per task, and moves its
due time `EXECUTION_REDISPATCH_MINUTES` ahead in the same transaction: should the task that took
it die before executing it, the run is due again then (its lease and its stored steps keep a
second execution from sending anything twice). A run that is executed or stopped is no longer
due; one left waiting for its orders is due again five minutes later.

One schedule row instead of one per run: 10,000 plans after the close no longer write 10,000
one-off schedules, which django-q2's scheduler would then turn into tasks one by one in a single
transaction at the open; and a task executes a batch of runs, so the queue's own work (a task
taken, its result saved, its message acknowledged) is paid once per batch.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ground.logcontext import log_context
from portfolios.models import RebalanceRun
from portfolios.services.pipeline import execute_planned_run

logger = logging.getLogger(__name__)
Status = RebalanceRun.Status
#: Runs whose `execute_after` makes them due (the partial index covers exactly these).
DUE_STATUSES = (Status.PLANNED, Status.EXECUTING)
#: Rows written per UPDATE when due times are moved (a statement's parameters are limited).
_UPDATE_CHUNK = 5_000


class ExecutionErrors(Exception):
    """Runs of a batch raised an error (each logged with its traceback); the others went on."""


def enqueue_executions(run_ids: Sequence[int]) -> None:
    """Queue the runs' executions (ids only), `EXECUTION_BATCH_RUNS` per task."""
    from django_q.tasks import async_task

    size = settings.EXECUTION_BATCH_RUNS
    for start in range(0, len(run_ids), size):
        batch = list(run_ids[start : start + size])
        async_task("portfolios.tasks.execute_runs_task", batch, task_name=f"execute-runs-{batch[0]}-{len(batch)}")


def executions_dispatch(
    *, now: datetime | None = None, enqueue: Callable[[Sequence[int]], None] = enqueue_executions
) -> list[int]:
    """Queue every run whose execution is due at ``now``; the run ids queued, by due time.

    Rows another dispatcher holds are skipped (PostgreSQL's SKIP LOCKED): two clusters never
    queue a run twice. The due times move ahead in the transaction that queues the tasks (the
    ORM broker's queue is in the same database: both are stored, or neither)."""
    now = now or timezone.now()
    again_at = now + timedelta(minutes=settings.EXECUTION_REDISPATCH_MINUTES)
    with transaction.atomic():
        due = list(
            RebalanceRun.objects.active()
            .select_for_update(skip_locked=True)
            .filter(status__in=DUE_STATUSES, execute_after__isnull=False, execute_after__lte=now)
            .order_by("execute_after", "pk")
            .values_list("pk", flat=True)
        )
        if not due:
            return []
        for start in range(0, len(due), _UPDATE_CHUNK):
            RebalanceRun.objects.filter(pk__in=due[start : start + _UPDATE_CHUNK]).update(execute_after=again_at)
        enqueue(due)
    logger.info("due executions queued", extra={"runs": len(due), "again_at": again_at.isoformat()})
    return due


def execute_runs(
    run_ids: Sequence[int],
    *,
    budget_s: float | None = None,
    enqueue: Callable[[Sequence[int]], None] = enqueue_executions,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, int]:
    """Execute the runs one after the other; how many ended in each outcome.

    A run that raises does not stop the others: it is logged and left due (it is tried again
    at its next due time), and `ExecutionErrors` is raised at the end so the task is recorded as
    failed. Once ``budget_s`` (half the task timeout) has passed, the runs not started yet are
    queued as a task of their own: a batch of executions that each wait for their fills (at
    Alpaca or IB) is never cut off by the timeout."""
    budget_s = settings.Q_TASK_TIMEOUT_SECONDS / 2 if budget_s is None else budget_s
    started = clock()
    outcomes: Counter[str] = Counter()
    errors = []
    for index, run_id in enumerate(run_ids):
        if index and clock() - started > budget_s:
            rest = list(run_ids[index:])
            enqueue(rest)
            outcomes["queued again"] += len(rest)
            logger.info("execution batch over its time budget: the rest queued", extra={"runs": rest})
            break
        with log_context(run_id=run_id):
            try:
                outcomes[execute_planned_run(run_id)] += 1
            except Exception:
                logger.exception("execution raised an error", extra={"run_id": run_id})
                errors.append(run_id)
    if errors:
        raise ExecutionErrors(
            f"{len(errors)} of {len(run_ids)} run(s) raised an error: {errors}; outcomes {dict(outcomes)}"
        )
    return dict(outcomes)
