"""Forms of the broker account pages.

Credentials are write-only: a page never renders a stored one, and an empty input keeps what is
stored. What the owner typed is rendered back after a refused POST, so one wrong field does not
clear the others. Entering a credential or changing the live flag asks for the owner's password
again. The create form serves every kind: each field says the kinds it belongs to (``data-kinds``,
read by static/js/broker_account_form.js) and the fields of kinds not chosen are ignored.
"""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from brokers.models import CREDENTIAL_FIELDS, BrokerAccount, PaperAccount
from brokers.selectors import broker_accounts_for_user
from brokers.services.accounts import broker_account_create, broker_account_set_credentials
from brokers.services.connection import ConnectionTest, broker_connection_test
from ground.form_fields import PlainDecimalField, PlainTextField
from two_factor.forms import PasswordConfirmation, RealMoneyForm

CREDENTIAL_LABELS = {
    "api_key": "API key ID (Alpaca)",
    "secret_key": "Secret key (Alpaca)",
    "host": "Host (Interactive Brokers: IB Gateway / TWS)",
    "port": "Port (Interactive Brokers)",
    "client_id": "Client id (Interactive Brokers)",
}
ALL_CREDENTIALS = tuple(CREDENTIAL_LABELS)
#: Credentials that are secrets: typed into password inputs. IB's host, port and client id are not.
SECRET_CREDENTIALS = ("api_key", "secret_key")
#: The account kinds each field of the create form belongs to; fields not named serve every kind.
FIELD_KINDS: dict[str, tuple[str, ...]] = {
    "is_live": tuple(kind for kind in BrokerAccount.Kind.values if kind != BrokerAccount.Kind.PAPER),
    "paper_cash_usd": (BrokerAccount.Kind.PAPER,),
    "paper_session_mode": (BrokerAccount.Kind.PAPER,),
    **{name: (kind,) for kind, names in CREDENTIAL_FIELDS.items() for name in names},
}


def _credential_field(name: str) -> forms.CharField:
    # render_value: a refused POST shows what was just typed again. Stored credentials never reach
    # the form (it has no initial value for them), so nothing stored is rendered.
    if name in SECRET_CREDENTIALS:
        widget = forms.PasswordInput(render_value=True, attrs={"autocomplete": "off"})
    else:
        widget = forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"})
        if name in ("port", "client_id"):
            widget.attrs["inputmode"] = "numeric"
    return PlainTextField(label=CREDENTIAL_LABELS[name], required=False, strip=True, max_length=200, widget=widget)


def _paper_session_mode_field() -> forms.ChoiceField:
    return forms.ChoiceField(
        label="Trading hours (paper)",
        choices=PaperAccount.SessionMode.choices,
        initial=PaperAccount.SessionMode.EXCHANGE,
        required=False,  # not sent: NYSE hours for a new account, unchanged for an existing one
        help_text="NYSE hours, or always open: a simulation that fills orders at any hour.",
    )


def _password_field(help_text: str) -> forms.CharField:
    return forms.CharField(
        label="Your password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text=help_text,
    )


class _AccountForm(forms.Form):
    """Shared checks: label unique per owner, credentials only of the account's kind, the password."""

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def _kind(self) -> str:
        """The account kind whose credentials the form takes: the chosen one (an edit knows its own)."""
        return self.cleaned_data.get("kind", "")

    def _account(self) -> BrokerAccount | None:
        """The account being edited; None on the create form."""
        return None

    def clean_label(self) -> str:
        label = self.cleaned_data["label"].strip()
        taken = broker_accounts_for_user(user=self.user).filter(label__iexact=label)
        account = self._account()
        if account is not None:
            taken = taken.exclude(pk=account.pk)
        if taken.exists():
            raise ValidationError(f"you already have a broker account named {label!r}")
        return label

    def credentials(self) -> dict[str, str]:
        """The credentials of the account's kind typed in (empty inputs keep what is stored)."""
        names = CREDENTIAL_FIELDS.get(self._kind(), ())
        return {name: self.cleaned_data[name] for name in names if self.cleaned_data.get(name)}

    def _needs_password(self) -> bool:
        return bool(self.credentials())

    def clean(self):
        cleaned = super().clean()
        if self._needs_password():
            password = cleaned.get("password") or ""
            if not password:
                self.add_error("password", "enter your password to change credentials or the live flag")
            elif not self.user.check_password(password):
                self.add_error("password", "the password is not correct")
        return cleaned

    def connection_test(self) -> ConnectionTest | None:
        """Test the typed credentials (over the stored ones), saving nothing; None, with the
        errors added to the form, when the kind or a credential is not valid. Only those fields
        are checked: a test needs no label and no password."""
        self.full_clean()
        for name in list(self.errors):
            if name not in ("kind", *ALL_CREDENTIALS):
                del self.errors[name]
        if self.errors:
            return None
        try:
            return broker_connection_test(
                owner=self.user, kind=self._kind(), credentials=self.credentials(), account=self._account()
            )
        except ValidationError as error:
            self.apply_service_error(error)
            return None

    def apply_service_error(self, error: ValidationError) -> None:
        """Put a service's `ValidationError` next to the field it names."""
        if hasattr(error, "error_dict"):
            for name, errors in error.message_dict.items():
                for message in errors:
                    self.add_error(name if name in self.fields else None, message)
        else:
            for message in error.messages:
                self.add_error(None, message)


class BrokerAccountCreateForm(_AccountForm):
    kind = forms.ChoiceField(choices=BrokerAccount.Kind.choices, initial=BrokerAccount.Kind.PAPER)
    label = PlainTextField(max_length=100)
    is_live = forms.BooleanField(
        required=False,
        label="Live (real money; Alpaca and Interactive Brokers)",
        help_text="Real money also needs ALLOW_LIVE_TRADING on the server and your opt-in with your password.",
    )
    paper_cash_usd = PlainDecimalField(
        label="Starting cash (paper)",
        required=False,
        min_value=Decimal(0),
        max_digits=20,
        decimal_places=4,
        initial=Decimal(100_000),
        help_text="Simulated USD the paper account starts with.",
    )
    paper_session_mode = _paper_session_mode_field()
    api_key = _credential_field("api_key")
    secret_key = _credential_field("secret_key")
    host = _credential_field("host")
    port = _credential_field("port")
    client_id = _credential_field("client_id")
    password = _password_field("Needed when you enter credentials or mark the account live.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, kinds in FIELD_KINDS.items():
            self.fields[name].widget.attrs["data-kinds"] = " ".join(kinds)

    def _needs_password(self) -> bool:
        return super()._needs_password() or bool(self.cleaned_data.get("is_live"))

    def _ignore_other_kinds(self) -> None:
        """Drop what the fields of kinds not chosen hold, errors included: a person may have typed
        into them before choosing the kind. The live flag stays: real money on a paper account is
        refused, never silently dropped."""
        kind = self.cleaned_data.get("kind")
        if not kind:
            return
        for name, kinds in FIELD_KINDS.items():
            if kind not in kinds and name != "is_live":
                self.errors.pop(name, None)
                self.cleaned_data.pop(name, None)

    def clean(self):
        self._ignore_other_kinds()
        cleaned = super().clean()
        if cleaned.get("kind") == BrokerAccount.Kind.PAPER and cleaned.get("is_live"):
            self.add_error("is_live", "a paper account cannot trade real money")
        return cleaned

    def save(self) -> BrokerAccount | None:
        """The new account, or None with the service's errors added to the form."""
        data = self.cleaned_data
        try:
            return broker_account_create(
                owner=self.user,
                kind=data["kind"],
                label=data["label"],
                is_live=data["is_live"],
                credentials=self.credentials(),
                paper_cash_usd=data.get("paper_cash_usd") or Decimal(0),
                paper_session_mode=data.get("paper_session_mode") or PaperAccount.SessionMode.EXCHANGE,
            )
        except ValidationError as error:
            self.apply_service_error(error)
            return None


class BrokerAccountEditForm(_AccountForm):
    """Label, live flag, credentials of the account's kind and a paper account's trading hours
    (the kind itself does not change)."""

    label = PlainTextField(max_length=100)
    is_live = forms.BooleanField(
        required=False,
        label="Live (real money)",
        help_text="Changing it withdraws the live opt-in; opt in again afterwards.",
    )
    password = _password_field("Needed when you change credentials or the live flag.")

    def __init__(self, *args, account: BrokerAccount, **kwargs):
        self.account = account
        paper = PaperAccount.objects.filter(account=account).first()
        initial = {"label": account.label, "is_live": account.is_live}
        if paper is not None:
            initial["paper_session_mode"] = paper.session_mode
        kwargs.setdefault("initial", initial)
        super().__init__(*args, **kwargs)
        for name in CREDENTIAL_FIELDS.get(account.kind, ()):
            self.fields[name] = _credential_field(name)
            state = account.credential_status().get(name, "not set")
            self.fields[name].help_text = f"Currently {state}. Leave empty to keep it."
        if paper is not None:
            self.fields["paper_session_mode"] = _paper_session_mode_field()
        self.order_fields(
            ["label", "is_live", "paper_session_mode", *CREDENTIAL_FIELDS.get(account.kind, ()), "password"]
        )
        if account.kind == BrokerAccount.Kind.PAPER:
            self.fields["is_live"].disabled = True
            self.fields["is_live"].help_text = "A paper account never trades real money."

    def _kind(self) -> str:
        return self.account.kind

    def _account(self) -> BrokerAccount | None:
        return self.account

    def live_changed(self) -> bool:
        return bool(self.cleaned_data.get("is_live")) != self.account.is_live

    def _needs_password(self) -> bool:
        return super()._needs_password() or self.live_changed()

    @transaction.atomic
    def save(self) -> BrokerAccount | None:
        """Apply the changes in one transaction, or return None with the errors added to the form."""
        account = BrokerAccount.objects.select_for_update().get(pk=self.account.pk)
        fields = []
        if self.cleaned_data["label"] != account.label:
            account.label = self.cleaned_data["label"]
            fields.append("label")
        if self.live_changed():
            account.is_live = bool(self.cleaned_data["is_live"])
            # Whichever way the flag moves, a live opt-in given before no longer stands.
            account.live_opt_in_at = None
            fields += ["is_live", "live_opt_in_at"]
        if fields:
            account.save(update_fields=[*fields, "updated_at"])
        session_mode = self.cleaned_data.get("paper_session_mode")
        if session_mode:
            # One UPDATE of one column: the paper broker's own writes to the row (cash) are left alone.
            PaperAccount.objects.filter(account=account).exclude(session_mode=session_mode).update(
                session_mode=session_mode, updated_at=timezone.now()
            )
        credentials = self.credentials()
        if credentials:
            try:
                account = broker_account_set_credentials(account=account, credentials=credentials)
            except ValidationError as error:
                transaction.set_rollback(True)
                self.apply_service_error(error)
                return None
        return account


class LiveOptInForm(PasswordConfirmation, RealMoneyForm):
    """The opt-in to real money: the password again, and two-factor authentication (a code unless this
    session entered one). Pass ``required=account.is_live``: a paper account is refused by the service."""

    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="Opting in lets this account's runs send orders for real money.",
    )
    # The password is checked before the code is spent (the service checks it again).
    field_order = ["password", "code"]
