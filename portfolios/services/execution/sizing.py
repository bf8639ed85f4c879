"""Buys re-sized to the cash actually available after the sells filled.

The plan sized its buys on estimated sell proceeds; fills differ (slippage, a partial or rejected
sell, a commission the estimate missed). Before any buy is written, every buy is scaled by one
factor so that their cost fits the cash above the buffer, quantities rounded down (whole shares
where the instrument or the policy needs them), and buys that fall below the minimum trade
dropped. When the cash suffices nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal

NANO = Decimal("0.000000001")


@dataclass(frozen=True)
class BuyLine:
    """One planned buy: shares, estimated price (USD), whether it must be whole shares."""

    symbol: str
    quantity: Decimal
    price_usd: Decimal
    whole: bool


@dataclass(frozen=True)
class Sizing:
    quantities: dict[str, Decimal]
    available_usd: Decimal
    wanted_usd: Decimal
    factor: Decimal
    dropped: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "available_usd": str(self.available_usd),
            "wanted_usd": str(self.wanted_usd),
            "factor": str(self.factor),
            "quantities": {symbol: str(q) for symbol, q in self.quantities.items()},
            "dropped": self.dropped,
        }


def _cost(lines: list[BuyLine], quantities: dict[str, Decimal], rate: Decimal, commission: Decimal) -> Decimal:
    return sum(
        (
            quantities[line.symbol] * line.price_usd * (1 + rate) + commission
            for line in lines
            if quantities[line.symbol] > 0
        ),
        Decimal(0),
    )


def buys_resize(
    lines: list[BuyLine], *, available_usd: Decimal, rate: Decimal, commission_usd: Decimal, min_trade_usd: Decimal
) -> Sizing:
    """Quantities per symbol whose estimated cost (notional x (1 + rate) + commission each) fits
    ``available_usd``; see the module docstring."""
    planned = {line.symbol: line.quantity for line in lines}
    wanted = _cost(lines, planned, rate, commission_usd)
    if wanted <= available_usd:
        return Sizing(planned, available_usd, wanted, Decimal(1))
    fixed = commission_usd * len(lines)
    variable = wanted - fixed
    factor = max(Decimal(0), (available_usd - fixed) / variable) if variable > 0 else Decimal(0)
    quantities: dict[str, Decimal] = {}
    dropped: list[str] = []
    for line in lines:
        scaled = line.quantity * factor
        quantity = scaled.quantize(Decimal(1) if line.whole else NANO, rounding=ROUND_DOWN)
        if quantity > 0 and quantity * line.price_usd < max(min_trade_usd, Decimal("0.01")):
            quantity = Decimal(0)
        if quantity == 0:
            dropped.append(line.symbol)
        quantities[line.symbol] = quantity
    # Fewer buys pay fewer commissions, which can only leave cash unspent, never overspent.
    return Sizing(quantities, available_usd, wanted, factor.quantize(Decimal("0.000001"), rounding=ROUND_DOWN), dropped)
