"""A client generated from the published schema with openapi-python-client runs the API flow of
docs/api.md against the in-process app: every request it builds is accepted, every answer parses
into its models and validates against the schema (openapi-core)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from api.services import api_token_create
from rebalancer_site.wsgi import application

from .schema_check import answer_check, published_schema, schema_validator

pytestmark = pytest.mark.fuzz
PACKAGE = "rebalancer_api_client"


@pytest.fixture
def generated(tmp_path):
    """The client package generated from the schema (warnings are failures), imported."""
    (tmp_path / "schema.json").write_text(json.dumps(published_schema()))
    (tmp_path / "config.yaml").write_text(f"package_name_override: {PACKAGE}\npost_hooks: []\n")
    generator = Path(sys.executable).with_name("openapi-python-client")
    result = subprocess.run(
        [
            str(generator),
            "generate",
            "--path",
            "schema.json",
            "--config",
            "config.yaml",
            "--meta",
            "none",
            "--output-path",
            PACKAGE,
            "--fail-on-warning",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        yield lambda name: importlib.import_module(f"{PACKAGE}.{name}")
    finally:
        sys.path.remove(str(tmp_path))
        for name in [module for module in sys.modules if module.split(".")[0] == PACKAGE]:
            del sys.modules[name]


class CheckedTransport(httpx.WSGITransport):
    """The app in this process; each answer is checked against the schema and kept."""

    def __init__(self):
        super().__init__(app=application)
        self.validator = schema_validator()
        self.statuses: list[tuple[str, str, int]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        body = response.read()
        path = request.url.path
        answer_check(
            self.validator, request.method, path, status=response.status_code, body=body, headers=response.headers
        )
        self.statuses.append((request.method, path, response.status_code))
        return response


def test_the_readme_flow_through_a_generated_client(owner, test_connection_kept, generated):
    _, key = api_token_create(user=owner.user, name="generated client")
    transport = CheckedTransport()
    client = generated("client").AuthenticatedClient(
        base_url="http://testserver", token=key, raise_on_unexpected_status=True, httpx_args={"transport": transport}
    )
    models = generated("models")

    def operation(name: str):
        tag = {"runs": "runs", "broker": "broker_accounts", "prices": "market_data"}.get(
            name.split("_")[0], "portfolios"
        )
        return generated(f"api.{tag}.{name}")

    page = operation("portfolios_list").sync(client=client, ordering=models.PortfoliosListOrdering("-updated_at"))
    pk = page.results[0].id

    body = {"holdings": [{"symbol": "SPY", "quantity": "120"}, {"symbol": "BND", "quantity": 310.5}]}
    held = operation("portfolios_holdings_update").sync(pk, client=client, body=models.HoldingsRequest.from_dict(body))
    assert {holding.symbol for holding in held.holdings} == {"SPY", "BND"}
    patch = {"holdings": [{"symbol": "QQQ", "quantity": "15"}], "create_missing_instruments": False}
    operation("portfolios_holdings_partial_update").sync(
        pk, client=client, body=models.PatchedHoldingsRequest.from_dict(patch)
    )
    cash = operation("portfolios_cash_update").sync(
        pk, client=client, body=models.CashRequest.from_dict({"cash_usd": "2500.00"})
    )
    assert cash.cash_usd == "2500.0000"

    planned = operation("portfolios_rebalance_create").sync_detailed(
        pk, client=client, body=models.RebalanceInputRequest.from_dict({}), idempotency_key=str(uuid.uuid4())
    )
    assert planned.status_code in (200, 201)
    run_list = operation("runs_list").sync(client=client, portfolio=pk, ordering=models.RunsListOrdering("-created_at"))
    run = operation("runs_retrieve").sync(run_list.results[0].id, client=client)
    assert run.needs and run.report_url
    approved = operation("runs_approve_create").sync_detailed(
        run.id, client=client, body=models.ApproveInputRequest.from_dict({})
    )
    assert approved.status_code in (200, 409)
    changed = operation("portfolios_partial_update").sync(
        pk, client=client, body=models.PatchedPortfolioRequest.from_dict({"mode": "propose", "calendar": None})
    )
    assert changed.mode == models.ModeEnum.PROPOSE and changed.calendar is None

    targets = operation("portfolios_targets_retrieve").sync(pk, client=client)
    assert targets.source in (models.SourceEnum.MANUAL, models.SourceEnum.OPTIMIZER)
    accounts = operation("broker_accounts_list").sync(client=client)
    assert accounts.count >= 1
    prices = operation("prices_retrieve").sync(client=client, symbols="SPY,BND", start=run.trading_date)
    assert prices.rows
    assert all(status < 500 for _, _, status in transport.statuses)
