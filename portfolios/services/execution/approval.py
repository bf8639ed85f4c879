"""Whether the owner may approve a stored run now, and what approving does (the page and the API
ask the same questions): execute at once while the market is open; when it is closed, store the
approval and make the execution due `EXECUTE_AFTER_OPEN_MINUTES` after the next open, as the
daily run does for automatic portfolios; refuse when the approval's own dry run already fails
another pre-trade check."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from marketdata import calendar
from portfolios.models import RebalanceRun

from .flow import ExecutionResult

Status = RebalanceRun.Status
NEW_YORK = ZoneInfo("America/New_York")


@dataclass(frozen=True)
class ApprovalOutcome:
    """What approving now does: ``refused`` (why the dry run says it would stop), else queued for
    ``due`` (the market is closed), else executed at once."""

    refused: str = ""
    due: datetime | None = None


def approval_outcome(run: RebalanceRun, dry_run: ExecutionResult) -> ApprovalOutcome:
    """From the approval's dry run: a closed market queues a planned run for the next open; any
    other failed check refuses the approval with its reason."""
    failed = next((check for check in dry_run.checks if not check["ok"]), None)
    if failed is None:
        return ApprovalOutcome()
    if failed["name"] == "market_open" and run.status == Status.PLANNED:
        _, next_open, _ = calendar.market_clock(timezone.now())
        return ApprovalOutcome(due=next_open + timedelta(minutes=settings.EXECUTE_AFTER_OPEN_MINUTES))
    return ApprovalOutcome(refused=f"the pre-trade check {failed['name']} fails: {failed['detail']}")


def approval_queue(run: RebalanceRun, due: datetime) -> bool:
    """Store the owner's approval of the planned ``run`` and make its execution due at ``due``;
    False when the run changed meanwhile (superseded, executing, no longer planned)."""
    stored = (
        RebalanceRun.objects.active()
        .filter(pk=run.pk, status=Status.PLANNED, execution_step="", lease_owner="")
        .update(approved_at=timezone.now(), execute_after=due)
    )
    return bool(stored)


def new_york_time_text(moment: datetime) -> str:
    """A time as investors read it: "Monday 7 July 9:45 ET"."""
    local = moment.astimezone(NEW_YORK)
    return f"{local:%A} {local.day} {local:%B} {local.hour}:{local:%M} ET"


def approval_blocked(run: RebalanceRun) -> str:
    """Why ``run`` cannot be approved now, or "" when it can: a proposed plan, or one whose execution
    stopped at a pre-trade check before any order was written (approving it again retries), of a
    portfolio with a broker account to send its orders to."""
    if run.superseded_at is not None:
        return f"this run was superseded by run {run.superseded_by_id}: approve that one"
    if run.status == Status.PLANNED or (run.status == Status.EXECUTION_FAILED and run.execution_step == ""):
        if run.portfolio.broker_account_id is None:
            return "the portfolio has no broker account to send orders to"
        return ""
    return f"this run is {run.get_status_display().lower()}: there is nothing to approve"
