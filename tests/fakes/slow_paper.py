"""The paper broker, answering slowly: windows in which a second executor arrives, or in which a
worker can be killed between the broker accepting an order and the answer being recorded."""

import os
import time
from collections.abc import Sequence

from brokers.adapters.paper import PaperBroker
from brokers.base import BrokerError, BrokerOrder, Clock, OrderRequest


class SlowPaperBroker(PaperBroker):
    def clock(self) -> Clock:
        time.sleep(float(os.environ.get("TEST_SLOW_BROKER_SECONDS", "2")))
        return super().clock()

    def submit_orders(self, requests: Sequence[OrderRequest]) -> list[BrokerOrder | BrokerError]:
        # One order or a batch: the paper broker sends both through here.
        answers = super().submit_orders(requests)
        time.sleep(float(os.environ.get("TEST_SLOW_SUBMIT_SECONDS", "0")))
        return answers
