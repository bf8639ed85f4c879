from django.apps import AppConfig


class OptimizationConfig(AppConfig):
    """Target weights: the pure math in `optimization.core` and its stored results."""

    name = "optimization"
