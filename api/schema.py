"""OpenAPI: the bearer token scheme, exact field types (decimals, symbols, text), closed request
bodies, required response fields, and the error responses every operation may give.

What a client generated from the schema sends is what the server accepts, and what the server
answers validates against the schema (api/tests/test_schema_responses.py checks both).
"""

from __future__ import annotations

import inspect
from decimal import Decimal

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerFieldExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

from ground.env import SYMBOL_RE

#: Text the server stores: no C0 control characters but tab, line feed and carriage return, no DEL.
TEXT_PATTERN = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]*$"
#: A ticker symbol as a client may send it (upper-cased by the server) and as the server answers it.
SYMBOL_REQUEST_PATTERN = r"^\^?[A-Za-z0-9][A-Za-z0-9.=-]{0,19}$"
#: The server's pattern with its hyphen last and unescaped, which every regex dialect a schema client
#: may use reads as a hyphen.
SYMBOL_PATTERN = SYMBOL_RE.pattern.replace(r".\-=", ".=-")
#: The longest number text the server reads (`ground.inputs`).
LONGEST_NUMBER = 100
#: The longest query parameter value any operation reads (a list of 50 symbols fits).
MAX_QUERY_VALUE_LENGTH = 2000
#: Keywords that already say what a string parameter holds.
FORMED = {"enum", "pattern", "format"}


class ApiAutoSchema(AutoSchema):
    """Every field of an answer is required (the server always sends it, null when it has no value)
    unless its serializer lists it in ``optional_fields``; an operation's description is the one
    given with `extend_schema`, never a view's docstring (written for the project's developers)."""

    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        # A component is described by its own class's docstring only: base classes describe the
        # project's code, not the API.
        own_doc = type(serializer).__dict__.get("__doc__")
        if own_doc:
            schema["description"] = inspect.cleandoc(own_doc)
        else:
            schema.pop("description", None)
        if direction == "response":
            optional = set(getattr(serializer, "optional_fields", ()))
            required = sorted(set(schema.get("properties", {})) - optional)
            if required:
                schema["required"] = required
        return schema

    def get_description(self) -> str:
        return ""


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A token created on the page /accounts/tokens/, sent as `Authorization: Bearer <token>`.",
        }


def _json_number(value: Decimal | int) -> int | float:
    value = Decimal(value)
    return int(value) if value == value.to_integral_value() else float(value)


def decimal_schema(field: serializers.DecimalField, direction: str) -> dict:
    """A decimal as text with ``format: decimal``; requests may also send a JSON number.

    The pattern holds the field's bounds exactly when they are the column's own or a power of ten
    (a weight of at most 1); other bounds are stated by ``minimum``/``maximum`` for numbers.
    """
    places = field.decimal_places or 0
    if direction == "response":
        fraction = f"\\.[0-9]{{{places}}}" if places else ""
        return {"type": "string", "format": "decimal", "pattern": f"^-?[0-9]+{fraction}$"}
    maximum = field.max_value
    signed = field.min_value is None or field.min_value < 0
    schema = {
        "type": ["string", "number"],
        "format": "decimal",
        "pattern": _decimal_pattern(maximum=maximum, places=places, signed=signed),
        "maxLength": LONGEST_NUMBER,
        "multipleOf": _json_number(Decimal(1).scaleb(-places)),
    }
    if maximum is not None:
        schema["maximum"] = _json_number(maximum)
    if field.min_value is not None:
        schema["minimum"] = _json_number(field.min_value)
    limits = f"at most {places} decimal places" if places else "a whole number"
    written = "a string like 12.5 (plain digits, no exponent, separators or spaces) or a JSON number"
    schema["description"] = f"A decimal: {written}; {limits}."
    return schema


def _decimal_pattern(*, maximum: Decimal | int | None, places: int, signed: bool) -> str:
    """Plain decimal notation (`ground.inputs`) of a number up to ``maximum`` in size."""
    fraction = f"(?:\\.[0-9]{{0,{places}}})?" if places else "\\.?"
    alternatives = [f"0+{fraction}"]
    if places:
        alternatives.append(f"\\.[0-9]{{1,{places}}}")
    largest = None if maximum is None else Decimal(maximum)
    if largest is None:
        alternatives.append(f"0*[1-9][0-9]*{fraction}")
    else:
        whole_digits = len(str(int(largest))) if largest >= 1 else 0
        power_of_ten = largest == Decimal(10) ** (whole_digits - 1) if whole_digits else False
        if power_of_ten:
            # 10^k itself, with a zero fraction at most, and every number of k digits.
            zeros = f"(?:\\.0{{0,{places}}})?" if places else "\\.?"
            alternatives.append(f"0*1{'0' * (whole_digits - 1)}{zeros}")
            whole_digits -= 1
        if whole_digits:
            alternatives.append(f"0*[1-9][0-9]{{0,{whole_digits - 1}}}{fraction}")
    sign = "-?" if signed else ""
    return f"^{sign}(?:{'|'.join(alternatives)})$"


class DecimalFieldSchema(OpenApiSerializerFieldExtension):
    target_class = "rest_framework.fields.DecimalField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction) -> dict:
        return decimal_schema(self.target, direction)


class TextFieldSchema(OpenApiSerializerFieldExtension):
    target_class = "api.serializers.base.CharField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction) -> dict:
        if direction == "response":
            return {"type": "string"}
        return {"type": "string", "maxLength": self.target.longest, "pattern": TEXT_PATTERN}


class SymbolFieldSchema(OpenApiSerializerFieldExtension):
    target_class = "api.serializers.base.SymbolField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction) -> dict:
        pattern = SYMBOL_PATTERN if direction == "response" else SYMBOL_REQUEST_PATTERN
        return {"type": "string", "pattern": pattern, "description": "A ticker symbol, e.g. SPY or BRK.B."}


class SymbolDictFieldSchema(OpenApiSerializerFieldExtension):
    target_class = "api.serializers.base.SymbolDictField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction) -> dict:
        pattern = SYMBOL_PATTERN if direction == "response" else SYMBOL_REQUEST_PATTERN
        schema = {
            "type": "object",
            "propertyNames": {"pattern": pattern},
            "additionalProperties": auto_schema._map_serializer_field(self.target.child, direction),
        }
        if not self.target.allow_empty:
            schema["minProperties"] = 1
        return schema


def strict_request_bodies(result: dict, generator, request, public) -> dict:
    """Request bodies are closed objects (the API refuses fields it does not know); the shared
    error components; ``Retry-After`` on the answers that carry it."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    for name, component in schemas.items():
        if name.endswith("Request") and component.get("type") == "object":
            component["additionalProperties"] = False
    schemas.update(ERROR_COMPONENTS)
    for path in result.get("paths", {}).values():
        for operation in path.values():
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                if parameter["in"] == "query" and schema.get("type") == "string" and not schema.keys() & FORMED:
                    # Free text (a search, a name filter): what every query parameter may hold.
                    schema.update(pattern=TEXT_PATTERN, maxLength=MAX_QUERY_VALUE_LENGTH)
            for code, header in RETRY_AFTER.items():
                answer = operation.get("responses", {}).get(code)
                if answer is not None:
                    answer["headers"] = {"Retry-After": header}
    return result


RETRY_AFTER = {
    "429": {"schema": {"type": "integer", "minimum": 1}, "required": True, "description": "Seconds to wait."},
    "503": {"schema": {"type": "integer", "minimum": 1}, "required": True, "description": "Seconds to wait."},
    "409": {
        "schema": {"type": "integer", "minimum": 1},
        "description": "Seconds to wait, when another request was changing the portfolio.",
    },
}

# {"field": ["message", ...]}; a nested object's fields and a list's rows (by index) nest the same
# shape, at most three levels deep ({"holdings": {"1": {"quantity": ["..."]}}}).
ERROR_COMPONENTS = {
    "Messages": {"type": "array", "items": {"type": "string"}},
    "RowFieldErrors": {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/Messages"}},
    "RowErrors": {
        "type": "object",
        "additionalProperties": {
            "oneOf": [{"$ref": "#/components/schemas/Messages"}, {"$ref": "#/components/schemas/RowFieldErrors"}]
        },
    },
    "FieldErrors": {"oneOf": [{"$ref": "#/components/schemas/Messages"}, {"$ref": "#/components/schemas/RowErrors"}]},
    "ValidationErrors": {
        "type": "object",
        "description": 'Messages by field name, e.g. {"cash_usd": ["must be at least 0"]} or '
        '{"holdings": {"1": {"quantity": ["..."]}}}; "non_field_errors" for the request as a whole.',
        "additionalProperties": {"$ref": "#/components/schemas/FieldErrors"},
    },
}

_Detail = inline_serializer("Error", {"detail": serializers.CharField()})
_VALIDATION_ERRORS = {"$ref": "#/components/schemas/ValidationErrors"}

ERROR_RESPONSES = {
    401: OpenApiResponse(_Detail, description="No valid token or session."),
    403: OpenApiResponse(_Detail, description="Authenticated but not allowed (e.g. CSRF check of a session)."),
    429: OpenApiResponse(_Detail, description="Too many requests; retry after the Retry-After header's seconds."),
    503: OpenApiResponse(
        _Detail,
        description="The database was busy with other requests (a lock wait timed out); nothing was saved. "
        "Retry after the Retry-After header's seconds.",
    ),
}
NOT_FOUND = {404: OpenApiResponse(_Detail, description="No such object among yours (or no such page of a list).")}
BAD_REQUEST = {400: OpenApiResponse(_VALIDATION_ERRORS, description="Invalid input: messages by field name.")}
UNPROCESSABLE = {422: OpenApiResponse(_Detail, description="Valid, but it could not be carried out (the reason).")}
BUSY = {
    409: OpenApiResponse(
        _Detail,
        description="The object's current state does not allow this, or another request is changing the "
        "portfolio (nothing was saved; retry after the Retry-After header's seconds).",
    )
}


def responses(
    ok: dict,
    *,
    bad_request: bool = False,
    not_found: bool = False,
    unprocessable: bool = False,
    writes: bool = False,
) -> dict:
    """``ok`` (status -> serializer or response) plus the error responses the operation can give;
    ``writes``: the operation changes stored data (409 when another request holds the portfolio)."""
    answer = {**ok, **ERROR_RESPONSES}
    if bad_request:
        answer.update(BAD_REQUEST)
    if not_found:
        answer.update(NOT_FOUND)
    if writes:
        answer.update(BUSY)
    if unprocessable:
        answer.update(UNPROCESSABLE)
    return answer
