"""Runs: list with filters, detail with needs, trades, orders and report URL; approve under the gates."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from django.test import Client
from django.urls import reverse

from brokers.services.controls import kill_switch_set
from portfolios.models import Portfolio, RebalanceRun


def test_detail_has_needs_trades_and_report_url(owner):
    body = owner.client.get(reverse("api:run-detail", kwargs={"pk": owner.run.pk})).json()
    assert body["status"] == "planned" and body["needs"] and body["trades"] and body["orders"] == []
    assert body["report_url"] == f"http://testserver/runs/{owner.run.pk}/"
    assert [t["sequence"] for t in body["trades"]] == sorted(t["sequence"] for t in body["trades"])
    assert body["execute_after"] is None  # a proposed plan: no execution due


def test_a_run_due_at_the_next_open_says_when(owner):
    RebalanceRun.objects.filter(pk=owner.run.pk).update(execute_after="2025-07-01T13:35:00Z")
    body = owner.client.get(reverse("api:run-detail", kwargs={"pk": owner.run.pk})).json()
    assert body["execute_after"] == "2025-07-01T09:35:00-04:00"  # in TIMEZONE
    browser = Client()
    browser.force_login(owner.user)
    page = browser.get(reverse("run_report", args=[owner.run.pk])).content.decode()
    assert "(execution due 2025-07-01 09:35 EDT)" in page


def test_list_filters_by_portfolio_status_and_date(owner):
    client = owner.client
    base = reverse("api:run-list")
    assert client.get(f"{base}?portfolio={owner.portfolio.pk}").json()["count"] == 1
    assert client.get(f"{base}?status=planned").json()["count"] == 1
    assert client.get(f"{base}?status=executed").json()["count"] == 0
    assert client.get(f"{base}?date={owner.run.trading_date}").json()["count"] == 1
    assert client.get(f"{base}?trading_date_after=2099-01-01").json()["count"] == 0
    assert client.get(f"{base}?status=bogus").status_code == 400
    assert client.get(f"{base}?date=never").status_code == 400


def test_approve_executes_the_proposed_run(owner):
    response = owner.client.post(reverse("api:run-approve", kwargs={"pk": owner.run.pk}), {}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "executed" and len(body["orders"]) == len(body["trades"])
    assert {o["state"] for o in body["orders"]} == {"filled"}
    again = owner.client.post(reverse("api:run-approve", kwargs={"pk": owner.run.pk}), {}, format="json")
    assert again.status_code == 409 and "nothing to approve" in again.json()["detail"]


def test_approve_is_refused_by_the_kill_switch(owner):
    kill_switch_set(active=True, reason="maintenance")
    response = owner.client.post(reverse("api:run-approve", kwargs={"pk": owner.run.pk}), {}, format="json")
    assert response.status_code == 409, response.content
    run = RebalanceRun.objects.get(pk=owner.run.pk)
    assert not run.orders.exists()


def test_approve_refuses_unknown_fields(owner):
    response = owner.client.post(
        reverse("api:run-approve", kwargs={"pk": owner.run.pk}), {"force": True}, format="json"
    )
    assert response.status_code == 400 and "force" in response.json()
    assert RebalanceRun.objects.get(pk=owner.run.pk).status == "planned"


def test_sync_from_broker(owner):
    owner.portfolio.holdings.all().delete()
    response = owner.client.post(reverse("api:portfolio-sync", kwargs={"pk": owner.portfolio.pk}))
    assert response.status_code == 200, response.content
    assert {c["symbol"] for c in response.json()["changes"]} == {"SPY", "BND"}
    assert owner.portfolio.holdings.count() == 2


def test_approve_while_the_market_is_closed_stores_the_approval_and_when_it_executes(owner, clock):
    clock.now = datetime(2025, 7, 1, 8, 0, tzinfo=ZoneInfo("America/New_York"))  # the open is at 9:30
    response = owner.client.post(reverse("api:run-approve", kwargs={"pk": owner.run.pk}), {}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "planned" and body["orders"] == []
    assert body["approved_at"] is not None and body["execute_after"] == "2025-07-01T09:35:00-04:00"
    assert not RebalanceRun.objects.get(pk=owner.run.pk).orders.exists()


def test_a_sync_is_reviewed_then_applied_exactly_as_reviewed(owner):
    owner.portfolio.holdings.all().delete()
    url = reverse("api:portfolio-sync", kwargs={"pk": owner.portfolio.pk})
    review = owner.client.get(url)
    assert review.status_code == 200, review.content
    body = review.json()
    assert {d["symbol"]: d["change"] for d in body["differences"]} == {"SPY": "added", "BND": "added"}
    assert body["changes_anything"] is True and owner.portfolio.holdings.count() == 0  # nothing written
    fingerprints = {k: body[k] for k in ("broker_fingerprint", "holdings_fingerprint")}

    applied = owner.client.post(url, fingerprints, format="json")

    assert applied.status_code == 200, applied.content
    assert {c["symbol"] for c in applied.json()["changes"]} == {"SPY", "BND"}
    assert owner.portfolio.holdings.count() == 2
    # The same review again: the holdings it was made from are gone, so nothing is applied.
    stale = owner.client.post(url, fingerprints, format="json")
    assert stale.status_code == 409 and "changed since you reviewed" in stale.json()["detail"]
    assert stale.json()["review"]["changes_anything"] is False


def test_a_sync_review_whose_holdings_changed_meanwhile_is_refused_with_the_new_review(owner):
    url = reverse("api:portfolio-sync", kwargs={"pk": owner.portfolio.pk})
    body = owner.client.get(url).json()
    owner.portfolio.holdings.all().delete()  # edited by hand after the review
    response = owner.client.post(
        url, {k: body[k] for k in ("broker_fingerprint", "holdings_fingerprint")}, format="json"
    )
    assert response.status_code == 409, response.content
    assert {d["symbol"]: d["change"] for d in response.json()["review"]["differences"]} == {
        "SPY": "added",
        "BND": "added",
    }
    assert owner.portfolio.holdings.count() == 0


def test_a_sync_confirmation_names_a_bad_fingerprint(owner):
    url = reverse("api:portfolio-sync", kwargs={"pk": owner.portfolio.pk})
    response = owner.client.post(url, {"broker_fingerprint": "x", "holdings_fingerprint": "y" * 64}, format="json")
    assert response.status_code == 400 and set(response.json()) == {"broker_fingerprint", "holdings_fingerprint"}


def test_a_sync_review_of_a_portfolio_without_a_broker_account_is_a_conflict_naming_why(owner):
    Portfolio.objects.filter(pk=owner.portfolio.pk).update(broker_account=None)
    response = owner.client.get(reverse("api:portfolio-sync", kwargs={"pk": owner.portfolio.pk}))
    assert response.status_code == 409 and "no broker account" in response.json()["detail"]
