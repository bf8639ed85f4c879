"""Fixtures of the broker tests."""

from __future__ import annotations

import pytest

from portfolios.tests.factories import make_user


@pytest.fixture
def owner(client):
    """alice, logged in to the test client."""
    user = make_user("alice")
    client.force_login(user)
    return user
