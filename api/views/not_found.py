from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny

from api.views.base import ApiView


@extend_schema(exclude=True)
class NotFoundView(ApiView):
    """Every path under /api/ that is no endpoint answers a JSON 404 (not the site's HTML page)."""

    permission_classes = [AllowAny]
    authentication_classes = []

    def http_method_not_allowed(self, request, *args, **kwargs):
        raise NotFound("no such endpoint; the endpoints are listed at /api/docs/")

    get = post = put = patch = delete = http_method_not_allowed
