"""What every API view shares: a transaction per writing request, nothing saved on error."""

from __future__ import annotations

from django.db import transaction
from rest_framework import exceptions, generics
from rest_framework.permissions import SAFE_METHODS


class ApiView(generics.GenericAPIView):
    """A writing request runs in one transaction, rolled back on any error (`api.errors`).

    Views that call a service owning its transactions (planning, execution, broker sync: their
    steps must be committed before the next, e.g. an order intent before the broker call) set
    ``atomic = False``.
    """

    atomic = True
    in_request_transaction = False
    # No OPTIONS descriptions (405): the schema at /api/schema/ documents every operation.
    metadata_class = None

    @property
    def for_schema(self) -> bool:
        """True while drf-spectacular inspects the view (no request user to scope querysets to)."""
        return getattr(self, "swagger_fake_view", False)

    def initial(self, request, *args, **kwargs) -> None:
        try:
            super().initial(request, *args, **kwargs)
        except (exceptions.NotAuthenticated, exceptions.AuthenticationFailed):
            # Refused callers count too (per IP address): guessing tokens is throttled like anything else.
            self.check_throttles(request)
            raise

    def dispatch(self, request, *args, **kwargs):
        if self.atomic and request.method not in SAFE_METHODS:
            with transaction.atomic():
                self.in_request_transaction = True
                return super().dispatch(request, *args, **kwargs)
        return super().dispatch(request, *args, **kwargs)
