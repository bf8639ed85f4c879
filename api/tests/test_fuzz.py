"""schemathesis against the in-process app, as two users who must not see each other's objects.

Every operation of the schema gets generated requests (valid and invalid) and every check
schemathesis has: no 5xx, status codes, content types, headers and bodies as documented, invalid
data refused, valid data accepted, authentication not ignored, and the object-level authorization
check that replays one user's successful reads as the other user. Bounded by
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
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from api.models import ApiToken
from portfolios.tests.execution_factories import paper_portfolio, planned_run
from rebalancer_site.wsgi import application

EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "8"))
WORKFLOWS = int(os.environ.get("API_FUZZ_WORKFLOWS", "12"))
PEERS = ("alice", "bob")
pytestmark = pytest.mark.fuzz
#: Operations whose valid-looking input can still be refused with a 400 naming the field, for rules
#: that a JSON schema cannot state: they depend on stored data (a symbol must be a known
#: instrument, a label unique among the owner's accounts, a filter's portfolio one of the
#: caller's, a paper account never live, a portfolio needs a broker account to sync from, a
#: password must be the owner's) or relate several fields (min_weight <= max_weight, weights
#: summing to 1, start before end, a trading day, not in the future). Planning that fails is 422.
STATE_DEPENDENT = {
    "portfolios_create": ["400"],
    "portfolios_update": ["400"],
    "portfolios_partial_update": ["400"],
    "portfolios_holdings_update": ["400"],
    "portfolios_holdings_partial_update": ["400"],
    "portfolios_targets_update": ["400"],
    "portfolios_rebalance_create": ["400", "422"],
    "portfolios_preview_create": ["400", "422"],
    "portfolios_sync_from_broker_create": ["400"],
    "runs_list": ["400"],
    "runs_approve_create": ["400"],
    "broker_accounts_create": ["400"],
    "broker_accounts_update": ["400"],
    "broker_accounts_partial_update": ["400"],
    "prices_retrieve": ["400"],
}
#: What schemathesis accepts for valid data by default.
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]

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
            "checks": {"enabled": True},
            "operations": [
                {
                    "include-operation-id": operation_id,
                    "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, *statuses]}},
                }
                for operation_id, statuses in STATE_DEPENDENT.items()
            ],
        }
    )


schema = schemathesis.openapi.from_wsgi("/api/schema/", application, config=_config())


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
