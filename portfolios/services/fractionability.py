"""Whether a portfolio's plans may trade fractions of each symbol, and why not when they may not.

The answer, in order: the portfolio's `fractional_shares` setting (off: whole shares throughout);
the last answer of its broker account (`BrokerAsset`, recorded by a sync); the instrument's own
setting (the reference table's, or an administrator's); otherwise "not known", which plans treat
as whole shares (every broker accepts them) and say so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from brokers.base import Asset, BrokerError
from brokers.models import BrokerAccount
from marketdata.models import Instrument
from portfolios.models import BrokerAsset, Portfolio

# Why a plan trades a symbol in whole shares.
PORTFOLIO_SETTING = "portfolio_setting"
BROKER = "broker"
INSTRUMENT = "instrument"
NOT_KNOWN = "not_known"


@dataclass(frozen=True)
class ShareRule:
    """How a portfolio's plans size one symbol.

    ``fractionable``: the broker account's answer, else the instrument's setting; None when
    neither says. ``reason``: why the plans trade it in whole shares ("" when they may trade
    fractions); ``why``: that reason for a person.
    """

    symbol: str
    fractionable: bool | None
    reason: str
    why: str

    @property
    def whole_shares(self) -> bool:
        return bool(self.reason)

    def as_json(self) -> dict[str, str]:
        return {"symbol": self.symbol, "reason": self.reason, "why": self.why}


def share_rules_for(
    *, portfolio: Portfolio, instruments: Mapping[str, Instrument], answers: Mapping[int, BrokerAsset] | None = None
) -> dict[str, ShareRule]:
    """The rule of each symbol of ``instruments`` ({symbol: Instrument}) for ``portfolio``'s plans.

    Only the portfolio's own broker account is consulted: another user's broker never decides it.
    ``answers``: its account's answers by instrument id (`broker_answers_read`) when the caller read them.
    """
    if answers is None:
        answers = broker_answers_read([portfolio.broker_account_id]).get(portfolio.broker_account_id, {})
    return {
        symbol: _rule(portfolio, symbol, instrument, answers.get(instrument.pk))
        for symbol, instrument in instruments.items()
    }


def broker_answers_read(account_ids: Iterable[int | None]) -> dict[int, dict[int, BrokerAsset]]:
    """What each broker account last answered about fractions, by account id and instrument id."""
    answers: dict[int, dict[int, BrokerAsset]] = {}
    ids = [account_id for account_id in set(account_ids) if account_id is not None]
    if ids:
        rows = BrokerAsset.objects.filter(broker_account_id__in=ids, fractionable__isnull=False)
        for answer in rows.select_related("broker_account"):
            answers.setdefault(answer.broker_account_id, {})[answer.instrument_id] = answer
    return answers


def _rule(portfolio: Portfolio, symbol: str, instrument: Instrument, answer: BrokerAsset | None) -> ShareRule:
    fractionable = answer.fractionable if answer is not None else instrument.fractionable
    if not portfolio.fractional_shares:
        reason, why = PORTFOLIO_SETTING, "this portfolio's fractional shares setting is off"
    elif fractionable:
        reason, why = "", ""
    elif answer is not None:
        label, day = answer.broker_account.label, _day(answer.checked_at)
        reason, why = BROKER, f"the broker account {label} trades it in whole shares only (asked {day})"
    elif fractionable is False:
        reason, why = INSTRUMENT, "its instrument setting is whole shares only"
    else:
        reason = NOT_KNOWN
        where = "set it in the admin's instrument settings"
        if portfolio.broker_account_id is not None:
            where = f"sync from the broker, or {where}"
        why = f"not known whether it trades in fractions ({where})"
    return ShareRule(symbol=symbol, fractionable=fractionable, reason=reason, why=why)


def whole_shares_rows(rules: Mapping[str, ShareRule]) -> list[dict[str, str]]:
    """The symbols traded in whole shares with why, ordered so that equal reasons are adjacent
    (templates group them with ``regroup``)."""
    return [rule.as_json() for rule in sorted(rules.values(), key=lambda r: (r.why, r.symbol)) if rule.whole_shares]


def not_known_note(rules: Mapping[str, ShareRule]) -> str | None:
    """The plan's note for the symbols planned in whole shares because nobody said whether
    fractions of them trade, or None when there is none."""
    unknown = sorted((rule for rule in rules.values() if rule.reason == NOT_KNOWN), key=lambda r: r.symbol)
    if not unknown:
        return None
    return f"{', '.join(r.symbol for r in unknown)} planned in whole shares: {unknown[0].why}"


def broker_assets_record(
    answers: Mapping[BrokerAccount, Mapping[str, Asset | BrokerError]],
    *,
    instruments: Mapping[str, Instrument],
    at: datetime,
) -> int:
    """Store what each account's broker answered ({account: {symbol: Asset, or the error that
    symbol got}}) for the symbols of ``instruments``, in one statement; an error keeps the
    previous answer. Returns the answers stored."""
    rows = [
        BrokerAsset(
            broker_account=account,
            instrument=instruments[symbol],
            tradable=bool(answer.tradable),
            fractionable=answer.fractionable,
            checked_at=at,
        )
        for account, answered in answers.items()
        for symbol, answer in answered.items()
        if isinstance(answer, Asset) and symbol in instruments
    ]
    if rows:
        BrokerAsset.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["broker_account", "instrument"],
            update_fields=["tradable", "fractionable", "checked_at"],
        )
    return len(rows)


def _day(moment: datetime) -> str:
    return timezone.localtime(moment).date().isoformat()
