"""The OpenAPI schema and Swagger UI, answering OPTIONS like every API view (405) instead of
describing themselves (which Swagger UI's HTML renderer cannot do)."""

from __future__ import annotations

from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView


class SchemaView(SpectacularAPIView):
    metadata_class = None


class SwaggerView(SpectacularSwaggerView):
    metadata_class = None
