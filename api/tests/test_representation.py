"""The serializers' direct read of plain attributes gives what DRF's generic path gives."""

from __future__ import annotations

import pytest
from rest_framework import serializers
from rest_framework.test import APIRequestFactory

from api.serializers.base import StrictModelSerializer
from api.serializers.portfolios import PortfolioSerializer

pytestmark = pytest.mark.django_db


def test_a_portfolio_reads_the_same_as_through_drfs_generic_path(owner):
    portfolio = owner.portfolio
    portfolio.manual_targets = {"SPY": "0.6", "BND": "0.4"}
    portfolio.group_limits = ["bonds >= 20%"]
    portfolio.glide_path_knots = [[30, 0.9], [65, 0.4]]
    portfolio.birth_year = None  # a null column
    request = APIRequestFactory().get("/")
    request.user = owner.user
    serializer = PortfolioSerializer(portfolio, context={"request": request})

    fast = StrictModelSerializer.to_representation(serializer, portfolio)
    generic = serializers.ModelSerializer.to_representation(serializer, portfolio)

    assert fast == generic
    assert fast["broker_account"] == portfolio.broker_account_id and fast["birth_year"] is None
    assert "symbols" not in fast  # not an attribute: the portfolio serializer adds it from the universe
