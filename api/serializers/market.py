"""Instruments and adjusted closes."""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from api.serializers.base import StrictSerializer
from marketdata.models import Instrument, symbol_validator

MAX_SYMBOLS = 50
MAX_DAYS = 366 * 20


class InstrumentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Instrument
        fields = ["symbol", "name", "asset_class", "sector", "region", "esg_score", "fractionable"]


class PricesQuerySerializer(StrictSerializer):
    symbols = serializers.CharField(max_length=2000, help_text="Comma-separated, e.g. SPY,BND (at most 50).")
    start = serializers.DateField(required=False, help_text="First date; default a year before end.")
    end = serializers.DateField(required=False, help_text="Last date (inclusive); default today.")

    def validate_symbols(self, value: str) -> list[str]:
        symbols = list(dict.fromkeys(s.strip().upper() for s in value.split(",") if s.strip()))
        if not symbols:
            raise serializers.ValidationError("give at least one symbol")
        if len(symbols) > MAX_SYMBOLS:
            raise serializers.ValidationError(f"at most {MAX_SYMBOLS} symbols")
        bad = []
        for symbol in symbols:
            try:
                symbol_validator(symbol)
            except DjangoValidationError:
                bad.append(symbol)
        if bad:
            raise serializers.ValidationError(f"not a ticker symbol: {', '.join(bad)}")
        unknown = sorted(
            set(symbols) - set(Instrument.objects.filter(symbol__in=symbols).values_list("symbol", flat=True))
        )
        if unknown:
            raise serializers.ValidationError(f"unknown symbol {', '.join(unknown)}")
        return symbols

    def validate(self, attrs: dict) -> dict:
        from django.utils import timezone

        end = attrs.get("end") or timezone.localdate()
        start = attrs.get("start") or end - timedelta(days=365)
        if start > end:
            raise serializers.ValidationError({"start": "must not be after end"})
        if (end - start).days > MAX_DAYS:
            raise serializers.ValidationError({"start": "at most 20 years of prices per request"})
        return {**attrs, "start": start, "end": end}


class PricesSerializer(serializers.Serializer):
    symbols = serializers.ListField(child=serializers.CharField())
    start = serializers.DateField()
    end = serializers.DateField()
    rows = serializers.ListField(
        child=serializers.DictField(),
        help_text='[{"date": "2025-06-30", "closes": {"SPY": "612.34", "BND": null}}, ...]: adjusted closes in USD.',
    )
