"""The OpenAPI schema documents every operation with its error responses; Swagger UI works offline."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

from api import urls as api_urls
from ground.env import SYMBOL_RE

from .test_isolation import METHODS


def schema() -> dict:
    response = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def test_every_endpoint_is_documented_with_its_error_responses():
    paths = schema()["paths"]
    for pattern in api_urls.v1:
        path = "/api/v1/" + re.sub(r"<int:(\w+)>", r"{id}", str(pattern.pattern))
        assert path in paths, path
        for method in METHODS:
            if not hasattr(pattern.callback.view_class, method):
                continue
            responses = paths[path][method]["responses"]
            assert {"401", "403", "429"} <= set(responses), (path, method)
            assert "Retry-After" in responses["429"]["headers"]
            if "{id}" in path or (pattern.name.endswith("-list") and method == "get"):
                assert "404" in responses, (path, method)
            if method in ("post", "put", "patch") or (method == "get" and "{id}" not in path):
                assert "400" in responses, (path, method)
    assert {"409", "422"} <= set(paths["/api/v1/portfolios/{id}/rebalance/"]["post"]["responses"])
    assert "409" in paths["/api/v1/runs/{id}/approve/"]["post"]["responses"]


def test_request_bodies_are_closed_and_credentials_write_only():
    components = schema()["components"]["schemas"]
    assert components["PortfolioRequest"]["additionalProperties"] is False
    assert "credentials" not in components["BrokerAccount"]["properties"] or components["BrokerAccount"]["properties"][
        "credentials"
    ].get("readOnly")
    assert "password" not in components["BrokerAccount"]["properties"]
    assert schema()["components"]["securitySchemes"]["tokenAuth"]["scheme"] == "bearer"


def test_swagger_ui_is_served_from_local_static_files():
    page = Client().get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(not s.startswith(("http://", "https://", "//")) for s in sources), sources
    assert any("swagger-ui-bundle.js" in s for s in sources)
    assert finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")


def test_unknown_api_paths_are_json_404():
    response = Client().get("/api/v1/nothing-here/")
    assert response.status_code == 404 and response.json()["detail"]
    assert Client().get("/api/v1/portfolios/abc/").status_code == 404


@pytest.mark.parametrize("symbol", ["SPY", "BRK-B", "BRK.B", "^GSPC", "EURUSD=X", "A/B", "A:B", "A<B", "-A", "spy"])
def test_the_published_symbol_pattern_accepts_exactly_the_symbols_the_server_stores(symbol):
    """`BRK-B` is stored and answered: the schema must not call that response invalid."""
    pattern = schema()["components"]["schemas"]["Holding"]["properties"]["symbol"]["pattern"]
    assert bool(re.fullmatch(pattern, symbol)) == bool(SYMBOL_RE.fullmatch(symbol))
