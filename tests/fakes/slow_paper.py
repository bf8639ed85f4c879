"""The paper broker, answering its clock slowly: a window in which a second executor arrives."""

import os
import time

from brokers.adapters.paper import PaperBroker
from brokers.base import Clock


class SlowPaperBroker(PaperBroker):
    def clock(self) -> Clock:
        time.sleep(float(os.environ.get("TEST_SLOW_BROKER_SECONDS", "2")))
        return super().clock()
