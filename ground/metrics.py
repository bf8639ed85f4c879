"""The project's metric instruments, which the pipeline and the executor record into.

    observe_step(step: str, seconds: float) -> None       portfolio_rebalancer_execution_time_seconds{step}
    run_finished(*, success: bool) -> None                 portfolio_rebalancer_runs_total{outcome}
    trades_executed(*, side: str, broker: str, count=1)    portfolio_rebalancer_trades_executed_total{side,broker}

None of them raises: a bad value is logged and dropped, so a metric can never stop a run or an
order. How they are scraped: `rebalancer_site.metrics`.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from prometheus_client import Counter, Histogram

logger = logging.getLogger(__name__)

PREFIX = "portfolio_rebalancer"
# Pipeline steps run from milliseconds (planning) to minutes (price fetch, waiting for fills).
STEP_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, float("inf"))
SIDES = frozenset({"buy", "sell"})

STEP_SECONDS = Histogram(
    f"{PREFIX}_execution_time_seconds",
    "Seconds taken by each step of the rebalancing pipeline (fetch, sync, targets, plan, execute, ...).",
    ["step"],
    buckets=STEP_BUCKETS,
)
RUNS = Counter(
    f"{PREFIX}_runs_total",
    "Rebalance runs finished, by outcome (success or failure).",
    ["outcome"],
)
TRADES = Counter(
    f"{PREFIX}_trades_executed_total",
    "Orders executed (filled, fully or partly) at a broker, by side and broker kind.",
    ["side", "broker"],
)
# Both outcomes exist from the start, at 0, so rate() and ratios work from the first scrape.
for _outcome in ("success", "failure"):
    RUNS.labels(_outcome)


# --- the API ---------------------------------------------------------------------------------


def observe_step(step: str, seconds: float) -> None:
    """Records how long one pipeline step took (seconds, >= 0)."""
    try:
        value = float(seconds)
        if math.isnan(value) or value < 0 or math.isinf(value):
            raise ValueError(f"seconds must be a finite number >= 0, not {seconds!r}")
        STEP_SECONDS.labels(_label(step)).observe(value)
    except Exception as exc:
        metric_dropped("observe_step", exc)


def run_finished(*, success: bool) -> None:
    """Counts one finished rebalance run: success (planned, no action, executed) or failure."""
    try:
        RUNS.labels("success" if success else "failure").inc()
    except Exception as exc:
        metric_dropped("run_finished", exc)


def trades_executed(*, side: str, broker: str, count: int = 1) -> None:
    """Counts executed trades; ``side`` buy or sell (anything else counts as "other"), ``broker``
    the account kind (paper, alpaca, ib)."""
    try:
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"count must be a whole number >= 0, not {count!r}")
        side_label = _label(side)
        TRADES.labels(side_label if side_label in SIDES else "other", _label(broker)).inc(count)
    except Exception as exc:
        metric_dropped("trades_executed", exc)


def _label(value: Any) -> str:
    text = str(getattr(value, "value", value)).strip().lower()  # TextChoices members too
    return text[:64] or "unknown"


def metric_dropped(name: str, exc: Exception) -> None:
    logger.warning("metric not recorded", extra={"metric_call": name, "error": f"{type(exc).__name__}: {exc}"})
