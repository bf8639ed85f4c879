"""Create a portfolio from the seed's `config.json` format.

The seed's file has three sections::

    {"data": {"tickers": [...], "storage_type": ..., "backfill_days": ...},
     "optimization": {"user_age": 35, "risk_free_rate": 0.02, "min_weight": 0.05, "max_weight": 0.35},
     "executor": {"rebalance_threshold": 0.05, "order_type": "market"}}

Each key maps onto a portfolio field (the seed's names, or the field names themselves). Two
optional sections extend it: "portfolio" (name, cash_usd, holdings) and "rebalancing" (band,
trigger, cost and trading fields). Deployment settings (storage, schedule, broker credentials)
are not portfolio settings: they are reported as skipped, never silently applied. Unknown keys
are errors that name the key. Everything is validated before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction

from ground.env import SYMBOL_RE
from marketdata.services import instruments_ensure
from portfolios.models import Portfolio
from portfolios.models.policy_fields import (
    BAND_FIELDS,
    CONSTRAINT_FIELDS,
    ESTIMATOR_FIELDS,
    GLIDE_PATH_FIELDS,
    PLANNING_FIELDS,
)

from .holdings import holdings_replace

_OPTIMIZATION_FIELDS = [*GLIDE_PATH_FIELDS, *ESTIMATOR_FIELDS, *CONSTRAINT_FIELDS, "manual_targets"]
_REBALANCING_FIELDS = [*BAND_FIELDS, *PLANNING_FIELDS, "mode", "order_type"]

# section -> {key in the file: portfolio field}; None marks a deployment setting that is skipped.
SECTIONS: dict[str, dict[str, str | None]] = {
    "data": {"tickers": "instruments", "storage_type": None, "storage_path": None, "backfill_days": None},
    "optimization": {
        "user_age": "age",
        "safe_portfolio_bonds": "safe_bond_share",
        **{name: name for name in _OPTIMIZATION_FIELDS},
    },
    "executor": {
        "rebalance_threshold": "band_abs",
        "broker_type": None,
        "execution_time": None,
        "timezone": None,
        **{name: name for name in _REBALANCING_FIELDS},
    },
    "rebalancing": {name: name for name in _REBALANCING_FIELDS},
    "portfolio": {"name": "name", "cash_usd": "cash_usd", "holdings": "holdings"},
}
_WHERE_SKIPPED = {
    "storage_type": "STORAGE_TYPE",
    "storage_path": "STORAGE_PATH",
    "backfill_days": "BACKFILL_DAYS",
    "broker_type": "a broker account on the portfolio",
    "execution_time": "EXECUTION_TIME",
    "timezone": "TIMEZONE",
}


@dataclass
class ImportedConfig:
    portfolio: Portfolio
    skipped: list[str] = field(default_factory=list)


def _value(raw):
    # JSON numbers arrive as floats; their shortest text is the number the person typed.
    return Decimal(repr(raw)) if isinstance(raw, float) else raw


def _read(config: Mapping) -> tuple[dict, list[str], list[str], object]:
    if not isinstance(config, Mapping):
        raise ValidationError({"config": "expected a JSON object with data/optimization/executor sections"})
    values: dict[str, object] = {}
    skipped: list[str] = []
    errors: dict[str, str] = {}
    tickers: list[str] = []
    holdings = None
    for section, body in config.items():
        known = SECTIONS.get(section)
        if known is None:
            errors[section] = f"unknown section (expected {', '.join(SECTIONS)})"
            continue
        if not isinstance(body, Mapping):
            errors[section] = "expected an object"
            continue
        for key, raw in body.items():
            where = f"{section}.{key}"
            if key not in known:
                errors[where] = "unknown setting"
            elif known[key] is None:
                skipped.append(f"{where}: a deployment setting, not imported (set {_WHERE_SKIPPED[key]})")
            elif known[key] == "instruments":
                if not isinstance(raw, list) or not all(isinstance(t, str) and SYMBOL_RE.match(t.upper()) for t in raw):
                    errors[where] = f'expected a list of ticker symbols like ["VTI", "BND"], got {raw!r}'
                else:
                    tickers = [t.upper() for t in raw]
            elif known[key] == "holdings":
                holdings = raw
            else:
                if known[key] in values and values[known[key]] != _value(raw):
                    errors[where] = f"conflicts with another key setting {known[key]}"
                values[known[key]] = _value(raw)
    if errors:
        raise ValidationError(errors)
    return values, skipped, tickers, holdings


def _holding_rows(raw) -> list[dict]:
    if raw is None:
        return []
    if isinstance(raw, Mapping):
        return [{"symbol": symbol, "quantity": _value(quantity)} for symbol, quantity in raw.items()]
    if isinstance(raw, list) and all(isinstance(row, Mapping) for row in raw):
        return [{key: _value(value) for key, value in row.items()} for row in raw]
    raise ValidationError({"portfolio.holdings": 'expected {"VTI": 10, ...} or [{"symbol": "VTI", "quantity": 10}]'})


def portfolio_import_config(*, owner, config: Mapping, name: str | None = None) -> ImportedConfig:
    """A new portfolio for ``owner`` from a parsed config.json (all or nothing)."""
    values, skipped, tickers, holdings = _read(config)
    cash = values.pop("cash_usd", None)
    values["name"] = name or values.get("name") or "Imported portfolio"
    if Portfolio.objects.filter(owner=owner, name=values["name"]).exists():
        raise ValidationError({"name": f"{owner} already has a portfolio named {values['name']!r}; pass another name"})
    portfolio = Portfolio(owner=owner, **values)
    if cash is not None:
        portfolio.cash_usd = cash
    rows = _holding_rows(holdings)
    with transaction.atomic():
        portfolio.full_clean()
        portfolio.save()
        held = [str(row.get("symbol", "")).upper() for row in rows]
        symbols = list(dict.fromkeys(tickers + [s for s in held if SYMBOL_RE.match(s)]))
        if symbols:
            portfolio.instruments.set(instruments_ensure(symbols=symbols).values())
        if rows:
            holdings_replace(portfolio=portfolio, rows=rows)
        # Manual targets and other checks that need the universe in place.
        portfolio.full_clean()
    return ImportedConfig(portfolio=portfolio, skipped=skipped)
