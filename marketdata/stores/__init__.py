"""Price stores: where bars live (`STORAGE_TYPE`), behind one interface."""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string

from marketdata.stores.base import PriceStore


def get_price_store(storage_type: str | None = None) -> PriceStore:
    """The configured store (`STORAGE_TYPE`), or the named one."""
    name = storage_type or settings.STORAGE_TYPE
    if name == "sqlite":  # the seed's name for the database store
        name = "database"
    if name not in settings.PRICE_STORES:
        raise ValueError(f"unknown price store {name!r}; expected one of {', '.join(settings.PRICE_STORES)}")
    return import_string(settings.PRICE_STORES[name])()
