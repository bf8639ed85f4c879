"""Forms of two-factor authentication, and the base of every form that acts on real money."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from two_factor.services import NEEDS_TWO_FACTOR, CodeCheck, code_check, two_factor_enabled


def code_field() -> forms.CharField:
    return forms.CharField(
        label="Authentication code",
        max_length=32,
        strip=True,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autocapitalize": "none", "spellcheck": "false"}
        ),
        help_text="Six digits from your authenticator app, or one of your recovery codes.",
        error_messages={"required": "enter the code from your authenticator app (or a recovery code)"},
    )


def password_field() -> forms.CharField:
    return forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        error_messages={"required": "enter your password"},
    )


class CodeForm(forms.Form):
    """A code of ``user``'s; once valid, ``check.device`` is the device that accepted it (the code is spent)."""

    code = code_field()

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.check = CodeCheck(None)

    def clean(self):
        cleaned = super().clean()
        # The code is checked (and spent) only once every other field, the password first, is right.
        if "code" in self.fields and not self.errors:
            self.check = code_check(user=self.user, code=cleaned["code"])
            if self.check.device is None:
                self.add_error("code", self.check.error)
        return cleaned


class PasswordConfirmation:
    """A form's ``password`` must be its ``user``'s (checked in field order, before a code is spent)."""

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise ValidationError("the password is not correct")
        return password


class PasswordAndCodeForm(PasswordConfirmation, CodeForm):
    """Turning two-factor authentication off, or new recovery codes: the password and a code."""

    password = password_field()
    field_order = ["password", "code"]


class EnableForm(forms.Form):
    """Turning two-factor authentication on: the password, and a first code from the app."""

    password = password_field()
    code = forms.CharField(
        label="Code from the app",
        max_length=12,
        strip=True,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
        help_text="The six digits the app shows now.",
        error_messages={"required": "enter the six digits the app shows"},
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise ValidationError("the password is not correct")
        return password


class RealMoneyForm(CodeForm):
    """Base of a form that acts on real money: ``user`` needs two-factor authentication, and enters a
    code unless this session already did (``verified``). With ``required=False`` (paper money) it asks
    for nothing. ``check.device`` is the device that accepted a code entered here, if any."""

    def __init__(self, *args, user, verified: bool, required: bool = True, **kwargs):
        super().__init__(*args, user=user, **kwargs)
        self.two_factor_required = required
        self.needs_two_factor_setup = required and not two_factor_enabled(user)
        if verified or not required:
            del self.fields["code"]

    def clean(self):
        if self.needs_two_factor_setup:
            raise ValidationError(NEEDS_TWO_FACTOR)
        return super().clean()
