"""Typed failures of the optimization core.

Every error carries a sentence a user can act on; callers show ``str(error)`` as is.
"""

from __future__ import annotations


class OptimizationError(Exception):
    """Base class: the engine could not produce weights for a stated reason."""


class ConfigurationError(OptimizationError, ValueError):
    """A setting is malformed (unknown strategy, negative target, ...); names the field."""


class InfeasibleConstraints(OptimizationError):
    """No weight vector satisfies the constraints; ``explanation`` says which ones and what to change.

    ``setting`` is the `Constraints` field to change ("max_weight", "groups", ...), or "" when no
    single one is to blame, so a form can show the message at that field.
    """

    def __init__(self, explanation: str, setting: str = ""):
        super().__init__(explanation)
        self.explanation = explanation
        self.setting = setting


class NoAssetBeatsRiskFree(OptimizationError):
    """Max-Sharpe is undefined: every expected return is at or below the risk-free rate."""


class InsufficientData(OptimizationError):
    """Too few observations (or none) for at least one asset."""


class SolverFailed(OptimizationError):
    """The solver did not reach an optimal, feasible answer."""
