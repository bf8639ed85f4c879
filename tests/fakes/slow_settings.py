"""Settings for subprocesses of the concurrency tests: the project's settings, a paper broker that
answers slowly (so two executors overlap), and a clock that starts at ``TEST_FAKE_NOW`` (ISO
8601) and runs at the real pace (django-q2's ORM broker needs time to pass)."""

import os
from datetime import UTC, datetime

from django.utils import timezone

from rebalancer_site.settings import *  # noqa: F403
from rebalancer_site.settings import BROKER_ADAPTERS

BROKER_ADAPTERS = {**BROKER_ADAPTERS, "paper": "tests.fakes.slow_paper.SlowPaperBroker"}

if os.environ.get("TEST_FAKE_NOW"):
    _offset = datetime.fromisoformat(os.environ["TEST_FAKE_NOW"]) - datetime.now(UTC)
    timezone.now = lambda: datetime.now(UTC) + _offset
