"""One error shape for the API: ``{"field": ["message", ...]}`` for bad input (400, the request as
a whole under ``non_field_errors``), ``{"detail": "..."}`` for every other error.

Django `ValidationError`s raised by services become 400 with their field names; a portfolio busy
with another request is 409 and a database lock that timed out is 503, both with ``Retry-After``;
any error rolls back the request's transaction (views that write run in one, see `api.views.base`).
"""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import OperationalError, transaction
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from portfolios.services.portfolio_lock import PortfolioBusy

logger = logging.getLogger(__name__)

#: PostgreSQL's lock_not_available, deadlock_detected and serialization_failure: another
#: transaction held what this one needed; the same request may succeed when tried again.
LOCK_SQLSTATES = frozenset({"55P03", "40P01", "40001"})
#: Seconds a client should wait before repeating a request that met a database lock.
DATABASE_BUSY_RETRY_AFTER_S = 2


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


class DatabaseBusy(exceptions.APIException):
    """A database lock timed out, or the database broke a deadlock by ending this request (503)."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "the database is busy with other requests; nothing was saved: try again"
    default_code = "database_busy"


def field_errors(error: DjangoValidationError) -> dict[str, list[str]]:
    """A Django `ValidationError` as API field errors (``non_field_errors`` for the whole request)."""
    if hasattr(error, "error_dict"):
        return {
            ("non_field_errors" if name == "__all__" else name): messages
            for name, messages in error.message_dict.items()
        }
    return {"non_field_errors": list(error.messages)}


def is_lock_error(error: BaseException) -> bool:
    """Whether a database error means "another transaction is in the way" (so retrying may work)."""
    if not isinstance(error, OperationalError):
        return False
    if getattr(error.__cause__, "sqlstate", None) in LOCK_SQLSTATES:
        return True
    return "database is locked" in str(error) or "database table is locked" in str(error)


def exception_handler(exc, context) -> Response | None:
    retry_after_s = None
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(field_errors(exc))
    elif isinstance(exc, exceptions.ParseError):
        exc = exceptions.ValidationError({"non_field_errors": [str(exc.detail)]})
    elif isinstance(exc, PortfolioBusy):
        retry_after_s = exc.retry_after_s
        exc = Conflict(f"another request is changing this portfolio; nothing was saved: try again in {retry_after_s} s")
    elif is_lock_error(exc):
        # The database's own words name tables and queries: logged, not answered.
        logger.warning("database lock answered 503", extra={"error": str(exc)})
        retry_after_s = DATABASE_BUSY_RETRY_AFTER_S
        exc = DatabaseBusy()
    response = drf_exception_handler(exc, context)
    if response is not None:
        if response.status_code == status.HTTP_400_BAD_REQUEST and not isinstance(response.data, dict):
            response.data = {"non_field_errors": response.data}
        if retry_after_s is not None:
            response["Retry-After"] = str(retry_after_s)
    if getattr(context.get("view"), "in_request_transaction", False):
        # Nothing of a failed request is saved: its transaction (opened by the view) is rolled back.
        transaction.set_rollback(True)
    return response
