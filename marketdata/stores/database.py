"""The database price store: the PriceBar table (SQLite or PostgreSQL).

Every lookup goes through the packed primary key (`marketdata.models.bar_id`):
an instrument's bars between two days are one key range.

PostgreSQL bulk work avoids per-row Python and per-row server work, because
imports are a million bars and a price frame is a hundred thousand:

- write: writers are serialised by a transaction-level advisory lock, keys
  already stored are read once and filtered out, and the new rows stream in one
  `COPY ... FROM STDIN` of CSV that pyarrow (C++) writes chunk by chunk, so the
  server parses one chunk while the next is formatted;
- read: one query aggregates (day, adjusted close) into a single binary string
  that numpy decodes in place.

SQLite takes one `executemany` with ON CONFLICT DO NOTHING and plain queries.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Sequence
from datetime import date, timedelta
from functools import reduce
from operator import or_

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from django.db import connection, transaction
from django.db.models import Max, Q, QuerySet
from psycopg.copy import QueuedLibpqWriter

from marketdata.models import DAY_ZERO, Instrument, PriceBar, bar_id, bar_id_range
from marketdata.stores.base import LONG_COLUMNS, PRICE_COLUMNS, PriceStore, normalise_long, wide_frame

_BAR_TABLE = PriceBar._meta.db_table
_INSERT_COLUMNS = ["id", "instrument_id", "date", *PRICE_COLUMNS, "adj_close_f8", "volume", "source", "synthetic"]
# One advisory lock id for every writer of bars.
_WRITE_LOCK_ID = zlib.crc32(b"marketdata.pricebar.write")
_COPY_CHUNK_ROWS = 100_000
_OR_BATCH = 200
_DAY_ZERO = np.datetime64(DAY_ZERO.isoformat(), "D")
_DAY_MASK = (1 << 32) - 1
# A bar id and its adjusted close, big-endian and packed, as PostgreSQL's int8send/float8send write them.
_ID_PRICE = np.dtype([("id", ">i8"), ("adj_close", ">f8")])

_RANGES_SQL = "unnest(%s::bigint[], %s::bigint[]) AS wanted(first_id, last_id)"
_IN_RANGES = f"JOIN {_RANGES_SQL} ON b.id BETWEEN wanted.first_id AND wanted.last_id"
# Table and column names are constants of this module; values always go as parameters.
_STORED_IDS_SQL = f"SELECT string_agg(int8send(b.id), ''::bytea) FROM {_BAR_TABLE} b {_IN_RANGES}"  # noqa: S608
_LAST_IDS_SQL = (
    "SELECT wanted.first_id, (SELECT max(b.id) FROM "  # noqa: S608
    f"{_BAR_TABLE} b WHERE b.id BETWEEN wanted.first_id AND wanted.last_id) FROM {_RANGES_SQL}"
)
_LAST_DAY = date(9999, 12, 31)
_CLOSES_SQL = (
    "SELECT string_agg(int8send(b.id) || float8send(b.adj_close_f8), ''::bytea) "  # noqa: S608
    f"FROM {_BAR_TABLE} b {_IN_RANGES}"
)
_INSTRUMENT_TABLE = Instrument._meta.db_table
# Each instrument's last positive close between two day offsets: one backward index probe each.
_LATEST_SQL = (
    f"SELECT i.symbol, b.id, b.adj_close_f8 FROM {_INSTRUMENT_TABLE} i CROSS JOIN LATERAL ("  # noqa: S608
    f"SELECT id, adj_close_f8 FROM {_BAR_TABLE} "
    "WHERE id BETWEEN (i.id::bigint << 32) + %s AND (i.id::bigint << 32) + %s "
    "AND adj_close_f8 > 0 AND adj_close_f8 <> 'NaN'::float8 ORDER BY id DESC LIMIT 1) b WHERE i.symbol = ANY(%s)"
)


class UnknownInstrument(ValueError):
    """Bars were given for a symbol with no Instrument row."""


def _day_offset(day: date) -> int:
    """The low 32 bits of a bar id: days since DAY_ZERO (clamped at it)."""
    return (max(day, DAY_ZERO) - DAY_ZERO).days


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def _instrument_ids(symbols: Sequence[str]) -> dict[str, int]:
    return dict(Instrument.objects.filter(symbol__in=list(symbols)).values_list("symbol", "id"))


def _bar_ids(instrument_ids: np.ndarray, dates: pd.Series) -> np.ndarray:
    days = (np.asarray(dates, dtype="datetime64[D]") - _DAY_ZERO).astype("int64")
    return (instrument_ids.astype("int64") << 32) | days


def _ranges(instrument_ids: Sequence[int], start: date, end: date) -> tuple[list[int], list[int]]:
    pairs = [bar_id_range(i, start, end) for i in instrument_ids]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _bars_in_ranges(instrument_ids: Sequence[int], start: date | None, end: date | None) -> list[QuerySet[PriceBar]]:
    """Querysets of the instruments' bars between two days, a batch of instruments each.

    Batches keep the OR of key ranges well below SQLite's expression depth limit (1000).
    """
    first, last = _ranges(list(instrument_ids), start or DAY_ZERO, end or _LAST_DAY)
    pairs = list(zip(first, last, strict=True))
    return [
        PriceBar.objects.filter(reduce(or_, (Q(pk__gte=lo, pk__lte=hi) for lo, hi in pairs[i : i + _OR_BATCH])))
        for i in range(0, len(pairs), _OR_BATCH)
    ]


def _arrow_rows(bars: pd.DataFrame) -> pa.Table:
    """The rows to COPY, as an Arrow table in `_INSERT_COLUMNS` order.

    Built column by column from numpy: NaN prices become nulls (empty CSV
    fields, NULL in COPY) and datetime64 days become dates, without a Python
    object per value.
    """
    columns = {
        "id": pa.array(bars["id"].to_numpy()),
        "instrument_id": pa.array(bars["instrument_id"].to_numpy()),
        "date": pa.array(bars["date"].to_numpy().astype("datetime64[D]")),
    }
    for name in (*PRICE_COLUMNS, "adj_close_f8"):
        columns[name] = pa.array(bars[name].to_numpy(), from_pandas=True)
    columns["volume"] = pa.array(bars["volume"], type=pa.int64(), from_pandas=True)
    columns["source"] = pa.array(bars["source"], type=pa.string())
    columns["synthetic"] = pa.array(bars["synthetic"].to_numpy())
    return pa.table(columns)


def _stored_ids_in(cursor, instrument_ids: Sequence[int], start: date, end: date) -> np.ndarray:
    """Ids of the stored bars of the instruments between two days (PostgreSQL, one round trip)."""
    cursor.execute(_STORED_IDS_SQL, list(_ranges(instrument_ids, start, end)))
    blob = cursor.fetchone()[0]
    return np.frombuffer(blob or b"", dtype=">i8").astype("int64")


class DatabasePriceStore(PriceStore):
    name = "database"

    # --- writing -------------------------------------------------------------

    def write_bars(self, bars: pd.DataFrame) -> int:
        if bars.empty:
            return 0
        bars = normalise_long(bars)
        codes, symbols = pd.factorize(bars["symbol"])
        ids = _instrument_ids(list(symbols))
        unknown = sorted(set(symbols) - set(ids))
        if unknown:
            raise UnknownInstrument(f"no instrument for {', '.join(unknown)}")
        instrument_ids = np.array([ids[s] for s in symbols], dtype="int64")[codes]
        bars = bars.assign(
            id=_bar_ids(instrument_ids, bars["date"]), instrument_id=instrument_ids, adj_close_f8=bars["adj_close"]
        )
        with transaction.atomic():
            if _postgres():
                return self._copy_new_rows(bars)
            return self._executemany_insert(bars)

    def _copy_new_rows(self, bars: pd.DataFrame) -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_WRITE_LOCK_ID])
            bars = bars[~np.isin(bars["id"].to_numpy(), self._stored_ids(cursor, bars))]
            if bars.empty:
                return 0
            columns = ", ".join(_INSERT_COLUMNS)
            options = pa_csv.WriteOptions(include_header=False, quoting_style="needed")
            # The queued writer sends from a thread, so the next chunk is formatted while the server parses.
            copy_sql = f"COPY {_BAR_TABLE} ({columns}) FROM STDIN WITH (FORMAT csv)"
            raw = cursor.cursor  # the psycopg cursor: Django's debug wrapper takes no writer argument
            with raw.copy(copy_sql, writer=QueuedLibpqWriter(raw)) as copy:
                for first in range(0, len(bars), _COPY_CHUNK_ROWS):
                    buffer = io.BytesIO()
                    pa_csv.write_csv(_arrow_rows(bars.iloc[first : first + _COPY_CHUNK_ROWS]), buffer, options)
                    copy.write(buffer.getbuffer())
        return len(bars)

    def _stored_ids(self, cursor, bars: pd.DataFrame) -> np.ndarray:
        first_day, last_day = bars["date"].min().date(), bars["date"].max().date()
        return _stored_ids_in(cursor, sorted(set(bars["instrument_id"].tolist())), first_day, last_day)

    def _executemany_insert(self, bars: pd.DataFrame) -> int:
        # SQLite keeps DecimalField values as REAL, as the ORM itself does.
        frame = bars.assign(date=bars["date"].dt.strftime("%Y-%m-%d"))[_INSERT_COLUMNS]
        frame = frame.astype(object).where(frame.notna(), None)
        placeholders = ", ".join(["%s"] * len(_INSERT_COLUMNS))
        sql = (
            f"INSERT INTO {_BAR_TABLE} ({', '.join(_INSERT_COLUMNS)}) VALUES ({placeholders}) "  # noqa: S608 (constants)
            "ON CONFLICT (id) DO NOTHING"
        )
        with connection.cursor() as cursor:
            cursor.executemany(sql, frame.itertuples(index=False, name=None))
            return cursor.rowcount

    # --- reading -------------------------------------------------------------

    def read_bars(self, symbols: Sequence[str], start: date | None, end: date | None) -> pd.DataFrame:
        ids = _instrument_ids(symbols)
        records = []
        for bars in _bars_in_ranges(ids.values(), start, end):
            records += bars.values_list("instrument__symbol", "date", *PRICE_COLUMNS, "volume", "source", "synthetic")
        frame = pd.DataFrame.from_records(records, columns=LONG_COLUMNS)
        for column in PRICE_COLUMNS:
            frame[column] = frame[column].astype("float64")
        return normalise_long(frame)

    def synthetic_bars(self, bars: dict[str, date]) -> set[str]:
        # One indexed lookup by primary key instead of a frame of the bars.
        ids = _instrument_ids(list(bars))
        keys = [bar_id(ids[symbol], day) for symbol, day in bars.items() if symbol in ids]
        flagged = PriceBar.objects.filter(pk__in=keys, synthetic=True).values_list("instrument__symbol", flat=True)
        return set(flagged)

    def price_frame(self, symbols: Sequence[str], start: date, end: date) -> pd.DataFrame:
        ids = _instrument_ids(symbols)
        if _postgres() and ids:
            bar_ids, closes = self._aggregated_closes(list(ids.values()), start, end)
        else:
            rows = [
                r for bars in _bars_in_ranges(ids.values(), start, end) for r in bars.values_list("id", "adj_close_f8")
            ]
            pairs = np.array(rows, dtype=[("id", "int64"), ("adj_close", "float64")])
            bar_ids, closes = pairs["id"], pairs["adj_close"]
        # Instrument id -> column, through a lookup array indexed by id.
        lookup = np.full(max(ids.values(), default=0) + 1, -1, dtype="int64")
        for column, symbol in enumerate(symbols):
            if symbol in ids:
                lookup[ids[symbol]] = column
        dates = _DAY_ZERO + (bar_ids & _DAY_MASK).astype("timedelta64[D]")
        return wide_frame(symbols, lookup[bar_ids >> 32], dates, closes)

    def _aggregated_closes(self, instrument_ids: list[int], start: date, end: date) -> tuple[np.ndarray, np.ndarray]:
        with connection.cursor() as cursor:
            cursor.execute(_CLOSES_SQL, list(_ranges(instrument_ids, start, end)))
            blob = cursor.fetchone()[0]
        rows = np.frombuffer(blob or b"", dtype=_ID_PRICE)
        return rows["id"].astype("int64"), rows["adj_close"].astype("float64")

    def latest_closes(self, symbols: Sequence[str], start: date, end: date) -> dict[str, tuple[date, float]]:
        if not _postgres():
            return super().latest_closes(symbols, start, end)
        with connection.cursor() as cursor:
            cursor.execute(_LATEST_SQL, [_day_offset(start), _day_offset(end), list(symbols)])
            rows = cursor.fetchall()
        return {symbol: (DAY_ZERO + timedelta(days=bar & _DAY_MASK), close) for symbol, bar, close in rows}

    def last_dates(self, symbols: Sequence[str]) -> dict[str, date | None]:
        ids = _instrument_ids(symbols)
        last_ids: dict[int, int | None] = {}
        if _postgres() and ids:
            # The largest key of each instrument's range is its latest bar: one index probe each.
            with connection.cursor() as cursor:
                cursor.execute(_LAST_IDS_SQL, list(_ranges(list(ids.values()), DAY_ZERO, _LAST_DAY)))
                last_ids = {first >> 32: last for first, last in cursor.fetchall()}
        else:
            for instrument_id in ids.values():
                lo, hi = bar_id_range(instrument_id, DAY_ZERO, _LAST_DAY)
                last_ids[instrument_id] = PriceBar.objects.filter(pk__gte=lo, pk__lte=hi).aggregate(m=Max("pk"))["m"]
        found: dict[str, date | None] = {}
        for symbol in symbols:
            last = last_ids.get(ids[symbol]) if symbol in ids else None
            found[symbol] = None if last is None else (_DAY_ZERO + np.timedelta64(last & _DAY_MASK, "D")).item()
        return found

    def stored_dates(self, symbols: Sequence[str], start: date, end: date) -> dict[str, pd.DatetimeIndex]:
        ids = _instrument_ids(symbols)
        if _postgres() and ids:
            with connection.cursor() as cursor:
                bar_ids = _stored_ids_in(cursor, list(ids.values()), start, end)
        else:
            bar_ids = np.array(
                [i for bars in _bars_in_ranges(ids.values(), start, end) for i in bars.values_list("id", flat=True)],
                dtype="int64",
            )
        symbol_by_id = {v: k for k, v in ids.items()}
        dates = pd.DatetimeIndex(_DAY_ZERO + (bar_ids & _DAY_MASK).astype("timedelta64[D]")).as_unit("ns")
        owners = bar_ids >> 32
        return {symbol_by_id[i]: dates[owners == i].sort_values() for i in np.unique(owners)}

    def symbols(self) -> list[str]:
        with_bars = PriceBar.objects.values_list("instrument_id", flat=True).distinct()
        return list(Instrument.objects.filter(id__in=with_bars).order_by("symbol").values_list("symbol", flat=True))
