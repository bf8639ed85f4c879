"""Fixtures shared by the market-data tests."""

from tests.fakes.alpaca_server import fake_alpaca_server

__all__ = ["fake_alpaca_server"]
