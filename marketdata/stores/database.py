"""The database price store: the PriceBar table (SQLite or PostgreSQL).

On PostgreSQL bulk work goes through COPY (write: into a temporary table, then
one INSERT ... ON CONFLICT DO NOTHING; read: COPY ... TO STDOUT parsed by
pandas), because row-by-row ORM calls are two orders of magnitude slower for
the half-million-bar imports this store takes. SQLite takes one executemany.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date

import pandas as pd
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from marketdata.models import PRICE_PLACES, Instrument, PriceBar
from marketdata.stores.base import LONG_COLUMNS, PRICE_COLUMNS, PriceStore, long_to_wide, normalise_long

_BAR_TABLE = PriceBar._meta.db_table
_COPY_COLUMNS = ["instrument_id", "date", *PRICE_COLUMNS, "volume", "source", "synthetic", "created_at"]


class UnknownInstrument(ValueError):
    """Bars were given for a symbol with no Instrument row."""


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def _instrument_ids(symbols: Sequence[str]) -> dict[str, int]:
    return dict(Instrument.objects.filter(symbol__in=list(symbols)).values_list("symbol", "id"))


class DatabasePriceStore(PriceStore):
    name = "database"

    # --- writing -------------------------------------------------------------

    def write_bars(self, bars: pd.DataFrame) -> int:
        if bars.empty:
            return 0
        bars = normalise_long(bars)
        ids = _instrument_ids(bars["symbol"].unique())
        unknown = sorted(set(bars["symbol"]) - set(ids))
        if unknown:
            raise UnknownInstrument(f"no instrument for {', '.join(unknown)}")
        bars = bars.assign(instrument_id=bars["symbol"].map(ids))
        with transaction.atomic():
            if _postgres():
                return self._copy_insert(bars)
            return self._executemany_insert(bars)

    def _copy_insert(self, bars: pd.DataFrame) -> int:
        frame = bars.assign(
            date=bars["date"].dt.strftime("%Y-%m-%d"),
            synthetic=bars["synthetic"].map({True: "t", False: "f"}),
            created_at=timezone.now().isoformat(),
        )[_COPY_COLUMNS]
        buffer = io.StringIO()
        # Prices were rounded to PRICE_PLACES; printing that many decimals is exact.
        frame.to_csv(buffer, header=False, index=False, float_format=f"%.{PRICE_PLACES}f", na_rep="")
        columns = ", ".join(_COPY_COLUMNS)
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TEMPORARY TABLE pricebar_incoming ON COMMIT DROP AS "  # noqa: S608 (constants)
                f"SELECT {columns} FROM {_BAR_TABLE} WITH NO DATA"
            )
            with cursor.copy(f"COPY pricebar_incoming ({columns}) FROM STDIN WITH (FORMAT csv)") as copy:
                copy.write(buffer.getvalue())
            cursor.execute(
                f"INSERT INTO {_BAR_TABLE} ({columns}) SELECT {columns} FROM pricebar_incoming "  # noqa: S608 (constants)
                "ON CONFLICT (instrument_id, date) DO NOTHING"
            )
            written = cursor.rowcount
            cursor.execute("DROP TABLE pricebar_incoming")
        return written

    def _executemany_insert(self, bars: pd.DataFrame) -> int:
        # SQLite stores DecimalField values as REAL, as the ORM itself does; one executemany
        # with ON CONFLICT DO NOTHING is ~20x faster than bulk_create on model instances.
        ops = connection.ops
        frame = bars.assign(
            date=bars["date"].dt.strftime("%Y-%m-%d"),
            created_at=ops.adapt_datetimefield_value(timezone.now()),
        )[_COPY_COLUMNS]
        frame = frame.astype(object).where(frame.notna(), None)
        placeholders = ", ".join(["%s"] * len(_COPY_COLUMNS))
        sql = (
            f"INSERT INTO {_BAR_TABLE} ({', '.join(_COPY_COLUMNS)}) VALUES ({placeholders}) "  # noqa: S608 (constants)
            "ON CONFLICT (instrument_id, date) DO NOTHING"
        )
        with connection.cursor() as cursor:
            cursor.executemany(sql, frame.itertuples(index=False, name=None))
            return cursor.rowcount

    # --- reading -------------------------------------------------------------

    def read_bars(self, symbols: Sequence[str], start: date | None, end: date | None) -> pd.DataFrame:
        ids = _instrument_ids(symbols)
        rows = PriceBar.objects.filter(instrument_id__in=ids.values())
        if start:
            rows = rows.filter(date__gte=start)
        if end:
            rows = rows.filter(date__lte=end)
        values = rows.order_by("instrument__symbol", "date").values_list(
            "instrument__symbol", "date", *PRICE_COLUMNS, "volume", "source", "synthetic"
        )
        frame = pd.DataFrame.from_records(list(values), columns=LONG_COLUMNS)
        for column in PRICE_COLUMNS:
            frame[column] = frame[column].astype("float64")
        return normalise_long(frame)

    def price_frame(self, symbols: Sequence[str], start: date, end: date) -> pd.DataFrame:
        ids = _instrument_ids(symbols)
        symbol_by_id = {v: k for k, v in ids.items()}
        if not ids:
            return long_to_wide(pd.DataFrame(), symbols)
        if _postgres():
            long = self._copy_adj_closes(list(ids.values()), start, end)
        else:
            values = PriceBar.objects.filter(
                instrument_id__in=ids.values(), date__gte=start, date__lte=end
            ).values_list("instrument_id", "date", "adj_close")
            long = pd.DataFrame.from_records(list(values), columns=["instrument_id", "date", "adj_close"])
            long["adj_close"] = long["adj_close"].astype("float64")
            long["date"] = pd.to_datetime(long["date"])
        long["symbol"] = long["instrument_id"].map(symbol_by_id)
        return long_to_wide(long, symbols)

    def _copy_adj_closes(self, instrument_ids: list[int], start: date, end: date) -> pd.DataFrame:
        # float8 conversion happens in PostgreSQL (correctly rounded) and prints round-trip digits;
        # pandas 3 parses them exactly.
        query = (
            f"COPY (SELECT instrument_id, date, adj_close::float8 FROM {_BAR_TABLE} "  # noqa: S608 (constant table)
            "WHERE instrument_id = ANY(%s) AND date BETWEEN %s AND %s) TO STDOUT"
        )
        buffer = io.BytesIO()
        with connection.cursor() as cursor, cursor.copy(query, (instrument_ids, start, end)) as copy:
            for chunk in copy:
                buffer.write(chunk)
        buffer.seek(0)
        return pd.read_csv(
            buffer,
            sep="\t",
            header=None,
            names=["instrument_id", "date", "adj_close"],
            dtype={"instrument_id": "int64", "adj_close": "float64"},
            parse_dates=["date"],
            date_format="%Y-%m-%d",
        )

    def last_dates(self, symbols: Sequence[str]) -> dict[str, date | None]:
        found = dict(
            PriceBar.objects.filter(instrument__symbol__in=list(symbols))
            .values("instrument__symbol")
            .annotate(last=Max("date"))
            .values_list("instrument__symbol", "last")
        )
        return {symbol: found.get(symbol) for symbol in symbols}

    def stored_dates(self, symbols: Sequence[str], start: date, end: date) -> dict[str, pd.DatetimeIndex]:
        rows = PriceBar.objects.filter(instrument__symbol__in=list(symbols), date__gte=start, date__lte=end)
        frame = pd.DataFrame.from_records(
            list(rows.values_list("instrument__symbol", "date")), columns=["symbol", "date"]
        )
        return {
            symbol: pd.DatetimeIndex(pd.to_datetime(group["date"])).sort_values()
            for symbol, group in frame.groupby("symbol")
        }

    def symbols(self) -> list[str]:
        return list(
            Instrument.objects.filter(bars__isnull=False).distinct().order_by("symbol").values_list("symbol", flat=True)
        )
