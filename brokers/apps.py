from django.apps import AppConfig


class BrokersConfig(AppConfig):
    """Broker accounts, orders and the adapters behind one interface."""

    name = "brokers"
