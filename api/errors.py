"""One error shape for the API: ``{"field": ["message", ...]}`` for bad input, ``{"detail": "..."}`` otherwise.

Django `ValidationError`s raised by services become 400 with their field names; any error rolls
back the request's transaction (views that write run in one, see `api.views.base`).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class Conflict(exceptions.APIException):
    """The request is valid but the object's state does not allow it (409)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "the request conflicts with the object's current state"
    default_code = "conflict"


class Unprocessable(exceptions.APIException):
    """The request is valid but could not be carried out (422), e.g. planning failed."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "the request could not be carried out"
    default_code = "unprocessable"


def field_errors(error: DjangoValidationError) -> dict[str, list[str]]:
    """A Django `ValidationError` as API field errors (``non_field_errors`` for the whole request)."""
    if hasattr(error, "error_dict"):
        return {
            ("non_field_errors" if name == "__all__" else name): messages
            for name, messages in error.message_dict.items()
        }
    return {"non_field_errors": list(error.messages)}


def exception_handler(exc, context) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(field_errors(exc))
    response = drf_exception_handler(exc, context)
    if getattr(context.get("view"), "in_request_transaction", False):
        # Nothing of a failed request is saved: its transaction (opened by the view) is rolled back.
        transaction.set_rollback(True)
    return response
