"""Policy validation: every error names the field it is about."""

from __future__ import annotations

import pytest

from optimization.core.errors import ConfigurationError
from optimization.core.rebalancing import BandPolicy, TradingPolicy
from optimization.core.rebalancing.policy import BAND_MODES, CASH_FLOW_TARGETS


def test_the_band_modes_and_cash_flow_targets():
    assert BAND_MODES == ("absolute", "relative", "five_twenty_five", "hybrid")
    assert CASH_FLOW_TARGETS == ("target", "band_edge")
    assert BandPolicy().unheld_outside_band is False
    assert TradingPolicy().cash_flow_to == "target"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: BandPolicy(band_mode="widest"), r"^band_mode: 'widest' is not one of absolute, relative, "),
        (lambda: BandPolicy(unheld_outside_band="yes"), r"^unheld_outside_band: expected true or false, got 'yes'"),
        (lambda: TradingPolicy(cash_flow_to="edge"), r"^cash_flow_to: 'edge' is not one of target, band_edge"),
    ],
)
def test_invalid_values_name_their_field(build, message):
    with pytest.raises(ConfigurationError, match=message):
        build()
