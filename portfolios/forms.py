"""Forms of the portfolio pages: every policy setting, the holdings editor, the CSV upload, approval.

Validation stays where it lives: field ranges on the model, the rebalancing engine's own checks
in `Portfolio.clean()` (mapped onto the field they name), holdings in `holdings_replace`. These
forms only turn text into values and put each message next to its field.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError
from django.db import transaction
from django.forms import BaseFormSet, BoundField, formset_factory

from brokers.models import BrokerAccount
from brokers.selectors import broker_accounts_for_user
from ground.form_fields import PlainTextField, plain_formfield
from ground.inputs import InputError, decimal_parse, integer_parse, json_parse, symbol_clean
from marketdata.models import Instrument
from optimization.core.constraints import compile_constraints
from optimization.core.errors import InfeasibleConstraints
from optimization.core.feasibility import check_feasibility
from optimization.core.names import PLANNING_STRATEGY_NAMES, STRATEGY_NAMES
from optimization.services import PORTFOLIO_SETTING_NAMES, asset_info, optimizer_settings_for
from portfolios.models import Portfolio
from portfolios.models.policy_fields import (
    BAND_FIELDS,
    CONSTRAINT_FIELDS,
    ESTIMATOR_FIELDS,
    EXECUTION_FIELDS,
    GLIDE_PATH_FIELDS,
    PLANNING_FIELDS,
)
from portfolios.services.holdings import cash_parse
from portfolios.services.paper_seed import paper_seed_refusal
from portfolios.services.portfolio_lock import portfolio_locked
from two_factor.forms import RealMoneyForm

_SPLIT_COMMAS = re.compile(r"[,\s]+")
_SPLIT_LIMITS = re.compile(r"[;\n]+")


class TextListField(PlainTextField):
    """A list of texts typed as "A, B, C" (or one per line); stored as a JSON list. ``symbols``:
    each item is a ticker symbol, upper-cased."""

    def __init__(self, *, symbols: bool = False, splitter: re.Pattern = _SPLIT_COMMAS, joiner: str = ", ", **kwargs):
        self.symbols, self.splitter, self.joiner = symbols, splitter, joiner
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return self.joiner.join(str(v) for v in value)
        return value

    def to_python(self, value) -> list[str]:
        text = super().to_python(value) or ""
        items = [item.strip() for item in self.splitter.split(text) if item.strip()]
        if not self.symbols:
            return items
        cleaned, bad = [], []
        for item in items:
            try:
                cleaned.append(symbol_clean(item))
            except InputError:
                bad.append(item)
        if bad:
            raise ValidationError(f"not a ticker symbol: {', '.join(bad)}")
        return cleaned


class PairsField(PlainTextField):
    """Numbers keyed by a symbol or an age: JSON, or pairs such as "VTI 0.6, BND 0.4" / "40: 0.9, 65: 0.5".

    ``as_list`` stores [[age, value], ...] (glide path knots); otherwise {SYMBOL: value}. Numbers are
    plain decimals of at most 10 decimal places (weights and shares), stored as JSON numbers.
    """

    widget = forms.Textarea(attrs={"rows": 2})

    def __init__(self, *, as_list: bool = False, **kwargs):
        self.as_list = as_list
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def prepare_value(self, value):
        """Stored values as pairs ("SPY: 0.6, BND: 0.4"); anything else as JSON."""
        if isinstance(value, dict) and all(isinstance(v, int | float | str) for v in value.values()):
            return ", ".join(f"{k}: {_plain_number(v)}" for k, v in value.items())
        if isinstance(value, list) and all(isinstance(p, list | tuple) and len(p) == 2 for p in value):
            return ", ".join(f"{_plain_number(a)}: {_plain_number(b)}" for a, b in value)
        if isinstance(value, dict | list):
            return json.dumps(value)
        return value

    def to_python(self, value):
        text = super().to_python(value) or ""
        if not text:
            return None
        if text[0] in "[{":
            return self._json(text)
        pairs = []
        for chunk in re.split(r"[,;\n]+", text):
            if not chunk.strip():
                continue
            parts = re.split(r"\s*[:=]\s*|\s+", chunk.strip())
            if len(parts) != 2:
                raise ValidationError(f"cannot read {chunk.strip()!r}: write pairs like {self._example()}")
            key, number = parts
            pairs.append((self._key(key, chunk), self._number(number, chunk)))
        if self.as_list:
            return [list(p) for p in pairs]
        twice = sorted({key for key, _ in pairs if [k for k, _ in pairs].count(key) > 1})
        if twice:
            raise ValidationError(f"{', '.join(twice)} given twice")
        return dict(pairs)

    def _json(self, text: str):
        try:
            value = json_parse(text, max_length=self.max_length)
        except InputError as error:
            raise ValidationError(f"the text {error}") from None
        if isinstance(value, dict) and not self.as_list:
            cleaned = {}
            for key, number in value.items():
                try:
                    symbol = symbol_clean(key)
                except InputError as error:
                    raise ValidationError(f"the symbol {error}") from None
                if symbol in cleaned:
                    raise ValidationError(f"{symbol} given twice")
                cleaned[symbol] = number
            return cleaned
        return value

    def _example(self) -> str:
        return '"40: 0.9, 65: 0.5"' if self.as_list else '"VTI 0.6, BND 0.4"'

    def _key(self, key: str, chunk: str):
        try:
            if not self.as_list:
                return symbol_clean(key)
            age = decimal_parse(key, max_digits=5, decimal_places=2)
        except InputError as error:
            what = "the age" if self.as_list else "the symbol"
            raise ValidationError(f"cannot read {chunk.strip()!r}: {what} {error}") from None
        return int(age) if age == age.to_integral_value() else float(age)

    @staticmethod
    def _number(text: str, chunk: str) -> float:
        try:
            return float(decimal_parse(text, max_digits=12, decimal_places=10))
        except InputError as error:
            raise ValidationError(f"cannot read {chunk.strip()!r}: the number {error}") from None


def _plain_number(value):
    """A stored JSON number as the plain notation the field reads back (1e-05 as 0.00001)."""
    return format(Decimal(repr(value)), "f") if isinstance(value, float) else value


@dataclass
class Section:
    """A fieldset of a form, shaped like a form for templates/includes/form_fields.html."""

    legend: str
    visible_fields: list[BoundField]
    hidden_fields: list = field(default_factory=list)
    non_field_errors: list = field(default_factory=list)


PROFILE = ["name", "active", "base_currency", *GLIDE_PATH_FIELDS]
OPTIMIZATION = [*ESTIMATOR_FIELDS, *CONSTRAINT_FIELDS]
REBALANCING = [*BAND_FIELDS, *PLANNING_FIELDS, "manual_targets"]
EXECUTION = list(EXECUTION_FIELDS)
SECTIONS = [
    ("Profile and glide path", PROFILE),
    ("Optimization", OPTIMIZATION),
    ("Rebalancing", REBALANCING),
    ("Execution", EXECUTION),
    ("Universe", ["symbols"]),
]

HELP = {
    "age": "18 to 110; the glide path's age unless a birth year is given.",
    "birth_year": "Wins over the age when both are set.",
    "glide_path_class": "Dotted path of a plug-in glide path class (set by an administrator); empty for the "
    "built-in one.",
    "safe_bond_share": "Bond share of the safe portfolio, 0 to 1 (0.8 = 80%).",
    "strategy": f"One of {', '.join(STRATEGY_NAMES)} (administrators may set a plug-in's dotted path).",
    "risk_free_rate": "Annual, as a fraction (0.02 = 2%).",
    "target_volatility": "efficient_risk only: annual volatility as a fraction.",
    "target_return": "efficient_return only: annual return as a fraction.",
    "risk_aversion": "max_quadratic_utility only.",
    "min_weight": "Per asset, as a fraction of value (0.02 = 2%); at most the maximum weight.",
    "max_weight": "Per asset, as a fraction of value (0.4 = 40%).",
    "weight_overrides": 'Per-asset bounds as JSON, e.g. {"AAPL": [0.02, 0.10]} (null for no bound).',
    "esg_floor": "Score from 0 to 100; empty for none.",
    "l2_gamma": "L2 regularisation (spreads weight over more assets); 0 for none.",
    "band_abs": "Fraction of value, above 0 and at most 1 (0.05 = 5 percentage points).",
    "band_mode": "absolute: the absolute band; relative: the relative band; five_twenty_five: the narrower of "
    "the two; hybrid: the wider of the two.",
    "band_rel": "Fraction of the target, above 0 and at most 1 (0.25 = 25% of it).",
    "unheld_outside_band": "A symbol with a positive target and no shares held counts as outside its band: the "
    "band trigger fires and the threshold strategy buys it.",
    "drift_threshold": "Fraction above 0 and at most 1; empty for no drift trigger.",
    "cash_trigger_weight": "Fraction of value; empty for none.",
    "cash_trigger_usd": "USD; empty for none.",
    "rebalancing_strategy": f"One of {', '.join(PLANNING_STRATEGY_NAMES)} "
    "(administrators may set a plug-in's dotted path).",
    "commission_per_trade_usd": "USD per order.",
    "spread_bps": "Basis points of the notional (0 to 1000).",
    "impact_bps": "Basis points of the notional (0 to 1000).",
    "cash_flow_to": "cash_flow strategy: target fills an underweight holding to its target (and sells an "
    "overweight one down to it for a withdrawal); band_edge only to the nearest edge of its band.",
    "min_trade_usd": "No order below this notional (USD).",
    "cash_buffer_weight": "Cash target as a fraction of value (0.0025 = 25 bps).",
    "max_turnover": "One-way turnover cap per rebalance as a fraction; empty for none.",
    "broker_account": "Where orders go (one of your broker accounts, each backing one portfolio); empty = plans only.",
    "mode": "Propose: each plan waits for your approval. Auto: the daily run executes plans.",
}


LABELS = {
    "use_glide_path": "Use the glide path",
    "birth_year": "Birth year",
    "safe_bond_share": "Safe portfolio bond share",
    "returns_method": "Expected returns estimator",
    "cov_method": "Covariance estimator",
    "risk_free_rate": "Risk-free rate",
    "lookback_days": "Lookback (days)",
    "min_observations": "Minimum observations",
    "min_weight": "Minimum weight",
    "max_weight": "Maximum weight",
    "esg_floor": "ESG floor",
    "esg_mode": "ESG mode",
    "l2_gamma": "L2 regularisation (gamma)",
    "band_mode": "Band mode",
    "band_abs": "Absolute band",
    "band_rel": "Relative band",
    "band_trigger": "Band trigger",
    "cooldown_days": "Cooldown (days)",
    "cash_trigger_weight": "Cash trigger (share of value)",
    "cash_trigger_usd": "Cash trigger (USD)",
    "rebalancing_strategy": "Planning strategy",
    "threshold_to": "Threshold strategy trades to",
    "cash_flow_to": "Cash-flow strategy trades to",
    "unheld_outside_band": "Unheld target outside its band",
    "commission_per_trade_usd": "Commission per trade (USD)",
    "spread_bps": "Spread (bps)",
    "impact_bps": "Market impact (bps)",
    "min_trade_usd": "Minimum trade (USD)",
    "cash_buffer_weight": "Cash buffer",
    "max_turnover": "Maximum turnover",
    "drift_cost_bps": "Drift cost (bps per pp)",
    "tracking_error_aversion": "Tracking-error aversion",
    "order_type": "Order type",
}


class PortfolioForm(forms.ModelForm):
    """Every policy setting of a portfolio, in sections; saved with its universe in one transaction."""

    symbols = TextListField(
        symbols=True,
        label="Instruments (universe)",
        help_text="Symbols the optimizer allocates over, comma-separated (e.g. SPY, BND). Holdings join it.",
    )
    fallbacks = TextListField(
        label="Fallbacks",
        help_text='Strategies tried in order when the chosen one fails, e.g. "min_volatility, equal_weight"; '
        "empty for none.",
    )
    group_limits = TextListField(
        splitter=_SPLIT_LIMITS,
        joiner="; ",
        label="Group limits",
        help_text='Separated by ";", e.g. "technology &lt;= 30%; bonds &gt;= 20%; sector:Energy &lt;= 10%".',
    )
    excluded_symbols = TextListField(symbols=True, label="Excluded symbols", help_text="Never held, comma-separated.")
    do_not_trade = TextListField(symbols=True, label="Do not trade", help_text="Symbols never traded, comma-separated.")
    glide_path_knots = PairsField(
        as_list=True,
        label="Glide path knots",
        help_text='Custom curve as age: equity share pairs, e.g. "40: 0.9, 65: 0.5, 72: 0.3" (ages increasing, '
        "shares from 0 to 1); empty for the default curve.",
    )
    manual_targets = PairsField(
        label="Manual targets",
        help_text='Fixed target weights summing to 1, e.g. "VTI: 0.6, BND: 0.4" (or JSON); empty to use the optimizer.',
    )

    class Meta:
        model = Portfolio
        fields = [name for _, names in SECTIONS for name in names if name != "symbols"]
        widgets = {
            "strategy": forms.TextInput(attrs={"list": "strategy-names"}),
            "rebalancing_strategy": forms.TextInput(attrs={"list": "planning-strategy-names"}),
            "weight_overrides": forms.Textarea(attrs={"rows": 2}),
        }
        help_texts = HELP
        labels = LABELS
        # Numbers, text and JSON read with the same strict grammar as the CSV files and the API.
        formfield_callback = plain_formfield

    def __init__(self, *args, user, **kwargs):
        instance = kwargs.get("instance") or Portfolio(owner=user)
        kwargs["instance"] = instance
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["broker_account"].queryset = broker_accounts_for_user(user=user).order_by("label")
        if instance.pk:
            self.initial["symbols"] = sorted(instance.instruments.values_list("symbol", flat=True))
            # Offered while one of the accounts to choose from is a paper account nothing has used yet.
            paper = self.fields["broker_account"].queryset.filter(kind=BrokerAccount.Kind.PAPER)
            if any(not paper_seed_refusal(account=account, portfolio=instance) for account in paper):
                self.fields["seed_paper_account"] = forms.BooleanField(
                    required=False,
                    label="Seed this paper account with the portfolio's holdings and cash",
                    help_text="Only for a paper account with no positions and no orders yet: it then holds what "
                    "this portfolio holds (each at its latest stored close as cost) and the same cash.",
                )

    def sections(self) -> list[Section]:
        sections = [Section(legend, [self[name] for name in names]) for legend, names in SECTIONS]
        if "seed_paper_account" in self.fields:
            next(s for s in sections if s.legend == "Execution").visible_fields.append(self["seed_paper_account"])
        return sections

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        # The unique (owner, name) constraint is not checked by the model form (owner is not a field).
        taken = Portfolio.objects.filter(owner=self.user, name__iexact=name).exclude(pk=self.instance.pk)
        if taken.exists():
            raise ValidationError(f"you already have a portfolio named {name!r}")
        return name

    def _plugin_path(self, name: str, builtin: tuple[str, ...] = ()) -> str:
        """A dotted path makes the server import and run that code: only staff (who have the admin)
        may set one; a value an administrator set stays as it is."""
        value = (self.cleaned_data.get(name) or "").strip()
        unchanged = value == (getattr(self.instance, name) or "")
        if "." in value and not unchanged and not getattr(self.user, "is_staff", False):
            choices = f"choose one of {', '.join(builtin)}: " if builtin else ""
            raise ValidationError(f"{choices}plug-ins by dotted path are set by an administrator")
        return value

    def clean_strategy(self) -> str:
        return self._plugin_path("strategy", STRATEGY_NAMES)

    def clean_rebalancing_strategy(self) -> str:
        return self._plugin_path("rebalancing_strategy", PLANNING_STRATEGY_NAMES)

    def clean_glide_path_class(self) -> str:
        return self._plugin_path("glide_path_class")

    def clean_symbols(self) -> list[Instrument]:
        symbols = list(dict.fromkeys(self.cleaned_data["symbols"]))
        instruments = list(Instrument.objects.filter(symbol__in=symbols))
        unknown = sorted(set(symbols) - {i.symbol for i in instruments})
        if unknown:
            raise ValidationError(
                f"unknown symbol {', '.join(unknown)}: fetch its prices first (manage.py fetch_prices --tickers "
                f"{','.join(unknown)})"
            )
        return instruments

    def clean_weight_overrides(self):
        value = self.cleaned_data.get("weight_overrides")
        return {} if value in (None, "") else value

    def clean_seed_paper_account(self) -> bool:
        seed = self.cleaned_data["seed_paper_account"]
        if not seed or "broker_account" not in self.cleaned_data:
            return seed
        account = self.cleaned_data["broker_account"]
        if account is None:
            raise ValidationError("choose the paper account to seed under Broker account")
        refusal = paper_seed_refusal(account=account, portfolio=self.instance)
        if refusal:
            raise ValidationError(refusal)
        return seed

    def clean_broker_account(self):
        account = self.cleaned_data.get("broker_account")
        if account is not None:
            # One broker account backs one portfolio: syncing makes the portfolio hold what the account holds.
            other = Portfolio.objects.filter(broker_account=account).exclude(pk=self.instance.pk).first()
            if other is not None:
                raise ValidationError(f"{account.label} already backs the portfolio {other.name!r}")
        return account

    def _update_errors(self, errors: ValidationError) -> None:
        # A value outside a model field's range fails both Django's validator and the engine's
        # own check in Portfolio.clean(); one message per field is enough.
        if hasattr(errors, "error_dict"):
            errors = ValidationError({name: found[:1] for name, found in errors.error_dict.items()})
        super()._update_errors(errors)

    def _post_clean(self) -> None:
        super()._post_clean()
        symbols = self.cleaned_data.get("symbols")
        if self.errors or not symbols or self.instance.manual_targets:
            return
        # The optimizer's first step, before any price is read: can the universe's weights satisfy
        # the bounds and limits at all? Otherwise every daily run would fail on these settings.
        problem = constraints_problem(self.instance, sorted(i.symbol for i in symbols))
        if problem is not None:
            self.add_error(FIELD_OF_CONSTRAINT.get(problem.setting), problem.explanation)

    def save(self, commit: bool = True) -> Portfolio:
        """Create the portfolio, or write the form's own fields under the portfolio's lock: a
        settings save never writes back the cash or holdings another request changed meanwhile."""
        if self.instance.pk is None:
            with transaction.atomic():
                portfolio = super().save(commit=True)
                portfolio.instruments.set(self.cleaned_data["symbols"])
            return portfolio
        with portfolio_locked(self.instance.pk):
            self.instance.save(update_fields=[*self._meta.fields, "updated_at"])
            self._save_m2m()
            self.instance.instruments.set(self.cleaned_data["symbols"])
        return self.instance


def constraints_problem(portfolio: Portfolio, symbols: list[str]) -> InfeasibleConstraints | None:
    """Why no weights of ``symbols`` can meet the portfolio's bounds and limits (the settings named
    by their labels), or None when some can."""
    settings = optimizer_settings_for(portfolio)
    assets = asset_info(symbols)
    try:
        universe, _ = settings.constraints.universe(symbols, assets)
        check_feasibility(compile_constraints(universe, assets, settings.constraints), PORTFOLIO_SETTING_NAMES)
    except InfeasibleConstraints as error:
        return error
    return None


# The form field of each setting an infeasibility names (`InfeasibleConstraints.setting`).
FIELD_OF_CONSTRAINT = {
    "min_weight": "min_weight",
    "max_weight": "max_weight",
    "weight_overrides": "weight_overrides",
    "groups": "group_limits",
    "esg_floor": "esg_floor",
    "excluded": "excluded_symbols",
}


class HoldingRowForm(forms.Form):
    """One holding as typed; `holdings_replace` validates the whole set (texts, so it sees what was typed)."""

    symbol = PlainTextField(required=False, max_length=20, widget=forms.TextInput(attrs={"size": 8}))
    quantity = PlainTextField(
        required=False, max_length=40, widget=forms.TextInput(attrs={"inputmode": "decimal", "size": 14})
    )
    cost_basis_usd = PlainTextField(
        required=False,
        max_length=40,
        label="Cost basis (USD)",
        widget=forms.TextInput(attrs={"inputmode": "decimal", "size": 14}),
    )

    def is_blank(self) -> bool:
        data = self.cleaned_data if hasattr(self, "cleaned_data") else {}
        return not any((data.get(name) or "").strip() for name in ("symbol", "quantity", "cost_basis_usd"))


CHANGED_FORM = (
    "the form was changed before it was sent (its row count does not match its rows): reload the page and "
    "enter the holdings again"
)


class BaseHoldingFormSet(BaseFormSet):
    """The rows the page sent, all of them: a row count that is not a plain number or disagrees with
    the rows sent (a tampered ``TOTAL_FORMS=-1`` would otherwise read as "no rows") is refused."""

    default_error_messages = {
        **BaseFormSet.default_error_messages,
        "missing_management_form": CHANGED_FORM,
        "too_many_forms": "the form sent more rows than the editor takes (at most %(num)d holdings at once): "
        "reload the page and enter the holdings again, or upload them as a CSV file",
    }

    def clean(self) -> None:
        counts = {}
        for name in ("TOTAL_FORMS", "INITIAL_FORMS"):
            try:
                counts[name] = integer_parse(self.data.get(self.add_prefix(name), ""), max_digits=4, minimum=0)
            except InputError:
                raise ValidationError(CHANGED_FORM) from None
        row_keys = re.compile(rf"^{re.escape(self.prefix)}-([0-9]+)-")
        indexes = [int(match.group(1)) for key in self.data if (match := row_keys.match(key))]
        if counts["INITIAL_FORMS"] > counts["TOTAL_FORMS"] or any(i >= counts["TOTAL_FORMS"] for i in indexes):
            raise ValidationError(CHANGED_FORM)


#: Rows the editor takes at once: each sends up to four fields, and Django refuses a request of more
#: than DATA_UPLOAD_MAX_NUMBER_FIELDS (1,000). Larger sets come as a CSV file.
MAX_HOLDING_ROWS = 200

HoldingFormSet = formset_factory(
    HoldingRowForm, formset=BaseHoldingFormSet, extra=3, can_delete=True, max_num=MAX_HOLDING_ROWS, validate_max=True
)


def _cash(value: str):
    """Cash as `holdings_replace` accepts it (its own parser), the message on the form's field."""
    try:
        return cash_parse(value)
    except ValidationError as error:
        raise ValidationError(error.messages) from None


class CashForm(forms.Form):
    cash_usd = PlainTextField(
        label="Cash (USD)",
        max_length=40,
        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
        help_text="Uninvested US dollars, at least 0.",
    )

    def clean_cash_usd(self):
        return _cash(self.cleaned_data["cash_usd"])


class HoldingsUploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="Header symbol,quantity or symbol,quantity,cost_basis_usd; one holding per line. "
        "The file replaces every holding.",
    )
    cash_usd = PlainTextField(
        label="Cash (USD)",
        required=False,
        max_length=40,
        help_text="Leave empty to keep the current cash.",
        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
    )

    def clean_cash_usd(self):
        value = self.cleaned_data["cash_usd"].strip()
        return _cash(value) if value else None


class SyncConfirmForm(forms.Form):
    """The sync a person reviewed, by the fingerprints of the two answers it compared (the broker's
    positions and cash, the portfolio's holdings and cash): confirming applies only that sync."""

    broker_fingerprint = forms.RegexField(regex=r"^[0-9a-f]{64}\Z", widget=forms.HiddenInput)
    holdings_fingerprint = forms.RegexField(regex=r"^[0-9a-f]{64}\Z", widget=forms.HiddenInput)


class ApproveForm(RealMoneyForm):
    """Confirms sending a run's orders. A live account asks for the owner's password again and needs
    two-factor authentication: a code, unless this session (``verified``) entered one already."""

    password = forms.CharField(
        label="Your password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="This account trades real money: enter your password to confirm.",
    )
    field_order = ["password", "code"]

    def __init__(self, *args, user, live: bool, verified: bool, **kwargs):
        super().__init__(*args, user=user, verified=verified, required=live, **kwargs)
        self.live = live
        if not live:
            del self.fields["password"]

    def clean_password(self) -> str:
        password = self.cleaned_data.get("password", "")
        if not password:
            raise ValidationError("enter your password to send orders for real money")
        if not self.user.check_password(password):
            raise ValidationError("the password is not correct")
        return password
