"""OpenAPI: the bearer token scheme, strict request bodies, and the error responses every operation may give."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema) -> dict:
        return {"type": "http", "scheme": "bearer", "description": "A token from /account/tokens/."}


def strict_request_bodies(result: dict, generator, request, public) -> dict:
    """Request bodies are closed objects: the API refuses fields it does not know."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") and component.get("type") == "object":
            component["additionalProperties"] = False
    for path in result.get("paths", {}).values():
        for operation in path.values():
            throttled = operation.get("responses", {}).get("429")
            if throttled is not None:
                throttled["headers"] = {
                    "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before retrying."}
                }
    return result


_Detail = inline_serializer("Error", {"detail": serializers.CharField()})
_Throttled = inline_serializer("Throttled", {"detail": serializers.CharField()})
# {"field": ["message", ...]}; a list of objects for a list field (one per row, empty when the row is fine).
_FieldErrors = {
    "type": "object",
    "description": 'Messages by field name, e.g. {"cash_usd": ["must not be negative, got -1"]}; '
    '"non_field_errors" for the request as a whole.',
    "additionalProperties": {},
}

ERROR_RESPONSES = {
    401: OpenApiResponse(_Detail, description="No valid token or session."),
    403: OpenApiResponse(_Detail, description="Authenticated but not allowed (e.g. CSRF check of a session)."),
    429: OpenApiResponse(_Throttled, description="Too many requests; retry after the Retry-After header's seconds."),
}
NOT_FOUND = {404: OpenApiResponse(_Detail, description="No such object among yours (or no such page of a list).")}
BAD_REQUEST = {400: OpenApiResponse(_FieldErrors, description="Invalid input: messages by field name.")}
UNPROCESSABLE = {422: OpenApiResponse(_Detail, description="Valid, but it could not be carried out (the reason).")}
CONFLICT = {409: OpenApiResponse(_Detail, description="The object's current state does not allow this.")}


def responses(
    ok: dict, *, bad_request: bool = False, not_found: bool = False, conflict: bool = False, unprocessable: bool = False
) -> dict:
    """``ok`` (status -> serializer or response) plus the error responses the operation can give."""
    answer = {**ok, **ERROR_RESPONSES}
    if bad_request:
        answer.update(BAD_REQUEST)
    if not_found:
        answer.update(NOT_FOUND)
    if conflict:
        answer.update(CONFLICT)
    if unprocessable:
        answer.update(UNPROCESSABLE)
    return answer
