"""The per-process memories of answers that are a function of their key alone."""

from __future__ import annotations

import pytest
from django.db import transaction


class Reader:
    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return f"answer {self.calls}"


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
