"""Every answer of a test client checked against the published OpenAPI schema with openapi-core
(status documented, headers, content type, body)."""

from __future__ import annotations

import json

from django.test import RequestFactory
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from rest_framework.test import APIClient

from api.views.docs import SchemaView

HOST = "http://testserver"


def published_schema() -> dict:
    """The schema /api/schema/ publishes (asked of its view directly: no request signals fire, which
    leaves the database connection of a test that calls the app through WSGI as it is)."""
    request = RequestFactory().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    response = SchemaView.as_view()(request)
    assert response.status_code == 200
    return json.loads(response.render().content)


def schema_validator() -> OpenAPI:
    return OpenAPI.from_dict(published_schema())


def answer_check(validator: OpenAPI, method: str, path: str, *, status: int, body: bytes, headers) -> None:
    """Raise openapi-core's error when an answer (to ``method path``) disagrees with the schema."""
    content_type = headers.get("Content-Type", "").split(";")[0] or None
    validator.validate_response(
        MockRequest(HOST, method.lower(), path),
        MockResponse(body, status_code=status, content_type=content_type, headers=headers),
    )


class SchemaCheckedClient(APIClient):
    """An API client that checks every answer against the schema and keeps them (method, path, status)."""

    def __init__(self, *args, validator: OpenAPI, **kwargs):
        super().__init__(*args, **kwargs)
        self.validator = validator
        self.answers: list[tuple[str, str, int]] = []

    def request(self, **request):
        response = super().request(**request)
        method, path = request["REQUEST_METHOD"], request["PATH_INFO"]
        answer_check(
            self.validator, method, path, status=response.status_code, body=response.content, headers=response.headers
        )
        self.answers.append((method, path, response.status_code))
        return response
