"""What a plan is made from, as one fingerprint: asking again with the same inputs answers the
stored run; anything else that would change the plan is a new planning.

The inputs are the trading date (whose closes price the plan), the portfolio's settings
(targets, optimizer, bands, triggers, costs, trading rules), its universe, its holdings with
their cost bases, its cash, its broker account, and the request's strategy and cash flow. Its
name, mode and order type, and when it was changed, are not inputs: they change no number of
the plan.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from decimal import Decimal

from portfolios.models import Holding, Portfolio

#: Portfolio fields that change no number of a plan.
NOT_INPUTS = frozenset(
    {"id", "owner", "name", "active", "mode", "order_type", "created_at", "updated_at", "instruments"}
)


def plan_fingerprint(
    portfolio: Portfolio,
    *,
    as_of: date,
    strategy: str | None,
    cash_flow_usd: Decimal,
    holdings: list[Holding] | None = None,
    universe: list[str] | None = None,
) -> str:
    """SHA-256 (hex) of the inputs of ``portfolio``'s plan for this request. ``holdings`` (with
    their instruments) and ``universe`` (its symbols): when the caller has read them already."""
    if holdings is None:
        holdings = list(portfolio.holdings.select_related("instrument"))
    settings = {
        field.attname: _plain(getattr(portfolio, field.attname))
        for field in Portfolio._meta.concrete_fields
        if field.name not in NOT_INPUTS
    }
    inputs = {
        "trading_date": as_of.isoformat(),
        "settings": settings,
        "universe": sorted(portfolio.instruments.values_list("symbol", flat=True) if universe is None else universe),
        "holdings": sorted((h.instrument.symbol, _plain(h.quantity), _plain(h.cost_basis_usd)) for h in holdings),
        "strategy": strategy or portfolio.rebalancing_strategy,
        "cash_flow_usd": _plain(cash_flow_usd),
    }
    text = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _plain(value):
    """Decimals by value (10.50 and 10.5 are one input); everything else as stored."""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return value
