"""JSON request bodies read exactly: numbers with a fraction or an exponent become Decimals (never
floats, which would round 0.1 or a 30-digit quantity), and NaN / Infinity become Decimals that
every number field then refuses under its own name."""

from __future__ import annotations

import json
from decimal import Decimal

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

#: JSON's non-standard constants, kept as values so the field that got one names itself in the error.
_CONSTANTS = {"NaN": Decimal("NaN"), "Infinity": Decimal("Infinity"), "-Infinity": Decimal("-Infinity")}


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = stream.read().decode(encoding)
            return json.loads(text, parse_float=Decimal, parse_constant=_CONSTANTS.__getitem__)
        except RecursionError:
            raise ParseError("JSON parse error: nested too deeply") from None
        except ValueError as error:  # also UnicodeDecodeError, and integers longer than Python reads
            raise ParseError(f"JSON parse error: {error}") from None
