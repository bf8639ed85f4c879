"""schemathesis against the in-process app, as two users who must not see each other's objects.

Every operation of the schema gets generated requests (valid and invalid); each response must not
be a 5xx, must match the schema (status, content type, headers, body), and the object-level
authorization check replays one user's successful reads as the other user. Bounded by
``API_FUZZ_EXAMPLES`` examples per operation (default 8) and ``API_FUZZ_WORKFLOWS`` sequences of
linked calls (default 12); ``-m "not fuzz"`` leaves this module out.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from api.models import ApiToken
from portfolios.tests.execution_factories import paper_portfolio, planned_run
from rebalancer_site.wsgi import application

EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "8"))
WORKFLOWS = int(os.environ.get("API_FUZZ_WORKFLOWS", "12"))
PEERS = ("alice", "bob")
pytestmark = pytest.mark.fuzz
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "ignored_auth",
    "object_level_authorization",
)


# Fixed keys, so the schema (and its auth document) can be loaded when the module is collected.
KEYS = {name: f"rb_fuzz_{name}_" + "x" * 32 for name in PEERS}


def _config() -> schemathesis.config.SchemathesisConfig:
    auth = [
        {"name": name, "fixedHeaders": [{"name": "Authorization", "value": f"Bearer {key}"}]}
        for name, key in KEYS.items()
    ]
    path = Path(tempfile.mkdtemp(prefix="api-fuzz-")) / "auth.json"
    path.write_text(json.dumps({"auth": auth}))
    return schemathesis.config.SchemathesisConfig.from_dict(
        {
            "seed": 8,
            "generation": {"max-examples": EXAMPLES},
            "auth": {"wfc": {"path": str(path), "peers": list(PEERS)}},
            "checks": {
                **{name: {"enabled": True} for name in CHECKS},
                # Heuristics that call a 400 for an id that is not the caller's (a run filter by another
                # user's portfolio) or a 404 for an empty page a failure: not this API's contract.
                **{name: {"enabled": False} for name in ("positive_data_acceptance", "negative_data_rejection")},
            },
        }
    )


schema = schemathesis.openapi.from_wsgi("/api/schema/", application, config=_config())


@pytest.fixture
def test_connection_kept():
    """The app is called through WSGI, not Django's test client: like that client, keep the end of a
    request from closing the test's database connection (PostgreSQL; its transaction holds the data)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def two_users(prices, clock, settings, test_connection_kept):
    """alice and bob, each with a paper-broker portfolio, holdings, a planned run and the token of KEYS."""
    settings.REST_FRAMEWORK = {
        **django_settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"user": "100000/min", "anon": "100000/min", "ip": "100000/min"},
    }
    for name, key in KEYS.items():
        portfolio = paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000}, cash_usd=500, username=name)
        planned_run(portfolio)
        ApiToken.objects.create(
            user=portfolio.owner, name="fuzz", key_digest=hashlib.sha256(key.encode()).hexdigest(), prefix=key[:8]
        )


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_fuzzed(case, two_users):
    case.call_and_validate()


def test_api_workflows_fuzzed(two_users):
    """Sequences of calls linked through their responses (create, then read, update, delete what was
    created), as either user: the object-level check replays each read as the other user."""

    class Workflow(schema.as_state_machine()):
        """Each sequence starts from the same data (its writes are rolled back afterwards), so a
        failing sequence replays the same way when hypothesis shrinks it."""

        def setup(self) -> None:
            self.transaction = transaction.atomic()
            self.transaction.__enter__()

        def teardown(self) -> None:
            transaction.set_rollback(True)
            self.transaction.__exit__(None, None, None)

    run_state_machine_as_test(
        Workflow,
        settings=settings(
            max_examples=WORKFLOWS,
            stateful_step_count=6,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        ),
    )
