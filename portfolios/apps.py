from django.apps import AppConfig


class PortfoliosConfig(AppConfig):
    """Users' portfolios, holdings, policies, rebalance runs and the daily pipeline."""

    name = "portfolios"
