"""The paper broker, answering slowly: windows in which a second executor arrives, or in which a
worker can be killed between the broker accepting an order and the answer being recorded.

``TEST_SUBMIT_MARKER``: a file created once the broker has taken a batch (before the pause)."""

import os
import time
from collections.abc import Sequence
from pathlib import Path

from brokers.adapters.paper import PaperBroker
from brokers.base import BrokerError, BrokerOrder, Clock, OrderRequest


class SlowPaperBroker(PaperBroker):
    def clock(self) -> Clock:
        time.sleep(float(os.environ.get("TEST_SLOW_BROKER_SECONDS", "2")))
        return super().clock()

    def submit_orders(self, requests: Sequence[OrderRequest]) -> list[BrokerOrder | BrokerError]:
        # One order or a batch: the paper broker sends both through here.
        answers = super().submit_orders(requests)
        if os.environ.get("TEST_SUBMIT_MARKER"):
            Path(os.environ["TEST_SUBMIT_MARKER"]).touch()
        time.sleep(float(os.environ.get("TEST_SLOW_SUBMIT_SECONDS", "0")))
        return answers
