"""The admin as staff use it: instruments editable, bars and fetch logs viewable but read-only."""

from __future__ import annotations

from datetime import date

import pytest
from django.db.models import ProtectedError
from django.urls import reverse

from marketdata.models import FetchLog, Instrument, PriceBar, QualityFinding

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("admin", "admin@example.com", "a-long-password-123")
    client.force_login(user)
    return client


@pytest.fixture
def bar():
    spy = Instrument.objects.create(symbol="SPY", name="SPDR S&P 500 ETF", asset_class="equity")
    bar = PriceBar(instrument=spy, date=date(2024, 1, 2), adj_close="470.12345678", source="sample", synthetic=True)
    bar.save()
    return bar


def test_instrument_list_filter_and_search(staff_client, bar):
    Instrument.objects.create(symbol="BND", asset_class="bond")
    page = staff_client.get(reverse("admin:marketdata_instrument_changelist"), {"asset_class": "bond"})
    assert page.status_code == 200
    assert b"BND" in page.content and b">SPY<" not in page.content
    found = staff_client.get(reverse("admin:marketdata_instrument_changelist"), {"q": "S&P"})
    assert b"SPY" in found.content


def test_staff_see_and_set_whether_an_instrument_trades_in_fractions(staff_client):
    abcd = Instrument.objects.create(symbol="ABCD", asset_class="other")
    listing = staff_client.get(reverse("admin:marketdata_instrument_changelist")).content.decode()
    assert "not known" in listing
    change = reverse("admin:marketdata_instrument_change", args=[abcd.pk])
    form = {"symbol": "ABCD", "name": "", "asset_class": "other", "sector": "", "region": "", "esg_score": ""}
    assert staff_client.post(change, {**form, "fractionable": "false"}).status_code == 302
    abcd.refresh_from_db()
    assert abcd.fractionable is False
    listing = staff_client.get(reverse("admin:marketdata_instrument_changelist")).content.decode()
    assert "no: whole shares only" in listing


def test_price_bars_are_listed_filterable_and_read_only(staff_client, bar):
    listing = staff_client.get(reverse("admin:marketdata_pricebar_changelist"), {"q": "SPY", "synthetic__exact": "1"})
    assert listing.status_code == 200
    assert b"470.12345678" in listing.content
    detail = staff_client.get(reverse("admin:marketdata_pricebar_change", args=[bar.pk]))
    assert detail.status_code == 200
    assert b'name="adj_close"' not in detail.content  # shown, not editable
    post = staff_client.post(reverse("admin:marketdata_pricebar_change", args=[bar.pk]), {"adj_close": "1"})
    assert post.status_code == 403
    assert staff_client.get(reverse("admin:marketdata_pricebar_add")).status_code == 403
    bar.refresh_from_db()
    assert str(bar.adj_close) == "470.12345678"


def test_fetch_log_shows_its_findings(staff_client, bar):
    log = FetchLog.objects.create(started_at="2024-01-03T00:00:00Z", store="database", symbols=["SPY"])
    QualityFinding.objects.create(fetch_log=log, symbol="SPY", date=date(2024, 1, 3), kind="gap", detail="no bar")
    page = staff_client.get(reverse("admin:marketdata_fetchlog_change", args=[log.pk]))
    assert page.status_code == 200
    assert b"no bar" in page.content
    findings = staff_client.get(reverse("admin:marketdata_qualityfinding_changelist"), {"kind__exact": "gap"})
    assert b"no bar" in findings.content


def test_instruments_with_bars_cannot_be_deleted(bar):
    with pytest.raises(ProtectedError):
        bar.instrument.delete()
    assert PriceBar.objects.count() == 1


def test_bar_key_must_match_its_instrument_and_date(bar):
    from django.db import IntegrityError, transaction

    wrong = PriceBar(
        id=bar.id + 1, instrument=bar.instrument, date=date(2024, 1, 2), adj_close="1", adj_close_f8=1.0, source="x"
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        wrong.save(force_insert=True)
