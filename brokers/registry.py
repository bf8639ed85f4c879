"""Broker adapters by kind, from `settings.BROKER_ADAPTERS` (dotted paths, imported lazily)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from brokers.base import AccountConfig, Broker


def adapter_class(kind: str) -> type[Broker]:
    """The `Broker` subclass registered for ``kind``; `ImproperlyConfigured` names the problem."""
    path = settings.BROKER_ADAPTERS.get(kind)
    if path is None:
        raise ImproperlyConfigured(f"BROKER_ADAPTERS has no adapter for broker kind {kind!r}")
    module_name, _, attribute = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ImproperlyConfigured(f"BROKER_ADAPTERS[{kind!r}]: cannot import {path!r} ({error})") from error
    if not (isinstance(cls, type) and issubclass(cls, Broker)):
        raise ImproperlyConfigured(f"BROKER_ADAPTERS[{kind!r}]: {path!r} is not a brokers.base.Broker subclass")
    return cls


def adapter_options(kind: str, extra: Mapping[str, object] | None = None) -> dict[str, object]:
    """`settings.BROKER_OPTIONS[kind]` with ``extra`` on top."""
    return {**settings.BROKER_OPTIONS.get(kind, {}), **(extra or {})}


def broker_from_config(config: AccountConfig) -> Broker:
    return adapter_class(config.kind)(config)
