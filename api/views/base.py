"""What every API view shares: strict JSON bodies and query parameters, a transaction per writing
request (nothing saved on error), and the throttles in the order that answers a caller without
credentials 401."""

from __future__ import annotations

from django.db import transaction
from rest_framework import exceptions, generics
from rest_framework.permissions import SAFE_METHODS

from api.filters import FilterBackend, OrderingFilter
from api.pagination import Pagination
from api.parsers import JSONParser
from api.schema import MAX_QUERY_VALUE_LENGTH, ApiAutoSchema
from ground.inputs import InputError, text_clean


class ApiView(generics.GenericAPIView):
    """Writing requests run in one transaction, rolled back on any error (`api.errors`).

    Views that call a service owning its transactions (planning, execution, broker sync: their
    steps must be committed before the next, e.g. an order intent before the broker call) set
    ``atomic = False``.
    """

    atomic = True
    in_request_transaction = False
    parser_classes = [JSONParser]
    filter_backends = [FilterBackend, OrderingFilter]
    pagination_class = Pagination
    schema = ApiAutoSchema()
    # No OPTIONS descriptions (405): the schema at /api/schema/ documents every operation.
    metadata_class = None

    @property
    def for_schema(self) -> bool:
        """True while drf-spectacular inspects the view (no request user to scope querysets to)."""
        return getattr(self, "swagger_fake_view", False)

    def initial(self, request, *args, **kwargs) -> None:
        try:
            super().initial(request, *args, **kwargs)
        except exceptions.AuthenticationFailed:
            # A refused token counts (per IP address): guessing tokens is throttled like anything
            # else. A request without credentials is told so (401) without touching the counts.
            self.check_throttles(request)
            raise
        _check_query_values(request.query_params)

    def dispatch(self, request, *args, **kwargs):
        if self.atomic and request.method not in SAFE_METHODS:
            with transaction.atomic():
                self.in_request_transaction = True
                return super().dispatch(request, *args, **kwargs)
        return super().dispatch(request, *args, **kwargs)


def _check_query_values(params) -> None:
    """Query parameters are text without control characters (PostgreSQL refuses a NUL byte)."""
    errors = {}
    for name, values in params.lists():
        for value in values:
            try:
                text_clean(value, max_length=MAX_QUERY_VALUE_LENGTH)
            except InputError as error:
                errors[name] = [str(error)]
    if errors:
        raise exceptions.ValidationError(errors)
