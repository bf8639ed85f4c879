"""The short-lived read memory of the daily run's workers: used outside transactions only."""

from __future__ import annotations

import pytest
from django.db import transaction

from marketdata.recent import RecentReads


class Reader:
    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return f"answer {self.calls}"


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_an_answer_is_remembered_until_it_expires():
    read = Reader()
    recent = RecentReads(seconds=60)
    assert recent.get_or_read("k", read) == recent.get_or_read("k", read) == "answer 1"
    assert read.calls == 1
    expired = RecentReads(seconds=0)
    assert [expired.get_or_read("k", read) for _ in range(2)] == ["answer 2", "answer 3"]


@pytest.mark.django_db(transaction=True)
def test_answers_the_caller_does_not_keep_are_read_again_and_the_oldest_entry_goes_first():
    read = Reader()
    recent = RecentReads(seconds=60, max_entries=2)
    assert recent.get_or_read("incomplete", read, keep=lambda _: False) == "answer 1"
    assert recent.get_or_read("incomplete", read, keep=lambda _: False) == "answer 2"
    recent.get_or_read("a", read)  # answer 3
    recent.get_or_read("b", read)  # answer 4
    recent.get_or_read("a", read)  # remembered, and now the most recent
    recent.get_or_read("c", read)  # answer 5: "b" goes
    assert recent.get_or_read("a", read) == "answer 3"
    assert recent.get_or_read("b", read) == "answer 6"


@pytest.mark.django_db
def test_inside_a_transaction_every_call_reads():
    # Its uncommitted rows must not outlive it (a request, a test, a rolled-back import).
    read = Reader()
    recent = RecentReads(seconds=60)
    with transaction.atomic():
        assert [recent.get_or_read("k", read) for _ in range(2)] == ["answer 1", "answer 2"]


@pytest.mark.django_db
def test_a_memo_keeps_answers_inside_transactions_and_forgets_the_least_recently_used():
    from marketdata.recent import Memo, forget_all

    compute = Reader()
    memo = Memo(max_entries=2)
    with transaction.atomic():
        assert memo.get_or_compute("a", compute) == memo.get_or_compute("a", compute) == "answer 1"
    memo.get_or_compute("b", compute)  # answer 2
    memo.get_or_compute("a", compute)
    memo.get_or_compute("c", compute)  # answer 3: "b" goes
    assert memo.get_or_compute("b", compute) == "answer 4"
    forget_all()
    assert memo.get_or_compute("a", compute) == "answer 5"
