from django.apps import AppConfig


class PortfoliosConfig(AppConfig):
    """Users' portfolios, holdings, policies, rebalance runs and the daily pipeline."""

    name = "portfolios"

    def ready(self) -> None:
        from portfolios import subscribers  # noqa: F401 - connects the built-in event receivers
