"""Several clients writing one portfolio's holdings at the same moment (what a client that times out
and retries produces): the writes serialise, so the stored holdings always equal one whole request
body, every answered PATCH stays applied, and no request answers 500."""

from __future__ import annotations

import threading
from collections import Counter
from decimal import Decimal

import pytest
from django.db import connection

from marketdata.models import Instrument
from portfolios.models import Holding, Portfolio
from portfolios.services.holdings import holdings_replace
from portfolios.tests.factories import make_user

from .conftest import token_client

pytestmark = pytest.mark.django_db(transaction=True)

SYMBOLS = ["SPY", "QQQ", "VXUS", "BND"]
ROUNDS = 12
#: A write is stored (200) or, having met another writer's lock too long, refused with nothing stored (409).
OK = {200, 409}


@pytest.fixture
def portfolio() -> Portfolio:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite has no row locks and lets one writer at a time into the whole file")
    for symbol in SYMBOLS:
        Instrument.objects.create(symbol=symbol)
    portfolio = Portfolio.objects.create(owner=make_user("alice"), name="Core")
    holdings_replace(portfolio=portfolio, rows=[{"symbol": s, "quantity": "1"} for s in SYMBOLS], cash_usd="0")
    return portfolio


def stored(portfolio: Portfolio) -> tuple[dict[str, Decimal], Decimal]:
    holdings = dict(Holding.objects.filter(portfolio=portfolio).values_list("instrument__symbol", "quantity"))
    return holdings, Portfolio.objects.get(pk=portfolio.pk).cash_usd


def run_rounds(portfolio: Portfolio, method: str, body_for, after_round, *, clients: int) -> tuple[Counter, list[str]]:
    """Send ``body_for(round, client)`` from ``clients`` threads at once, ROUNDS times. Once a round's
    requests are all answered, and before the next one starts, ``after_round(answers)`` (each
    client's (status, body, answer)) returns what it found wrong. The count of each status and
    everything found wrong, every round run to the end."""
    url = f"/api/v1/portfolios/{portfolio.pk}/holdings/"
    senders = [token_client(portfolio.owner, f"client {n}") for n in range(clients)]
    for client in senders:
        client.raise_request_exception = False  # a 500 is an answer to count, as a real client sees it
    start, done = threading.Barrier(clients + 1, timeout=120), threading.Barrier(clients + 1, timeout=120)
    answers: list = [None] * clients
    statuses: Counter = Counter()
    problems: list[str] = []

    def send(index: int) -> None:
        try:
            for number in range(ROUNDS):
                start.wait()
                body = body_for(number, index)
                response = getattr(senders[index], method)(url, body, format="json")
                json = response["Content-Type"].startswith("application/json")
                answers[index] = (response.status_code, body, response.json() if json else None)
                done.wait()
        except threading.BrokenBarrierError:
            pass
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    try:
        for number in range(ROUNDS):
            answers[:] = [None] * clients
            start.wait()
            done.wait()
            assert None not in answers, "a client stopped before answering"
            statuses.update(status for status, _, _ in answers)
            problems += [f"round {number}: {problem}" for problem in after_round(list(answers))]
    finally:
        start.abort()
        done.abort()
        for thread in threads:
            thread.join(timeout=120)
    counts = dict(sorted(statuses.items()))
    print(f"\n{method.upper()}: {ROUNDS} rounds x {clients} clients: {counts}; {len(problems)} problems")
    return statuses, problems


def as_state(body: dict) -> tuple[dict[str, Decimal], Decimal]:
    return {row["symbol"]: Decimal(row["quantity"]) for row in body["holdings"]}, Decimal(body["cash_usd"])


@pytest.mark.parametrize("clients", [2, 4])
def test_concurrent_puts_leave_exactly_one_whole_body(portfolio, clients):
    def body_for(number: int, index: int) -> dict:
        # Each client holds a different set of symbols, in a different order, so a mix of bodies shows.
        symbols = (SYMBOLS[index:] + SYMBOLS[:index])[: index + 1]
        rows = [{"symbol": s, "quantity": f"{number}{index}{position}.5"} for position, s in enumerate(symbols)]
        return {"holdings": rows, "cash_usd": f"{number}{index}.25"}

    def after_round(answers) -> list[str]:
        accepted = [as_state(body) for status, body, _ in answers if status == 200]
        found = [f"client {n} answered {status}" for n, (status, _, _) in enumerate(answers) if status not in OK]
        # Each 200 shows its own body, whole; what is stored is one whole body, never a mix of several.
        found += [
            f"client {n} was answered another state"
            for n, (status, body, answer) in enumerate(answers)
            if status == 200 and as_state(answer) != as_state(body)
        ]
        if accepted and stored(portfolio) not in accepted:
            found.append(f"the stored holdings match none of the {len(accepted)} bodies answered 200")
        return found

    statuses, problems = run_rounds(portfolio, "put", body_for, after_round, clients=clients)

    assert not problems, "\n".join(problems)
    assert statuses[200] >= ROUNDS  # at least one write per round went through


@pytest.mark.parametrize("clients", [2, 4])
def test_concurrent_patches_of_different_symbols_are_all_kept(portfolio, clients):
    expected = {symbol: Decimal(1) for symbol in SYMBOLS}

    def body_for(number: int, index: int) -> dict:
        return {"holdings": [{"symbol": SYMBOLS[index], "quantity": f"{number * 10 + index + 2}"}]}

    def after_round(answers) -> list[str]:
        found = [f"client {n} answered {status}" for n, (status, _, _) in enumerate(answers) if status not in OK]
        for status, body, _ in answers:
            if status == 200:
                row = body["holdings"][0]
                expected[row["symbol"]] = Decimal(row["quantity"])
        holdings, _ = stored(portfolio)
        lost = sorted(symbol for symbol, quantity in expected.items() if holdings.get(symbol) != quantity)
        if lost:  # a PATCH answered 200 was written over by another one
            found.append(f"lost the PATCH of {', '.join(lost)}")
            expected.update({symbol: holdings.get(symbol) for symbol in lost})
        return found

    statuses, problems = run_rounds(portfolio, "patch", body_for, after_round, clients=clients)

    assert not problems, "\n".join(problems)
    assert statuses[200] >= ROUNDS
