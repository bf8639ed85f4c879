"""Instruments and adjusted closes."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework import serializers

from api.schema import SYMBOL_REQUEST_PATTERN
from api.serializers.base import (
    DateField,
    DecimalField,
    StrictSerializer,
    SymbolDictField,
    SymbolField,
    strict_field_mapping,
)
from marketdata.models import Instrument

MAX_SYMBOLS = 50
MAX_DAYS = 366 * 20
_ONE_SYMBOL = SYMBOL_REQUEST_PATTERN.removeprefix("^").removesuffix("$")
#: Comma-separated symbols as a client sends them, e.g. "SPY,bnd" (no spaces, no empty items); the
#: schema shows the end anchor as "$".
SYMBOLS_PATTERN = f"^{_ONE_SYMBOL}(?:,{_ONE_SYMBOL}){{0,{MAX_SYMBOLS - 1}}}\\Z"
PRICE_PLACES = 6


class InstrumentSerializer(serializers.ModelSerializer):
    serializer_field_mapping = strict_field_mapping(serializers.ModelSerializer.serializer_field_mapping)
    symbol = SymbolField(read_only=True)

    class Meta:
        model = Instrument
        fields = ["symbol", "name", "asset_class", "sector", "region", "esg_score", "fractionable"]


class PricesQuerySerializer(StrictSerializer):
    symbols = serializers.RegexField(
        SYMBOLS_PATTERN,
        trim_whitespace=False,
        max_length=MAX_SYMBOLS * 21,
        help_text=f"Comma-separated ticker symbols, e.g. SPY,BND (at most {MAX_SYMBOLS}).",
        error_messages={"invalid": f"must be comma-separated ticker symbols like SPY,BND (at most {MAX_SYMBOLS})"},
    )
    start = DateField(required=False, help_text="First date; default a year before end.")
    end = DateField(required=False, help_text="Last date (inclusive); default today.")

    def validate_symbols(self, value: str) -> list[str]:
        symbols = list(dict.fromkeys(symbol.upper() for symbol in value.split(",")))
        unknown = sorted(
            set(symbols) - set(Instrument.objects.filter(symbol__in=symbols).values_list("symbol", flat=True))
        )
        if unknown:
            raise serializers.ValidationError(f"unknown symbol {', '.join(unknown)}")
        return symbols

    def validate(self, attrs: dict) -> dict:
        end = attrs.get("end") or timezone.localdate()
        start = attrs.get("start") or end - timedelta(days=365)
        if start > end:
            raise serializers.ValidationError({"start": "must not be after end"})
        if (end - start).days > MAX_DAYS:
            raise serializers.ValidationError({"start": "at most 20 years of prices per request"})
        return {**attrs, "start": start, "end": end}


class PriceRowSerializer(serializers.Serializer):
    date = serializers.DateField()
    closes = SymbolDictField(
        child=DecimalField(max_digits=None, decimal_places=PRICE_PLACES, allow_null=True),
        help_text="Adjusted close in USD per symbol; null when the symbol has no bar that day.",
    )


class PricesSerializer(serializers.Serializer):
    symbols = serializers.ListField(child=SymbolField())
    start = serializers.DateField()
    end = serializers.DateField()
    rows = PriceRowSerializer(many=True, help_text="One row per trading day, oldest first.")
