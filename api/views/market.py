"""Instruments (shared reference data) and adjusted closes from the configured price store."""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.utils import extend_schema
from rest_framework import filters
from rest_framework.response import Response

from api.schema import responses
from api.serializers.market import InstrumentSerializer, PricesQuerySerializer, PricesSerializer
from api.views.base import ApiView
from marketdata.models import Instrument
from marketdata.selectors import price_frame
from optimization.services import price_decimal

MARKET_TAG = ["market data"]


@extend_schema(tags=MARKET_TAG)
class InstrumentListView(ApiView):
    serializer_class = InstrumentSerializer
    queryset = Instrument.objects.all()
    filter_backends = [filters.SearchFilter, *ApiView.filter_backends]
    search_fields = ["symbol", "name"]
    filterset_fields = ["asset_class", "fractionable"]
    ordering_fields = ["symbol", "name"]
    ordering = ["symbol"]

    @extend_schema(
        summary="List the instruments",
        description="Every instrument the project knows (shared by all users), searched by symbol or name and "
        "filtered by asset class and whether fractional shares trade.",
        responses=responses({200: InstrumentSerializer(many=True)}, bad_request=True, not_found=True),
    )
    def get(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


@extend_schema(tags=MARKET_TAG)
class PricesView(ApiView):
    serializer_class = PricesSerializer

    @extend_schema(
        summary="Read adjusted closes",
        description="Daily adjusted closes in USD of up to 50 known instruments between two dates (at most 20 "
        "years; by default the last year), one row per trading day.",
        parameters=[PricesQuerySerializer],
        responses=responses({200: PricesSerializer}, bad_request=True),
    )
    def get(self, request):
        query = PricesQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        symbols, start, end = (query.validated_data[k] for k in ("symbols", "start", "end"))
        frame = price_frame(symbols=symbols, start=start, end=end)
        rows = [
            {"date": day.date(), "closes": {symbol: _close(values, symbol) for symbol in symbols}}
            for day, values in frame.iterrows()
        ]
        return Response(PricesSerializer({"symbols": symbols, "start": start, "end": end, "rows": rows}).data)


def _close(values, symbol: str) -> Decimal | None:
    value = values.get(symbol)
    if value is None or value != value:  # absent, or NaN: no bar that day
        return None
    return price_decimal(float(value))
