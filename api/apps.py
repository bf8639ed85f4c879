from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The REST API under /api/v1/: tokens, idempotency keys, serializers and thin views over the services."""

    name = "api"
    verbose_name = "REST API"

    def ready(self) -> None:
        from api import schema  # noqa: F401 - registers the token authentication with the OpenAPI generator
