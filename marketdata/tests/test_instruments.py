"""Instruments as the services create them: the reference table's facts, and fractionability "not
known" for a symbol nobody has answered for (never silently whole shares)."""

from __future__ import annotations

from importlib import import_module

import pytest
from django.apps import apps

from marketdata.models import Instrument
from marketdata.services import instruments_ensure

pytestmark = pytest.mark.django_db


def test_fractionability_comes_from_the_reference_table_or_is_not_known():
    created = instruments_ensure(symbols=["VTI", "^GSPC", "ABCD"])
    assert {symbol: i.fractionable for symbol, i in created.items()} == {"VTI": True, "^GSPC": False, "ABCD": None}
    assert (created["ABCD"].name, created["ABCD"].asset_class) == ("ABCD", "other")


def test_symbols_created_whole_shares_without_anyone_saying_so_become_not_known():
    Instrument.objects.create(symbol="ABCD", fractionable=False)  # how unknown symbols used to be created
    Instrument.objects.create(symbol="^GSPC", fractionable=False)  # the reference table says so
    Instrument.objects.create(symbol="WXYZ", fractionable=True)  # someone said so
    migration = import_module("marketdata.migrations.0002_instrument_fractionable_not_known")

    migration.unknown_symbols_not_known(apps, None)

    assert dict(Instrument.objects.values_list("symbol", "fractionable")) == {
        "ABCD": None,
        "^GSPC": False,
        "WXYZ": True,
    }
