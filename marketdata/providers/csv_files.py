"""Daily bars from CSV files on disk: a single file or every `*.csv`/`*.csv.gz` in a directory.

Four layouts are recognised from the header (names compared trimmed and
case-insensitively; columns may come in any order):

- `yahoo`: one symbol per file, `Date,Open,High,Low,Close,Adj Close,Volume`
  (any subset that includes `Adj Close`). `Close` is the raw close.
- `close`: one symbol per file with a `Close` but no adjusted-close column, such as
  yfinance's auto-adjusted `Date,Close`: that `Close` is already adjusted, so it
  fills both `close` and `adj_close`.
- `alphavantage`: one symbol per file, `timestamp,open,high,low,close,adjusted_close,
  volume,dividend_amount,split_coefficient` (TIME_SERIES_DAILY_ADJUSTED).
- `wide`: `date,T1,T2,...`: every column after the date is one symbol's adjusted
  close; an empty cell means no bar that day.
- `long`: `symbol,date,open,high,low,close,adj_close,volume[,...]`, one row per
  symbol and date, as `manage.py export_prices --format csv` writes it.

A one-symbol file takes its symbol from the `symbol` option, else from its name:
the stem upper-cased (`spy.csv` is SPY), AlphaVantage's `DA-<T>-T-<date>` names,
and `<NAME>_index.csv` for the index `^<NAME>` (a `^` is awkward in file names).

Dates are the first 10 characters of the date cell (`2016-04-28 00:00:00` and
`2010-01-04 00:00:00-05:00` are sessions 2016-04-28 and 2010-01-04), parsed
strictly as YYYY-MM-DD. A file is rejected as a whole, with a message naming it,
when a required column is missing, a date does not parse or a price cell is not
a number. Values that parse but are implausible (zero, negative or NaN prices,
repeated dates) pass through unchanged: judging them is the data-quality layer's job.
"""

from __future__ import annotations

import csv
import gzip
import logging
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from ground.env import SYMBOL_RE
from marketdata.providers.base import BAR_COLUMNS, PriceProvider, ProviderError, ProviderNotConfigured

logger = logging.getLogger(__name__)

LAYOUT_YAHOO = "yahoo"
LAYOUT_CLOSE = "close"
LAYOUT_ALPHAVANTAGE = "alphavantage"
LAYOUT_WIDE = "wide"
LAYOUT_LONG = "long"

_DATE_NAMES = ("date", "timestamp")
# Normalised header name -> bar column, for one-symbol files.
_PER_SYMBOL_COLUMNS = {
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "adj close": "adj_close",
    "adj_close": "adj_close",
    "adjusted_close": "adj_close",
    "adjusted close": "adj_close",
    "volume": "volume",
}
# Columns exports carry that bars do not use (AlphaVantage's, yfinance's history(), this project's own).
_IGNORED_PER_SYMBOL_NAMES = frozenset(
    {
        "dividend_amount",
        "split_coefficient",
        "dividends",
        "stock splits",
        "capital gains",
        "repaired?",
        "source",
        "synthetic",
    }
)
_ALPHAVANTAGE_NAME_RE = re.compile(r"DA-(?P<sym>[A-Z.\-]+)-T-\d{4}-\d{2}-\d{2}")
_INDEX_SUFFIX = "_index"
_ISO_DATE_RE = r"\d{4}-\d{2}-\d{2}"
# The header is line 1, so data row i (0-based) is on line i + 2.
_FIRST_DATA_LINE = 2
_COLUMNS = pd.Index(BAR_COLUMNS)


@dataclass(frozen=True)
class CsvProblem:
    """A file that was rejected as a whole; `message` names the file and says what is wrong."""

    path: Path
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class CsvFileSummary:
    """A file that was read: its layout (`LAYOUT_*`), the symbols it holds and its data rows."""

    path: Path
    layout: str
    symbols: tuple[str, ...]
    rows: int


@dataclass
class CsvReadResult:
    """Everything found under a path.

    `bars`: {symbol: bars frame in the `base.BAR_COLUMNS` shape, ascending
    dates}, rows of every file that holds the symbol (repeated dates kept);
    `files`: the files read, in path order; `problems`: the files rejected.
    """

    bars: dict[str, pd.DataFrame] = field(default_factory=dict)
    files: list[CsvFileSummary] = field(default_factory=list)
    problems: list[CsvProblem] = field(default_factory=list)


class _FileRejected(Exception):
    """One file cannot be used; the message names it."""


class CsvProvider(PriceProvider):
    """Reads daily bars from CSV files (see the module docstring for the layouts).

    Options: `path`, a file or a directory (read non-recursively); `symbol`, the
    symbol of a single one-symbol file whose name does not give it. Files are
    read again on every call, so edits on disk show up without a restart.
    """

    name = "csv"

    def __init__(self, *, path: str = "", symbol: str | None = None, rate_limit_per_minute: int | None = None):
        super().__init__(rate_limit_per_minute=rate_limit_per_minute)
        # Checked when used, not here: the provider is built from settings even when it is not in the chain.
        self.path = path
        self.symbol = symbol

    def fetch_daily_bars(self, symbols: Sequence[str], start: date, end: date) -> dict[str, pd.DataFrame]:
        """{symbol: bars frame} of the wanted symbols the files hold, rows from `start` to `end` inclusive.

        Rejected files are logged and skipped; raises `ProviderError` (not
        transient) when the path is unusable or no file could be read.
        """
        result = self.read_all()
        for problem in result.problems:
            logger.warning("CSV price file rejected: %s", problem.message)
        if not result.files:
            raise ProviderError(
                f"no CSV file under {self.path} could be read: " + "; ".join(p.message for p in result.problems),
                transient=False,
            )
        first, last = pd.Timestamp(start), pd.Timestamp(end)
        found = {}
        for symbol in dict.fromkeys(symbols):
            frame = result.bars.get(symbol)
            if frame is not None:
                found[symbol] = frame[(frame.index >= first) & (frame.index <= last)]
        return found

    def read_all(self) -> CsvReadResult:
        """Reads every file under the path: all their symbols, every row, and the files rejected.

        Raises `ProviderNotConfigured` when the path is empty, `ProviderError`
        (not transient) when it does not exist, holds no CSV file, or the
        `symbol` option is not usable with it.
        """
        paths = self._files()
        override = self._symbol_override()
        result = CsvReadResult()
        per_symbol: dict[str, list[pd.DataFrame]] = {}
        for path in paths:
            try:
                layout, frames, rows = _read_file(path, override)
            except _FileRejected as rejected:
                result.problems.append(CsvProblem(path, str(rejected)))
                continue
            result.files.append(CsvFileSummary(path, layout, tuple(frames), rows))
            for symbol, frame in frames.items():
                per_symbol.setdefault(symbol, []).append(frame)
        result.bars = {symbol: _concat(frames) for symbol, frames in per_symbol.items()}
        return result

    def _files(self) -> list[Path]:
        if not self.path:
            raise ProviderNotConfigured("PRICE_CSV_PATH is not set")
        root = Path(self.path).expanduser()
        if not root.exists():
            raise ProviderError(f"CSV path {root} does not exist", transient=False)
        if root.is_file():
            return [root]
        paths = sorted(p for p in root.iterdir() if p.is_file() and _is_csv_name(p.name))
        if not paths:
            raise ProviderError(f"no .csv or .csv.gz files in {root}", transient=False)
        return paths

    def _symbol_override(self) -> str | None:
        if self.symbol is None or not self.symbol.strip():
            return None
        symbol = self.symbol.strip().upper()
        if not SYMBOL_RE.match(symbol):
            raise ProviderError(
                f"symbol {self.symbol!r} is not a ticker symbol (e.g. SPY, BRK.B, ^GSPC)", transient=False
            )
        if Path(self.path).expanduser().is_dir():
            raise ProviderError(
                f"the symbol option names the symbol of one file, but {self.path} is a directory", transient=False
            )
        return symbol


def _is_csv_name(name: str) -> bool:
    return name.lower().endswith((".csv", ".csv.gz"))


def _is_gzip(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


def symbol_from_file_name(path: Path) -> str | None:
    """The symbol a one-symbol file's name gives, or None when it gives no valid symbol.

    `SPY.csv` -> SPY, `..._DA-AAPL-T-2021-04-21.csv` -> AAPL, `GSPC_index.csv` -> ^GSPC.
    """
    stem = re.sub(r"\.csv(\.gz)?$", "", path.name, flags=re.IGNORECASE)
    match = _ALPHAVANTAGE_NAME_RE.search(stem)
    if match:
        candidate = match["sym"]
    elif stem.lower().endswith(_INDEX_SUFFIX) and len(stem) > len(_INDEX_SUFFIX):
        candidate = "^" + stem[: -len(_INDEX_SUFFIX)].upper()
    else:
        candidate = stem.upper()
    return candidate if SYMBOL_RE.match(candidate) else None


def _read_file(path: Path, override: str | None) -> tuple[str, dict[str, pd.DataFrame], int]:
    """(layout, {symbol: bars frame}, data rows) of one file; raises `_FileRejected`."""
    header = [name.strip() for name in _read_header(path)]
    lowered = [name.lower() for name in header]
    date_position = next((i for i, name in enumerate(lowered) if name in _DATE_NAMES), None)
    if date_position is None:
        raise _FileRejected(
            f"{path.name}: no date column: the header needs a Date (or timestamp) column, found {', '.join(header)}"
        )
    repeated = sorted({name for name in lowered if lowered.count(name) > 1})
    if repeated:
        raise _FileRejected(f"{path.name}: column {repeated[0]!r} appears more than once in the header")
    layout = _layout(lowered, date_position)
    if layout == LAYOUT_LONG:
        return layout, *_read_long(path, header, date_position)
    if layout == LAYOUT_WIDE:
        return layout, *_read_wide(path, header, date_position, override)
    return layout, *_read_per_symbol(path, header, date_position, layout, override)


def _read_header(path: Path) -> list[str]:
    """The header row's cells; a UTF-8 byte-order mark (as Excel writes) is dropped."""
    try:
        if _is_gzip(path):
            with gzip.open(path, "rt", encoding="utf-8-sig", newline="") as handle:
                row = next(csv.reader(handle), None)
        else:
            with path.open(encoding="utf-8-sig", newline="") as handle:
                row = next(csv.reader(handle), None)
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as error:
        raise _FileRejected(f"{path.name}: cannot be read: {error}") from None
    if not row or not any(cell.strip() for cell in row):
        raise _FileRejected(f"{path.name}: the file is empty (expected a header row such as Date,Close)")
    return row


def _layout(lowered: list[str], date_position: int) -> str:
    if "symbol" in lowered:
        return LAYOUT_LONG
    if lowered[date_position] == "timestamp":
        return LAYOUT_ALPHAVANTAGE
    others = [name for i, name in enumerate(lowered) if i != date_position]
    mapped = {_PER_SYMBOL_COLUMNS.get(name) for name in others}
    # A price-column name marks a one-symbol file; so does a header made only of
    # bar names (then the missing close is reported). Tickers such as LOW or OPEN
    # alone do not: a wide table has other symbols beside them.
    known = _PER_SYMBOL_COLUMNS.keys() | _IGNORED_PER_SYMBOL_NAMES
    if not ({"close", "adj_close"} & mapped) and not (others and all(name in known for name in others)):
        return LAYOUT_WIDE
    return LAYOUT_YAHOO if "adj_close" in mapped else LAYOUT_CLOSE


def _read_per_symbol(
    path: Path, header: list[str], date_position: int, layout: str, override: str | None
) -> tuple[dict[str, pd.DataFrame], int]:
    symbol = override or symbol_from_file_name(path)
    if symbol is None:
        raise _FileRejected(
            f"{path.name}: cannot tell the symbol from the file name; rename it to <SYMBOL>.csv or pass --symbol"
        )
    positions = {
        _PER_SYMBOL_COLUMNS[name.lower()]: i for i, name in enumerate(header) if name.lower() in _PER_SYMBOL_COLUMNS
    }
    if layout == LAYOUT_ALPHAVANTAGE and "adj_close" not in positions:
        # TIME_SERIES_DAILY (without _ADJUSTED) has a raw close only: unusable for returns.
        raise _FileRejected(f"{path.name}: missing column adjusted_close (export TIME_SERIES_DAILY_ADJUSTED)")
    if "close" not in positions and "adj_close" not in positions:
        raise _FileRejected(f"{path.name}: missing column Close (or Adj Close)")
    frame, dates = _parse(path, header, date_position)
    values = {column: _numbers(path, frame, header[i]) for column, i in positions.items()}
    if layout == LAYOUT_CLOSE:
        values["adj_close"] = values["close"]
    order = np.argsort(dates, kind="stable")
    bars = _bars_frame(dates[order], {column: array[order] for column, array in values.items()})
    return {symbol: bars}, len(frame)


def _read_long(path: Path, header: list[str], date_position: int) -> tuple[dict[str, pd.DataFrame], int]:
    positions = {
        _PER_SYMBOL_COLUMNS[name.lower()]: i for i, name in enumerate(header) if name.lower() in _PER_SYMBOL_COLUMNS
    }
    if "adj_close" not in positions:
        raise _FileRejected(f"{path.name}: missing column adj_close (a long table needs symbol, date and adj_close)")
    frame, dates = _parse(path, header, date_position)
    symbol_column = header[[name.lower() for name in header].index("symbol")]
    symbols = frame[symbol_column].astype(str).str.strip().str.upper().to_numpy()
    bad = [i for i, symbol in enumerate(symbols) if not SYMBOL_RE.match(symbol)]
    if bad:
        line = int(frame.index[bad[0]]) + _FIRST_DATA_LINE
        raise _FileRejected(f"{path.name}: line {line}: {symbols[bad[0]]!r} is not a ticker symbol")
    values = {column: _numbers(path, frame, header[i]) for column, i in positions.items()}
    bars = {}
    for symbol in dict.fromkeys(symbols):
        rows = np.flatnonzero(symbols == symbol)
        rows = rows[np.argsort(dates[rows], kind="stable")]
        bars[symbol] = _bars_frame(dates[rows], {column: array[rows] for column, array in values.items()})
    return bars, len(frame)


def _read_wide(
    path: Path, header: list[str], date_position: int, override: str | None
) -> tuple[dict[str, pd.DataFrame], int]:
    value_positions = [i for i in range(len(header)) if i != date_position]
    if not value_positions:
        raise _FileRejected(f"{path.name}: no price columns after {header[date_position]}")
    symbols = [header[i].upper() for i in value_positions]
    if override is not None:
        if len(symbols) != 1:
            raise _FileRejected(
                f"{path.name}: --symbol names one series, but this table has {len(symbols)} symbol columns"
            )
        symbols = [override]
    for i, symbol in zip(value_positions, symbols, strict=True):
        if not SYMBOL_RE.match(symbol):
            raise _FileRejected(
                f"{path.name}: column {header[i]!r} is not a ticker symbol"
                " (in a table of dates and prices every column after the date is a symbol)"
            )
    frame, dates = _parse(path, header, date_position)
    order = np.argsort(dates, kind="stable")
    dates = dates[order]
    bars = {}
    for i, symbol in zip(value_positions, symbols, strict=True):
        values = _numbers(path, frame, header[i])[order]
        # An empty cell in a wide table is a day without a price for that symbol, not an error.
        present = ~np.isnan(values)
        bars[symbol] = _bars_frame(dates[present], {"adj_close": values[present]})
    return bars, len(frame)


def _parse(path: Path, header: list[str], date_position: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The file's cells (columns named as in the header) and its dates (datetime64, one per row).

    Blank lines are dropped; other rows keep their position, which gives line
    numbers in messages. A row with more cells than the header is an error
    (reading only some columns would hide it). pandas' default float parser is
    exact (round trip).
    """
    try:
        with warnings.catch_warnings():
            # pandas only warns (and drops cells) when the first data row is the long one.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                path,
                header=None,
                skiprows=1,
                names=header,
                dtype={header[date_position]: str},
                # The same rule as `_read_header`, so both always agree on the format.
                compression="gzip" if _is_gzip(path) else None,
                skip_blank_lines=False,
                index_col=False,
                # One type per column for the whole file (no chunked guessing and mixed-type warnings).
                low_memory=False,
            )
    except pd.errors.ParserWarning:
        raise _FileRejected(f"{path.name}: cannot be parsed as CSV: line 2 has more cells than the header") from None
    except (pd.errors.ParserError, OSError, EOFError, UnicodeDecodeError, ValueError) as error:
        raise _FileRejected(f"{path.name}: cannot be parsed as CSV: {error}") from None
    frame = frame[frame.notna().any(axis=1)]
    return frame, _dates(path, frame[header[date_position]])


def _dates(path: Path, cells: pd.Series) -> np.ndarray:
    text = cells.str.slice(0, 10)
    iso = text.str.fullmatch(_ISO_DATE_RE).fillna(False).astype(bool)
    parsed = pd.to_datetime(text.where(iso), format="%Y-%m-%d", errors="coerce")
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        line = int(cells.index[row]) + _FIRST_DATA_LINE
        value = "" if pd.isna(cells.iloc[row]) else cells.iloc[row]
        raise _FileRejected(f"{path.name}: line {line}: {value!r} is not a date (expected YYYY-MM-DD)")
    return parsed.to_numpy(dtype="datetime64[ns]")


def _numbers(path: Path, frame: pd.DataFrame, column: str) -> np.ndarray:
    """The column as float64; raises `_FileRejected` at the first cell that is not a number."""
    cells = frame[column]
    if pd.api.types.is_bool_dtype(cells.dtype):
        # pandas reads a column of True/False as booleans, which would pass as 1.0/0.0.
        bad = cells.notna().to_numpy()
    elif pd.api.types.is_numeric_dtype(cells.dtype):
        return cells.to_numpy(dtype="float64")
    else:
        coerced = pd.to_numeric(cells.astype(object), errors="coerce")
        bad = (coerced.isna() & cells.notna()).to_numpy()
        if not bad.any():
            return coerced.to_numpy(dtype="float64")
    row = int(np.argmax(bad))
    line = int(cells.index[row]) + _FIRST_DATA_LINE
    raise _FileRejected(f"{path.name}: line {line}: {column} value {cells.iloc[row]!r} is not a number")


def _bars_frame(dates: np.ndarray, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """A bars frame from `dates` (datetime64, ascending) and some of its columns (NaN for the rest).

    Built as one (6, rows) block that the frame wraps without copying: a wide
    table yields hundreds of frames, and per-column construction would dominate.
    """
    block = np.full((len(BAR_COLUMNS), len(dates)), np.nan)
    for i, name in enumerate(BAR_COLUMNS):
        if name in columns:
            block[i] = columns[name]
    return pd.DataFrame(block.T, index=pd.DatetimeIndex(dates, name="date"), columns=_COLUMNS, copy=False)


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    if len(frames) == 1:
        return frames[0]
    # A symbol in several files: every row is kept, repeated dates included, for the quality checks to judge.
    return pd.concat(frames).sort_index(kind="stable")
