"""Whether the owner may approve a stored run now (the page and the API ask the same question)."""

from __future__ import annotations

from portfolios.models import RebalanceRun

Status = RebalanceRun.Status


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
