"""Forms of the portfolio pages: every policy setting, the holdings editor, the CSV upload, approval.

Validation stays where it lives: field ranges on the model, the rebalancing engine's own checks
in `Portfolio.clean()` (mapped onto the field they name), holdings in `holdings_replace`. These
forms only turn text into values and put each message next to its field.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

from django import forms
from django.core.exceptions import ValidationError
from django.db import transaction
from django.forms import BoundField, formset_factory

from brokers.selectors import broker_accounts_for_user
from marketdata.models import Instrument, symbol_validator
from optimization.core.constraints import check_feasibility, compile_constraints
from optimization.core.errors import InfeasibleConstraints
from optimization.core.names import PLANNING_STRATEGY_NAMES, STRATEGY_NAMES
from optimization.services import asset_info, optimizer_settings_for
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

_SPLIT_COMMAS = re.compile(r"[,\s]+")
_SPLIT_LIMITS = re.compile(r"[;\n]+")


class TextListField(forms.CharField):
    """A list of texts typed as "A, B, C" (or one per line); stored as a JSON list."""

    def __init__(self, *, upper: bool = False, splitter: re.Pattern = _SPLIT_COMMAS, joiner: str = ", ", **kwargs):
        self.upper, self.splitter, self.joiner = upper, splitter, joiner
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return self.joiner.join(str(v) for v in value)
        return value

    def to_python(self, value) -> list[str]:
        text = super().to_python(value) or ""
        items = [item.strip() for item in self.splitter.split(text) if item.strip()]
        return [item.upper() for item in items] if self.upper else items


class PairsField(forms.CharField):
    """Numbers keyed by a name or an age: JSON, or pairs such as "VTI 0.6, BND 0.4" / "40: 0.9, 65: 0.5".

    ``as_list`` stores [[key, value], ...] (glide path knots); otherwise {key: value}.
    """

    widget = forms.Textarea(attrs={"rows": 2})

    def __init__(self, *, as_list: bool = False, upper: bool = True, **kwargs):
        self.as_list, self.upper = as_list, upper
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def prepare_value(self, value):
        """Stored values as pairs ("SPY: 0.6, BND: 0.4"); anything else as JSON."""
        if isinstance(value, dict) and all(isinstance(v, int | float | str) for v in value.values()):
            return ", ".join(f"{k}: {v}" for k, v in value.items())
        if isinstance(value, list) and all(isinstance(p, list | tuple) and len(p) == 2 for p in value):
            return ", ".join(f"{a}: {b}" for a, b in value)
        if isinstance(value, dict | list):
            return json.dumps(value)
        return value

    def to_python(self, value):
        text = (super().to_python(value) or "").strip()
        if not text:
            return None
        if text[0] in "[{":
            try:
                return json.loads(text)
            except json.JSONDecodeError as error:
                where = f"line {error.lineno}, column {error.colno}"
                raise ValidationError(f"not valid JSON: {error.msg} ({where})") from None
        pairs = []
        for chunk in re.split(r"[,;\n]+", text):
            if not chunk.strip():
                continue
            parts = re.split(r"\s*[:=]\s*|\s+", chunk.strip())
            if len(parts) != 2:
                raise ValidationError(f"cannot read {chunk.strip()!r}: write pairs like {self._example()}")
            key, number = parts
            pairs.append((self._key(key, chunk), self._number(number, chunk)))
        return [list(p) for p in pairs] if self.as_list else {k: v for k, v in pairs}

    def _example(self) -> str:
        return '"40: 0.9, 65: 0.5"' if self.as_list else '"VTI 0.6, BND 0.4"'

    def _key(self, key: str, chunk: str):
        if not self.as_list:
            return key.upper() if self.upper else key
        try:
            return float(key) if "." in key else int(key)
        except ValueError:
            raise ValidationError(f"cannot read {chunk.strip()!r}: {key!r} is not an age") from None

    @staticmethod
    def _number(text: str, chunk: str) -> float:
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise ValidationError(f"cannot read {chunk.strip()!r}: {text!r} is not a number")
        return number


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
    "band_rel": "Fraction of the target, above 0 and at most 1 (0.25 = 25% of it).",
    "drift_threshold": "Fraction above 0 and at most 1; empty for no drift trigger.",
    "cash_trigger_weight": "Fraction of value; empty for none.",
    "cash_trigger_usd": "USD; empty for none.",
    "rebalancing_strategy": f"One of {', '.join(PLANNING_STRATEGY_NAMES)} "
    "(administrators may set a plug-in's dotted path).",
    "commission_per_trade_usd": "USD per order.",
    "spread_bps": "Basis points of the notional (0 to 1000).",
    "impact_bps": "Basis points of the notional (0 to 1000).",
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
        upper=True,
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
    excluded_symbols = TextListField(upper=True, label="Excluded symbols", help_text="Never held, comma-separated.")
    do_not_trade = TextListField(upper=True, label="Do not trade", help_text="Symbols never traded, comma-separated.")
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

    def __init__(self, *args, user, **kwargs):
        instance = kwargs.get("instance") or Portfolio(owner=user)
        kwargs["instance"] = instance
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["broker_account"].queryset = broker_accounts_for_user(user=user).order_by("label")
        if instance.pk:
            self.initial["symbols"] = sorted(instance.instruments.values_list("symbol", flat=True))

    def sections(self) -> list[Section]:
        return [Section(legend, [self[name] for name in names]) for legend, names in SECTIONS]

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
        bad = []
        for symbol in symbols:
            try:
                symbol_validator(symbol)
            except ValidationError:
                bad.append(symbol)
        if bad:
            raise ValidationError(f"not a ticker symbol: {', '.join(bad)}")
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
        if problem:
            self.add_error(_field_of_constraint(problem), problem)

    @transaction.atomic
    def save(self, commit: bool = True) -> Portfolio:
        portfolio = super().save(commit=True)
        portfolio.instruments.set(self.cleaned_data["symbols"])
        return portfolio


def constraints_problem(portfolio: Portfolio, symbols: list[str]) -> str:
    """Why no weights of ``symbols`` can meet the portfolio's bounds and limits, or "" when some can."""
    settings = optimizer_settings_for(portfolio)
    assets = asset_info(symbols)
    try:
        universe, _ = settings.constraints.universe(symbols, assets)
        check_feasibility(compile_constraints(universe, assets, settings.constraints))
    except InfeasibleConstraints as error:
        return str(error)
    return ""


def _field_of_constraint(message: str) -> str | None:
    starts = {
        "the minimum weights": "min_weight",
        "the maximum weights": "max_weight",
        "group ": "group_limits",
        "the ESG floor": "esg_floor",
        "every asset is excluded": "excluded_symbols",
    }
    for start, name in starts.items():
        if message.startswith(start):
            return name
    return "weight_overrides" if ": its minimum weight" in message else None


class HoldingRowForm(forms.Form):
    """One holding as typed; `holdings_replace` validates the whole set (texts, so it sees what was typed)."""

    symbol = forms.CharField(required=False, max_length=20, widget=forms.TextInput(attrs={"size": 8}))
    quantity = forms.CharField(
        required=False, max_length=40, widget=forms.TextInput(attrs={"inputmode": "decimal", "size": 14})
    )
    cost_basis_usd = forms.CharField(
        required=False,
        max_length=40,
        label="Cost basis (USD)",
        widget=forms.TextInput(attrs={"inputmode": "decimal", "size": 14}),
    )

    def is_blank(self) -> bool:
        data = self.cleaned_data if hasattr(self, "cleaned_data") else {}
        return not any((data.get(name) or "").strip() for name in ("symbol", "quantity", "cost_basis_usd"))


HoldingFormSet = formset_factory(HoldingRowForm, extra=3, can_delete=True, max_num=500, validate_max=True)


def _cash(value: str):
    """Cash as `holdings_replace` accepts it (its own parser), the message on the form's field."""
    try:
        return cash_parse(value)
    except ValidationError as error:
        raise ValidationError(error.messages) from None


class CashForm(forms.Form):
    cash_usd = forms.CharField(
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
    cash_usd = forms.CharField(
        label="Cash (USD)",
        required=False,
        max_length=40,
        help_text="Leave empty to keep the current cash.",
        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
    )

    def clean_cash_usd(self):
        value = self.cleaned_data["cash_usd"].strip()
        return _cash(value) if value else None


class ApproveForm(forms.Form):
    """Confirms sending a run's orders; a live account asks for the owner's password again."""

    password = forms.CharField(
        label="Your password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="This account trades real money: enter your password to confirm.",
    )

    def __init__(self, *args, user, live: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.user, self.live = user, live
        if not live:
            del self.fields["password"]

    def clean_password(self) -> str:
        password = self.cleaned_data.get("password", "")
        if not password:
            raise ValidationError("enter your password to send orders for real money")
        if not self.user.check_password(password):
            raise ValidationError("the password is not correct")
        return password
