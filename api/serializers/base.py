"""Building blocks: unknown fields refused, finite numbers only, related fields scoped to the user."""

from __future__ import annotations

import math
from collections.abc import Mapping

from rest_framework import serializers


class StrictMixin:
    """Refuses fields the serializer does not know (a typo is an error, not a silently ignored setting)."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(str(name) for name in set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["unknown field"] for name in unknown})
        return super().to_internal_value(data)


class StrictSerializer(StrictMixin, serializers.Serializer):
    pass


class StrictModelSerializer(StrictMixin, serializers.ModelSerializer):
    pass


class FiniteFloatField(serializers.FloatField):
    """A float that is a real number: NaN and infinities are refused, also as strings."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            self.fail("invalid")
        value = super().to_internal_value(data)
        if not math.isfinite(value):
            self.fail("invalid")
        return value


class DecimalField(serializers.DecimalField):
    """DRF's decimal (strings or numbers, never NaN or Infinity) that refuses booleans too."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


class UserScopedPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A related object of the requesting user only: another user's id is "does not exist"."""

    def __init__(self, *, selector, **kwargs):
        self.selector = selector
        super().__init__(**kwargs)

    def get_queryset(self):
        request = self.context.get("request")
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return self.selector(user=None).none()
        return self.selector(user=user)
