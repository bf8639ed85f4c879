"""Replace a portfolio's holdings from an uploaded CSV file, all or nothing.

Format (UTF-8, comma- or semicolon-separated, a header line first; blank lines are ignored)::

    symbol,quantity,cost_basis_usd
    SPY,40,18000
    BND,120.5,"1,250.75"

The header is ``symbol,quantity`` or ``symbol,quantity,cost_basis_usd`` (any case, in that
order); a header with semicolons and no comma makes the file semicolon-separated (as spreadsheet
exports in many locales write it). ``quantity`` is shares (at least 0, up to 9 decimal places);
``cost_basis_usd`` is the total paid, optional (at least 0, up to 4 decimal places); both
decimals with a point, like ``120.5``, with commas between thousands allowed (``1,250.75``; a
decimal comma is refused rather than guessed). Symbols must be known instruments and appear
once. The file becomes the whole set of holdings: holdings it does not list are removed. Every
line is checked before anything is written; errors name the file's line (the header is line 1)
and the field, in line order, and nothing changes.
"""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal

from django.core.exceptions import ValidationError

from portfolios.models import Holding, Portfolio
from portfolios.services.holdings import holdings_replace

MAX_BYTES = 1_000_000
MAX_ROWS = 5_000
HEADERS = (["symbol", "quantity"], ["symbol", "quantity", "cost_basis_usd"])
_ROW_ERROR = re.compile(r"^row (\d+) \(([^)]*)\): (.*)$", re.DOTALL)
_UNKNOWN = re.compile(r"^unknown symbol (.+?): (.*)$", re.DOTALL)
#: Digits grouped by thousands with commas, a point before the decimals: 1,250.75.
_GROUPED = re.compile(r"^[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?$")
_FIRST_LINE = re.compile(r"line ([0-9]+)")
_FIRST_ROW = re.compile(r"first in row ([0-9]+)")


def holdings_csv_rows(data: bytes) -> tuple[list[dict], list[int]]:
    """The rows of a holdings CSV file ({symbol, quantity, cost_basis_usd?}) and the line of each.

    Raises `ValidationError` ({"file": [...]}) for a file that is not in the format above.
    """
    if len(data) > MAX_BYTES:
        raise ValidationError({"file": f"the file is larger than {MAX_BYTES // 1000} kB"})
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError({"file": "the file is not UTF-8 text (save it as CSV UTF-8)"}) from None
    lines = _lines(text, delimiter=_delimiter(text))
    if not lines:
        raise ValidationError({"file": "the file is empty: the first line must be symbol,quantity[,cost_basis_usd]"})
    header_line, header = lines[0]
    names = [cell.strip().lower() for cell in header]
    if names not in HEADERS:
        raise ValidationError(
            {
                "file": f"line {header_line}: the header must be symbol,quantity or symbol,quantity,cost_basis_usd, "
                f"got {','.join(header)!r}"
            }
        )
    body = lines[1:]
    if not body:
        raise ValidationError({"file": "the file lists no holdings (to remove every holding, use the holdings editor)"})
    if len(body) > MAX_ROWS:
        raise ValidationError({"file": f"the file has more than {MAX_ROWS} holdings"})
    errors, rows, line_numbers = [], [], []
    for number, cells in body:
        if len(cells) != len(names):
            errors.append(f"line {number}: expected {len(names)} values ({','.join(names)}), got {len(cells)}")
            continue
        row = {name: cell.strip() for name, cell in zip(names, cells, strict=True)}
        rows.append({name: _ungrouped(value) if name != "symbol" else value for name, value in row.items()})
        line_numbers.append(number)
    if errors:
        raise ValidationError({"file": errors})
    return rows, line_numbers


def _delimiter(text: str) -> str:
    """A semicolon when the header (the first non-blank line) has semicolons and no comma."""
    header = next((line for line in text.splitlines() if line.strip()), "")
    return ";" if ";" in header and "," not in header else ","


def _ungrouped(value: str) -> str:
    """``1,250.75`` as ``1250.75``; anything else as written (the number check names it)."""
    return value.replace(",", "") if _GROUPED.fullmatch(value) else value


def _lines(text: str, *, delimiter: str) -> list[tuple[int, list[str]]]:
    """The non-blank rows of ``text`` with the line each starts on."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    lines = []
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return lines
        except csv.Error as error:
            # The csv module refuses a value longer than its field size limit (131,072 characters).
            if "field larger than field limit" in str(error):
                raise ValidationError(
                    {"file": f"line {start}: a value is longer than {csv.field_size_limit():,} characters"}
                ) from None
            raise ValidationError({"file": f"line {start}: not CSV: {error}"}) from None
        if any(row):
            lines.append((start, row))


def holdings_replace_from_csv(*, portfolio: Portfolio, data: bytes, cash_usd: Decimal | None = None) -> list[Holding]:
    """Make the CSV file's rows the portfolio's holdings (and ``cash_usd`` its cash, when given).

    Errors are a `ValidationError` ({"file": [...]} or {"cash_usd": ...}) naming the line and the
    field; nothing is saved then.
    """
    rows, line_numbers = holdings_csv_rows(data)
    try:
        return holdings_replace(portfolio=portfolio, rows=rows, cash_usd=cash_usd)
    except ValidationError as error:
        if not hasattr(error, "error_dict") or "holdings" not in error.error_dict:
            raise
        errors = error.message_dict
        messages = sorted((_by_line(m, rows, line_numbers) for m in errors.pop("holdings")), key=_first_line)
        raise ValidationError({"file": messages, **errors}) from None


def _first_line(message: str) -> int:
    match = _FIRST_LINE.search(message)
    return int(match.group(1)) if match else 0


def _by_line(message: str, rows: list[dict], line_numbers: list[int]) -> str:
    """`holdings_replace` numbers the rows it was given; name the file's line instead."""
    match = _ROW_ERROR.match(message)
    if match:
        row, symbol, problem = int(match.group(1)), match.group(2), match.group(3)
        problem = _FIRST_ROW.sub(lambda first: f"first on line {line_numbers[int(first.group(1)) - 1]}", problem)
        return f"line {line_numbers[row - 1]} ({symbol}): {problem}"
    match = _UNKNOWN.match(message)
    if match:
        unknown = {s.strip() for s in match.group(1).split(",")}
        lines = [
            f"{line_numbers[i]} ({row['symbol'].strip().upper()})"
            for i, row in enumerate(rows)
            if row["symbol"].strip().upper() in unknown
        ]
        return f"unknown symbol {match.group(1)} on line {', '.join(lines)}: {match.group(2)}"
    return message
