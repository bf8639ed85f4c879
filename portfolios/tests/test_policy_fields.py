"""The policy field groups list every policy setting of the model once, so the settings form, the
admin, the REST API and the config.json import cannot miss a new one."""

from __future__ import annotations

from portfolios.models import Portfolio
from portfolios.models.policy_fields import POLICY_FIELDS

# What a portfolio is rather than how it is rebalanced.
IDENTITY = {"id", "owner", "name", "base_currency", "instruments", "cash_usd", "active", "created_at", "updated_at"}


def test_every_setting_of_the_model_is_in_exactly_one_group():
    editable = {field.name for field in Portfolio._meta.get_fields() if field.concrete and not field.auto_created}
    assert len(POLICY_FIELDS) == len(set(POLICY_FIELDS))
    assert set(POLICY_FIELDS) == editable - IDENTITY
