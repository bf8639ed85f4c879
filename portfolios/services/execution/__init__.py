"""Executing stored runs at brokers; see `flow` for the steps and their guarantees."""

from .approval import ApprovalOutcome, approval_blocked, approval_outcome, approval_queue, new_york_time_text
from .flow import ExecutionRefused, ExecutionResult, execute_run
from .lease import ExecutionBusy

__all__ = [
    "ApprovalOutcome",
    "ExecutionBusy",
    "ExecutionRefused",
    "ExecutionResult",
    "approval_blocked",
    "approval_outcome",
    "approval_queue",
    "execute_run",
    "new_york_time_text",
]
