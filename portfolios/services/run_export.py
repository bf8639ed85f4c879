"""A run and its trades as one JSON-ready dict (decimals as strings, never floats)."""

from __future__ import annotations

from decimal import Decimal


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def run_as_dict(run, trades, *, stored: bool) -> dict:
    return {
        "run_id": run.pk,
        "stored": stored,
        "portfolio_id": run.portfolio_id,
        "trading_date": run.trading_date.isoformat(),
        "status": run.status,
        "error": run.error or None,
        "trigger": run.trigger,
        "triggers_fired": run.triggers_fired,
        "requested_strategy": run.requested_strategy,
        "strategy": run.strategy,
        "targets_source": run.targets_source,
        "targets": run.targets,
        "needs": run.needs,
        "trades": [
            {
                "symbol": trade.instrument.symbol,
                "side": trade.side,
                "quantity": _text(trade.quantity),
                "estimated_price": _text(trade.estimated_price),
                "notional_usd": _text(trade.notional_usd),
                "estimated_cost_usd": _text(trade.estimated_cost_usd),
                "reason": trade.reason,
            }
            for trade in trades
        ],
        "drift_before": _text(run.drift_before),
        "drift_after": _text(run.drift_after),
        "turnover": _text(run.turnover),
        "total_cost_usd": _text(run.total_cost_usd),
        "value_before_usd": _text(run.value_before_usd),
        "value_after_usd": _text(run.value_after_usd),
        "cash_before_usd": _text(run.cash_before_usd),
        "cash_flow_usd": _text(run.cash_flow_usd),
        "cash_after_usd": _text(run.cash_after_usd),
        "deposit_needed_usd": _text(run.deposit_needed_usd),
        "weights_after": run.weights_after,
        "notes": run.notes,
        "snapshot": run.snapshot,
        "timings": run.timings,
    }
