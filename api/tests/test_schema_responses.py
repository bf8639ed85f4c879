"""The API flow of docs/api.md, and every other operation and error answer, validated against the
published OpenAPI schema with openapi-core: what the server sends is what the schema says."""

from __future__ import annotations

import re
import uuid

from api import urls as api_urls
from api.services import api_token_create

from .schema_check import SchemaCheckedClient, published_schema, schema_validator
from .test_isolation import METHODS

API = "/api/v1"


def checked_client(user=None) -> SchemaCheckedClient:
    client = SchemaCheckedClient(validator=schema_validator())
    if user is not None:
        _, key = api_token_create(user=user, name=f"schema check {uuid.uuid4()}")
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_the_readme_flow_answers_what_the_schema_says(owner):
    client = checked_client(owner.user)
    portfolios = client.get(f"{API}/portfolios/").json()
    pk = portfolios["results"][0]["id"]
    assert client.get(f"{API}/portfolios/?page_size=1&name=e&active=true&ordering=-updated_at").status_code == 200

    holdings = f"{API}/portfolios/{pk}/holdings/"
    body = {
        "holdings": [
            {"symbol": "SPY", "quantity": "120"},
            {"symbol": "BND", "quantity": "310.5", "cost_basis_usd": "22500"},
        ]
    }
    assert client.put(holdings, body, format="json").status_code == 200
    patch = {"holdings": [{"symbol": "QQQ", "quantity": "15"}], "create_missing_instruments": False}
    assert client.patch(holdings, patch, format="json").status_code == 200
    assert client.put(f"{API}/portfolios/{pk}/cash/", {"cash_usd": "2500.00"}, format="json").status_code == 200

    key = str(uuid.uuid4())
    planned = client.post(f"{API}/portfolios/{pk}/rebalance/", {}, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert planned.status_code in (200, 201)
    runs = client.get(f"{API}/runs/?portfolio={pk}&ordering=-created_at").json()
    run = runs["results"][0]["id"]
    assert client.get(f"{API}/runs/{run}/").status_code == 200
    assert client.post(f"{API}/runs/{run}/approve/", {}, format="json").status_code in (200, 409)
    assert client.patch(f"{API}/portfolios/{pk}/", {"mode": "propose"}, format="json").status_code == 200
    assert all(status < 500 for _, _, status in client.answers)


def test_every_operation_and_its_errors_answer_what_the_schema_says(owner, other):
    client = checked_client(owner.user)
    pk, run, account = owner.portfolio.pk, owner.run.pk, owner.spare_account.pk

    # Reads of every kind of object.
    for path in (
        f"{API}/portfolios/{pk}/",
        f"{API}/portfolios/{pk}/holdings/",
        f"{API}/portfolios/{pk}/cash/",
        f"{API}/portfolios/{pk}/targets/",
        f"{API}/runs/",
        f"{API}/runs/{run}/",
        f"{API}/runs/?status=planned&date=2025-06-30",
        f"{API}/broker-accounts/",
        f"{API}/broker-accounts/{account}/",
        f"{API}/instruments/?search=S&ordering=-symbol",
        f"{API}/prices/?symbols=SPY,bnd&start=2025-06-02&end=2025-06-30",
    ):
        assert client.get(path).status_code == 200, path

    # Targets computed by the optimizer (a plan of a portfolio without manual weights), then manual ones.
    targets = f"{API}/portfolios/{pk}/targets/"
    assert client.put(targets, {"weights": None}, format="json").status_code == 200
    client.post(f"{API}/portfolios/{pk}/rebalance/", {"cash_flow_usd": "100"}, format="json")
    assert client.get(targets).status_code == 200
    assert client.put(targets, {"weights": {"SPY": "0.7", "BND": 0.3}}, format="json").status_code == 200

    # Writes.
    created = client.post(
        f"{API}/portfolios/", {"name": "Second", "symbols": ["SPY", "BND"], "max_weight": "1"}, format="json"
    )
    assert created.status_code == 201, created.content
    assert (
        client.put(f"{API}/portfolios/{pk}/", {"name": "Renamed", "calendar": None}, format="json").status_code == 200
    )
    assert client.post(f"{API}/portfolios/{pk}/sync-from-broker/").status_code == 200
    new_account = client.post(
        f"{API}/broker-accounts/", {"label": "Practice", "paper_cash_usd": "1000"}, format="json"
    ).json()["id"]
    assert client.patch(f"{API}/broker-accounts/{new_account}/", {"label": "Drill"}, format="json").status_code == 200
    assert client.put(f"{API}/broker-accounts/{new_account}/", {"label": "Drill 2"}, format="json").status_code == 200
    assert client.delete(f"{API}/broker-accounts/{new_account}/").status_code == 204
    assert client.delete(f"{API}/portfolios/{created.json()['id']}/").status_code == 204

    # Errors: 400 (flat and nested), 404, 409, 422, 401.
    assert client.put(f"{API}/portfolios/{pk}/cash/", {"cash_usd": "-1"}, format="json").status_code == 400
    bad_rows = {"holdings": [{"symbol": "SPY", "quantity": "1"}, {"symbol": "BND", "quantity": "x"}]}
    assert client.put(f"{API}/portfolios/{pk}/holdings/", bad_rows, format="json").status_code == 400
    assert client.get(f"{API}/portfolios/?page=99").status_code == 404
    assert client.get(f"{API}/portfolios/{other.portfolio.pk}/").status_code == 404
    key = str(uuid.uuid4())
    rebalance = f"{API}/portfolios/{pk}/rebalance/"
    client.post(rebalance, {}, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert client.post(rebalance, {"cash_flow_usd": "5"}, format="json", HTTP_IDEMPOTENCY_KEY=key).status_code == 409
    empty = client.post(f"{API}/portfolios/", {"name": "Empty", "symbols": []}, format="json")
    if empty.status_code == 201:
        assert client.post(f"{API}/portfolios/{empty.json()['id']}/rebalance/", {}, format="json").status_code == 422
    assert checked_client().get(f"{API}/portfolios/").status_code == 401
    assert all(status < 500 for _, _, status in client.answers)


def test_every_operation_is_described_for_its_users():
    schema = published_schema()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), (method, path)
            assert len(operation.get("description", "")) > 20, (method, path)
            assert not re.search(r"atomic|transaction|docstring|`api\.", operation["description"]), (method, path)


def test_every_answered_field_is_required_and_typed():
    components = published_schema()["components"]["schemas"]
    for name, component in components.items():
        if name.endswith("Request") or component.get("type") != "object" or name == "Execution":
            continue
        properties = component.get("properties", {})
        assert set(component.get("required", [])) == set(properties), name
        for field, schema in properties.items():
            assert {"type", "$ref", "oneOf", "allOf", "enum"} & set(schema), (name, field)


def test_decimals_are_text_with_format_decimal_everywhere():
    components = published_schema()["components"]["schemas"]
    # Glide path knots and per-asset bounds are plain JSON numbers (ages and shares the optimizer
    # reads as floats); every amount, weight and figure is a decimal.
    for name in ("Need", "ComputedTargets", "Metrics", "Holding", "Run", "PriceRow", "BrokerAccount", "Order"):
        text = str(components[name])
        assert "'format': 'double'" not in text and "'type': 'number'" not in text.replace(
            "'type': ['string', 'number']", ""
        ), name
    assert components["Need"]["properties"]["target_weight"]["format"] == "decimal"
    assert components["ComputedTargets"]["properties"]["weights"]["additionalProperties"]["format"] == "decimal"


def test_schema_details_clients_rely_on():
    schema = published_schema()
    components = schema["components"]["schemas"]
    assert "/accounts/tokens/" in schema["components"]["securitySchemes"]["tokenAuth"]["description"]
    computed = components["Targets"]["properties"]["computed"]
    assert {"type": "null"} in computed["oneOf"]
    calendar = components["Portfolio"]["properties"]["calendar"]
    assert "BlankEnum" not in components and calendar["oneOf"][1] == {"$ref": "#/components/schemas/NullEnum"}
    assert components["NullEnum"] == {"type": "null"}
    rebalance = schema["paths"]["/api/v1/portfolios/{id}/rebalance/"]["post"]
    (key,) = [p for p in rebalance["parameters"] if p["name"] == "Idempotency-Key"]
    assert key["schema"]["maxLength"] == 255
    (ordering,) = [p for p in schema["paths"]["/api/v1/portfolios/"]["get"]["parameters"] if p["name"] == "ordering"]
    assert "-updated_at" in ordering["schema"]["enum"]
    account = components["BrokerAccount"]["properties"]
    assert {"paper_cash_usd", "paper_session_mode"} <= set(account)
    bad_requests = {
        str(operation["responses"]["400"]["content"]["application/json"]["schema"])
        for operations in schema["paths"].values()
        for operation in operations.values()
        if "400" in operation["responses"]
    }
    assert bad_requests == {"{'$ref': '#/components/schemas/ValidationErrors'}"}


#: POST operations that write nothing, so no lock can make them busy.
WRITE_NOTHING = {("post", "/api/v1/portfolios/{id}/preview/")}


def test_writing_operations_document_busy_answers():
    paths = published_schema()["paths"]
    for pattern in api_urls.v1:
        path = "/api/v1/" + re.sub(r"<int:(\w+)>", r"{id}", str(pattern.pattern))
        for method in METHODS:
            operation = paths.get(path, {}).get(method)
            if operation is None:
                continue
            assert "Retry-After" in operation["responses"]["503"]["headers"], (method, path)
            if method != "get" and (method, path) not in WRITE_NOTHING:
                assert "409" in operation["responses"], (method, path)
