"""Settings for subprocesses of the concurrency tests: the project's settings, a paper broker that
answers slowly (so two executors overlap), and a clock fixed at ``TEST_FAKE_NOW`` (ISO 8601)."""

import os
from datetime import datetime

from django.utils import timezone

from rebalancer_site.settings import *  # noqa: F403
from rebalancer_site.settings import BROKER_ADAPTERS

BROKER_ADAPTERS = {**BROKER_ADAPTERS, "paper": "tests.fakes.slow_paper.SlowPaperBroker"}

if os.environ.get("TEST_FAKE_NOW"):
    _fixed_now = datetime.fromisoformat(os.environ["TEST_FAKE_NOW"])
    timezone.now = lambda: _fixed_now
