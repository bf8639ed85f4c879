from django.apps import AppConfig


class MarketdataConfig(AppConfig):
    """Instruments, daily price bars, providers, price stores and data quality."""

    name = "marketdata"
    verbose_name = "Market data"
