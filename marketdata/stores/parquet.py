"""The parquet price store: one file per calendar year under `STORAGE_PATH/prices/`.

Each `YYYY.parquet` holds every symbol's bars of that year sorted by (symbol,
date), so a price question reads one or two files with a filter instead of
hundreds of per-symbol files. Files are replaced atomically (write to a
temporary file, then rename) under an exclusive lock, so readers never see a
half-written file and writers never lose each other's rows.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from django.conf import settings

from marketdata.stores.base import LONG_COLUMNS, PRICE_COLUMNS, PriceStore, column_codes_for, normalise_long, wide_frame

SCHEMA = pa.schema(
    [
        ("symbol", pa.string()),
        ("date", pa.date32()),
        *[(column, pa.float64()) for column in PRICE_COLUMNS],
        ("volume", pa.int64()),
        ("source", pa.string()),
        ("synthetic", pa.bool_()),
    ]
)


class ParquetPriceStore(PriceStore):
    name = "parquet"

    def __init__(self, root: Path | None = None):
        self.root = Path(root or settings.STORAGE_PATH) / "prices"

    # --- files -----------------------------------------------------------------

    def _year_file(self, year: int) -> Path:
        return self.root / f"{year}.parquet"

    def _years(self, start: date | None = None, end: date | None = None) -> list[int]:
        if not self.root.is_dir():
            return []
        years = sorted(int(p.stem) for p in self.root.glob("*.parquet") if p.stem.isdigit())
        return [y for y in years if (start is None or y >= start.year) and (end is None or y <= end.year)]

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(
        self, years: list[int], columns: list[str], symbols: Sequence[str] | None, start: date | None, end: date | None
    ) -> pd.DataFrame:
        filters = []
        if symbols is not None:
            filters.append(("symbol", "in", list(symbols)))
        if start is not None:
            filters.append(("date", ">=", start))
        if end is not None:
            filters.append(("date", "<=", end))
        tables = [pq.read_table(self._year_file(year), columns=columns, filters=filters or None) for year in years]
        table = pa.concat_tables(tables) if tables else SCHEMA.empty_table().select(columns)
        # datetime64 dates, not Python date objects: ten times faster to build and to index by.
        return table.to_pandas(date_as_object=False)

    # --- writing -------------------------------------------------------------

    def write_bars(self, bars: pd.DataFrame) -> int:
        if bars.empty:
            return 0
        bars = normalise_long(bars)
        written = 0
        with self._locked():
            staged: list[tuple[Path, Path]] = []
            try:
                for year, new in bars.groupby(bars["date"].dt.year):
                    path = self._year_file(int(year))
                    merged, added = self._merge(path, new)
                    if added:
                        tmp = path.with_suffix(".parquet.tmp")
                        pq.write_table(merged, tmp, compression="zstd")
                        staged.append((tmp, path))
                        written += added
            except BaseException:
                for tmp, _ in staged:
                    tmp.unlink(missing_ok=True)
                raise
            # Renames are atomic per file and happen only after every file was written.
            for tmp, path in staged:
                os.replace(tmp, path)
        return written

    def _merge(self, path: Path, new: pd.DataFrame) -> tuple[pa.Table, int]:
        new = new.assign(date=new["date"].dt.date)
        if path.exists():
            old = pq.read_table(path).to_pandas()
            key_old = pd.MultiIndex.from_frame(old[["symbol", "date"]])
            key_new = pd.MultiIndex.from_frame(new[["symbol", "date"]])
            new = new[~key_new.isin(key_old)]
            if new.empty:
                return pa.table({}), 0
            merged = pd.concat([old, new], ignore_index=True)
        else:
            merged = new
        merged = merged.sort_values(["symbol", "date"], kind="stable")[LONG_COLUMNS]
        return pa.Table.from_pandas(merged, schema=SCHEMA, preserve_index=False), len(new)

    # --- reading -------------------------------------------------------------

    def read_bars(self, symbols: Sequence[str], start: date | None, end: date | None) -> pd.DataFrame:
        frame = self._read(self._years(start, end), LONG_COLUMNS, symbols, start, end)
        return normalise_long(frame)

    def price_frame(self, symbols: Sequence[str], start: date, end: date) -> pd.DataFrame:
        filters = [("symbol", "in", list(symbols)), ("date", ">=", start), ("date", "<=", end)]
        codes, dates, closes = [], [], []
        for year in self._years(start, end):
            table = pq.read_table(
                self._year_file(year),
                columns=["symbol", "date", "adj_close"],
                filters=filters,
                read_dictionary=["symbol"],
            )
            # Symbols arrive dictionary-encoded: map each chunk's small dictionary, then index by its codes.
            for chunk in table.column("symbol").chunks:
                mapping = column_codes_for(symbols, chunk.dictionary.to_pylist())
                codes.append(mapping[chunk.indices.to_numpy(zero_copy_only=False)])
            dates.append(table.column("date").to_numpy().astype("datetime64[ns]"))
            closes.append(table.column("adj_close").to_numpy())
        return wide_frame(
            symbols,
            np.concatenate(codes) if codes else np.empty(0, "int64"),
            np.concatenate(dates) if dates else np.empty(0, "datetime64[ns]"),
            np.concatenate(closes) if closes else np.empty(0),
        )

    def last_dates(self, symbols: Sequence[str]) -> dict[str, date | None]:
        found: dict[str, date] = {}
        # Newest year first: a symbol found there needs no older file.
        for year in reversed(self._years()):
            pending = [s for s in symbols if s not in found]
            if not pending:
                break
            frame = self._read([year], ["symbol", "date"], pending, None, None)
            if not frame.empty:
                found.update({s: d.date() for s, d in frame.groupby("symbol")["date"].max().items()})
        return {symbol: found.get(symbol) for symbol in symbols}

    def stored_dates(self, symbols: Sequence[str], start: date, end: date) -> dict[str, pd.DatetimeIndex]:
        frame = self._read(self._years(start, end), ["symbol", "date"], symbols, start, end)
        return {
            symbol: pd.DatetimeIndex(pd.to_datetime(group["date"])).sort_values()
            for symbol, group in frame.groupby("symbol")
        }

    def symbols(self) -> list[str]:
        found: set[str] = set()
        for year in self._years():
            found.update(pq.read_table(self._year_file(year), columns=["symbol"]).column("symbol").unique().to_pylist())
        return sorted(found)
