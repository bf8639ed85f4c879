"""Executing stored runs at brokers; see `flow` for the steps and their guarantees."""

from .approval import approval_blocked
from .flow import ExecutionRefused, ExecutionResult, execute_run
from .lease import ExecutionBusy

__all__ = ["ExecutionBusy", "ExecutionRefused", "ExecutionResult", "approval_blocked", "execute_run"]
