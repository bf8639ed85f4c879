"""What the rebalancing report shows, as numbers: weights as fractions of the total value (cash
included), deviations and bands as differences of fractions, amounts in USD, quantities in shares.
How they read is the templates' business (`portfolios.templatetags.numbers`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from portfolios.models import RebalanceRun

# -- rows ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HoldingRow:
    """One symbol of the run: what was held, its target and where the plan leaves it."""

    symbol: str
    name: str
    asset_class: str
    sector: str
    quantity: Decimal | None
    price_usd: Decimal | None
    value_usd: Decimal | None
    current_weight: float | None
    target_weight: float | None
    deviation: float | None  # current minus target weight
    band: float | None  # half-width of the band around the target
    outside: bool
    urgency: float | None  # deviation / band, unitless
    action: str
    weight_after: float | None


@dataclass(frozen=True)
class TradeRow:
    sequence: int
    side: str
    symbol: str
    quantity: Decimal
    estimated_price: Decimal
    notional_usd: Decimal
    estimated_cost_usd: Decimal
    reason: str


@dataclass(frozen=True)
class EventRow:
    kind: str
    state_before: str
    state_after: str
    message: str
    created_at: object


@dataclass(frozen=True)
class OrderRow:
    client_order_id: str
    side: str
    symbol: str
    quantity: Decimal | None  # None for an order of a notional amount
    notional_usd: Decimal | None
    order_type: str
    limit_price_usd: Decimal | None
    estimated_price_usd: Decimal
    state: str
    state_label: str
    badge: str
    filled_quantity: Decimal
    filled_avg_price_usd: Decimal | None
    filled_value_usd: Decimal | None
    broker_status: str
    reject_reason: str
    submitted_at: object
    events: list[EventRow]


@dataclass(frozen=True)
class RiskRow:
    """One risk figure before the trades, at the targets and after the trades: a fraction when
    ``percent`` (return, volatility, VaR, drawdown), otherwise a ratio (Sharpe, diversification)."""

    label: str
    percent: bool
    before: float | None
    target: float | None
    after: float | None


@dataclass(frozen=True)
class SleeveWeightRow:
    symbol: str
    aggressive_weight: float | None
    safe_weight: float | None
    target_weight: float | None


# -- sections --------------------------------------------------------------------------------------


@dataclass
class Strategy:
    planning: str
    planning_requested: str
    targets_source: str
    optimizer: str = ""
    optimizer_requested: str = ""
    fallbacks: list[dict] = field(default_factory=list)
    optimizer_notes: list[str] = field(default_factory=list)
    optimizer_warnings: list[str] = field(default_factory=list)  # what the weight bounds changed in the targets
    equity_share: float | None = None  # the glide path's aggressive share, a fraction


@dataclass
class PriceProvenance:
    price_date: date | None
    sources: list[str]
    synthetic_symbols: list[str]
    symbols_priced: int = 0

    @property
    def synthetic(self) -> bool:
        return bool(self.synthetic_symbols)

    @property
    def all_synthetic(self) -> bool:
        return self.synthetic and len(self.synthetic_symbols) == self.symbols_priced


@dataclass
class Construction:
    """Target construction: the frontier with the run's portfolios, the glide path, the sleeves."""

    frontier: list | None
    points: dict[str, tuple[float, float] | None]  # name: (annual volatility, expected return), fractions
    glide: dict | None
    sleeve_rows: list[SleeveWeightRow]
    notes: list[str]


@dataclass
class Risk:
    rows: list[RiskRow]
    contributions_symbols: list[str]
    contributions_before: dict[str, float]  # symbol: share of the risk, a fraction
    contributions_after: dict[str, float]
    window: dict
    cash_weight: dict
    error: str = ""


@dataclass
class BuysResized:
    """Buys re-sized to the cash after the sells: ``factor`` of the planned buys, a fraction."""

    available_usd: Decimal | None
    wanted_usd: Decimal | None
    factor: Decimal | None
    dropped: list[str]


@dataclass
class Execution:
    step: str
    checks: list[dict]
    buys: BuysResized | None
    reconciliation: dict | None
    messages: list[str]
    orders: list[OrderRow]
    filled_orders: int
    filled_value_usd: Decimal


@dataclass
class RunReport:
    """The report of ``run``; its summary figures (drift, turnover, values, cash) are the run's own."""

    run: RebalanceRun
    status_badge: str
    strategy: Strategy
    prices: PriceProvenance
    holdings: list[HoldingRow]
    cash_before_weight: float | None
    cash_target_weight: float | None
    cash_after_weight: float | None
    by_holding: list[tuple[str, float]]  # (symbol or "Cash", value in USD)
    by_asset_class: list[tuple[str, float]]  # (asset class or "Cash", percent of the value)
    by_sector: list[tuple[str, float]]  # (sector or "Cash", percent of the value)
    construction: Construction | None
    construction_note: str
    risk: Risk | None
    risk_note: str
    correlation_symbols: list[str]
    correlation: list[list[float]] | None
    trades: list[TradeRow]
    execution: Execution | None
