"""Models of the brokers app: accounts, orders and their events, the kill switch, paper broker state."""

from .accounts import CREDENTIAL_FIELDS, REQUIRED_CREDENTIALS, BrokerAccount
from .controls import KillSwitch
from .orders import AppendOnlyError, Order, OrderEvent
from .paper import PaperAccount, PaperOrder, PaperPosition

__all__ = [
    "CREDENTIAL_FIELDS",
    "REQUIRED_CREDENTIALS",
    "AppendOnlyError",
    "BrokerAccount",
    "KillSwitch",
    "Order",
    "OrderEvent",
    "PaperAccount",
    "PaperOrder",
    "PaperPosition",
]
