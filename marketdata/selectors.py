"""Reads of market data for the other apps: price frames, findings, freshness."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import pandas as pd
from django.db.models import QuerySet

from marketdata.models import QualityFinding
from marketdata.stores import get_price_store


def price_frame(*, symbols: Sequence[str], start: date, end: date) -> pd.DataFrame:
    """Adjusted closes (USD) from the configured store: index date, one float64 column per symbol, NaN gaps."""
    return get_price_store().price_frame(list(symbols), start, end)


def last_bar_dates(*, symbols: Sequence[str]) -> dict[str, date | None]:
    return get_price_store().last_dates(list(symbols))


def quality_findings(
    *, symbol: str | None = None, kind: str | None = None, since: date | None = None
) -> QuerySet[QualityFinding]:
    """Data-quality findings, newest fetch first."""
    findings = QualityFinding.objects.select_related("fetch_log").order_by("-fetch_log__started_at", "symbol", "date")
    if symbol:
        findings = findings.filter(symbol=symbol.upper())
    if kind:
        findings = findings.filter(kind=kind)
    if since:
        findings = findings.filter(fetch_log__started_at__date__gte=since)
    return findings
