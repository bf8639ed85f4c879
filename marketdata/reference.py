"""Reference facts about well-known instruments: name, asset class, category, region, fractionability.

The table covers the ETFs the project's examples and real data files use, plus
the S&P 500 index (`^GSPC`). It is static on purpose: these facts change
rarely, and the rest of the project (the offline sample provider, asset-class
summaries) must work without a network. `lookup` answers for any symbol;
symbols outside the table get a conservative default (see `unknown_instrument`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

#: Every value `InstrumentInfo.asset_class` takes.
ASSET_CLASSES: Final = ("equity", "bond", "real_estate", "commodity", "cash", "other")
#: Every value `InstrumentInfo.region` takes.
REGIONS: Final = ("US", "International", "Emerging", "Global")


@dataclass(frozen=True)
class InstrumentInfo:
    """What the project knows about one instrument.

    `sector` is a short category: the fund's category for ETFs ("US Large Cap",
    "US Aggregate Bond"), empty when unknown. `fractionable` says whether
    brokers accept fractional-share orders for it (an index is not tradable at all); None when
    the project does not know.
    """

    symbol: str
    name: str
    asset_class: str
    sector: str
    region: str
    fractionable: bool | None

    def __post_init__(self) -> None:
        if self.asset_class not in ASSET_CLASSES:
            raise ValueError(
                f"{self.symbol}: asset_class {self.asset_class!r} is not one of {', '.join(ASSET_CLASSES)}"
            )
        if self.region not in REGIONS:
            raise ValueError(f"{self.symbol}: region {self.region!r} is not one of {', '.join(REGIONS)}")


def _etf(symbol: str, name: str, asset_class: str, sector: str, region: str) -> InstrumentInfo:
    # Every ETF in the table is fractionable at the brokers the project supports.
    return InstrumentInfo(symbol, name, asset_class, sector, region, fractionable=True)


_TABLE: Final = (
    # US equity
    _etf("SPY", "SPDR S&P 500 ETF Trust", "equity", "US Large Cap", "US"),
    _etf("VOO", "Vanguard S&P 500 ETF", "equity", "US Large Cap", "US"),
    _etf("IVV", "iShares Core S&P 500 ETF", "equity", "US Large Cap", "US"),
    _etf("DIA", "SPDR Dow Jones Industrial Average ETF Trust", "equity", "US Large Cap", "US"),
    _etf("QQQ", "Invesco QQQ Trust", "equity", "US Large Cap Growth", "US"),
    _etf("VUG", "Vanguard Growth ETF", "equity", "US Large Cap Growth", "US"),
    _etf("VTV", "Vanguard Value ETF", "equity", "US Large Cap Value", "US"),
    _etf("VTI", "Vanguard Total Stock Market ETF", "equity", "US Total Market", "US"),
    _etf("VO", "Vanguard Mid-Cap ETF", "equity", "US Mid Cap", "US"),
    _etf("VB", "Vanguard Small-Cap ETF", "equity", "US Small Cap", "US"),
    _etf("IWM", "iShares Russell 2000 ETF", "equity", "US Small Cap", "US"),
    # Non-US and world equity
    _etf("VXUS", "Vanguard Total International Stock ETF", "equity", "International Total Market", "International"),
    _etf("VEA", "Vanguard FTSE Developed Markets ETF", "equity", "Developed Markets ex-US", "International"),
    _etf("EFA", "iShares MSCI EAFE ETF", "equity", "Developed Markets ex-US", "International"),
    _etf("VWO", "Vanguard FTSE Emerging Markets ETF", "equity", "Emerging Markets", "Emerging"),
    _etf("EEM", "iShares MSCI Emerging Markets ETF", "equity", "Emerging Markets", "Emerging"),
    _etf("VT", "Vanguard Total World Stock ETF", "equity", "World Total Market", "Global"),
    # Bonds
    _etf("BND", "Vanguard Total Bond Market ETF", "bond", "US Aggregate Bond", "US"),
    _etf("AGG", "iShares Core U.S. Aggregate Bond ETF", "bond", "US Aggregate Bond", "US"),
    _etf("SHY", "iShares 1-3 Year Treasury Bond ETF", "bond", "US Short-Term Treasury", "US"),
    _etf("IEF", "iShares 7-10 Year Treasury Bond ETF", "bond", "US Intermediate-Term Treasury", "US"),
    _etf("TLT", "iShares 20+ Year Treasury Bond ETF", "bond", "US Long-Term Treasury", "US"),
    _etf("TIP", "iShares TIPS Bond ETF", "bond", "US Inflation-Protected Treasury", "US"),
    _etf("LQD", "iShares iBoxx $ Investment Grade Corporate Bond ETF", "bond", "US Investment Grade Corporate", "US"),
    _etf("HYG", "iShares iBoxx $ High Yield Corporate Bond ETF", "bond", "US High Yield Corporate", "US"),
    _etf("MUB", "iShares National Muni Bond ETF", "bond", "US Municipal", "US"),
    _etf("BNDX", "Vanguard Total International Bond ETF", "bond", "International Aggregate Bond", "International"),
    # Cash-like: T-bills behave like cash (near-zero volatility), unlike 1-3 year notes (SHY, a bond fund).
    _etf("BIL", "SPDR Bloomberg 1-3 Month T-Bill ETF", "cash", "US Treasury Bills", "US"),
    # Real assets
    _etf("VNQ", "Vanguard Real Estate ETF", "real_estate", "US REITs", "US"),
    _etf("GLD", "SPDR Gold Shares", "commodity", "Gold", "Global"),
    _etf("DBC", "Invesco DB Commodity Index Tracking Fund", "commodity", "Broad Commodities", "Global"),
    # An index is a benchmark, not a security: it cannot be bought, fractionally or otherwise.
    InstrumentInfo("^GSPC", "S&P 500 index", "equity", "US Large Cap", "US", fractionable=False),
)

#: The reference table, keyed by symbol (upper case, as `ground.env.SYMBOL_RE` spells them).
KNOWN_INSTRUMENTS: Final[dict[str, InstrumentInfo]] = {info.symbol: info for info in _TABLE}


def unknown_instrument(symbol: str) -> InstrumentInfo:
    """The default for a symbol outside the table.

    Asset class "other" so no allocation rule counts it as stock or bond by
    guess; region "US" because the project trades US-listed symbols; fractionability
    not known (the broker, or an administrator, says): plans trade it in whole shares,
    which every broker accepts, and say why.
    """
    return InstrumentInfo(symbol, symbol, "other", "", "US", fractionable=None)


def lookup(symbol: str) -> InstrumentInfo:
    """The table's entry for `symbol` (case-insensitive), else `unknown_instrument(symbol)`."""
    key = symbol.strip().upper()
    return KNOWN_INSTRUMENTS.get(key) or unknown_instrument(key)


def is_known(symbol: str) -> bool:
    """Whether `symbol` (case-insensitive) is in the reference table."""
    return symbol.strip().upper() in KNOWN_INSTRUMENTS
