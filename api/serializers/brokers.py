"""Broker accounts. Credentials are write-only (only "set" / "not set" is returned); the web forms
validate input, so entering credentials or marking an account live asks for the password here too."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.serializers.base import (
    BooleanField,
    CharField,
    DecimalField,
    StrictSerializer,
    password_field,
    strict_field_mapping,
)
from brokers.forms import ALL_CREDENTIALS
from brokers.models import BrokerAccount, PaperAccount

CREDENTIAL_STATES = ["set", "not set"]


class BrokerAccountSerializer(serializers.ModelSerializer):
    serializer_field_mapping = strict_field_mapping(serializers.ModelSerializer.serializer_field_mapping)
    credentials = serializers.SerializerMethodField(help_text='"set" or "not set" per credential of the kind.')
    portfolios = serializers.PrimaryKeyRelatedField(
        many=True, read_only=True, help_text="The portfolio this account backs (at most one)."
    )
    paper_cash_usd = DecimalField(
        source="paper.cash_usd",
        max_digits=20,
        decimal_places=4,
        read_only=True,
        allow_null=True,
        help_text="A paper account's simulated cash in USD; null for other kinds.",
    )
    paper_session_mode = serializers.ChoiceField(
        source="paper.session_mode",
        choices=PaperAccount.SessionMode.choices,
        read_only=True,
        allow_null=True,
        help_text="A paper account's trading hours; null for other kinds.",
    )

    class Meta:
        model = BrokerAccount
        fields = [
            "id",
            "kind",
            "label",
            "is_live",
            "live_opt_in_at",
            "credentials",
            "portfolios",
            "paper_cash_usd",
            "paper_session_mode",
            "created_at",
        ]

    @extend_schema_field(serializers.DictField(child=serializers.ChoiceField(choices=CREDENTIAL_STATES)))
    def get_credentials(self, account: BrokerAccount) -> dict[str, str]:
        return account.credential_status()


def _credential() -> CharField:
    return CharField(required=False, allow_blank=True, max_length=200, write_only=True)


class CredentialsSerializer(StrictSerializer):
    api_key = _credential()
    secret_key = _credential()
    host = _credential()
    port = _credential()
    client_id = _credential()


assert set(CredentialsSerializer().fields) == set(ALL_CREDENTIALS)


class BrokerAccountCreateSerializer(StrictSerializer):
    kind = serializers.ChoiceField(choices=BrokerAccount.Kind.choices, default=BrokerAccount.Kind.PAPER)
    label = CharField(max_length=100)
    is_live = BooleanField(default=False)
    paper_cash_usd = DecimalField(max_digits=20, decimal_places=4, min_value=0, required=False)
    paper_session_mode = serializers.ChoiceField(
        choices=PaperAccount.SessionMode.choices, default=PaperAccount.SessionMode.EXCHANGE
    )
    credentials = CredentialsSerializer(required=False, write_only=True)
    password = password_field("Your password: needed when you send credentials or mark the account live.")


class BrokerAccountUpdateSerializer(StrictSerializer):
    label = CharField(max_length=100, required=False)
    is_live = BooleanField(required=False)
    credentials = CredentialsSerializer(required=False, write_only=True)
    password = password_field("Your password: needed when you change credentials or the live flag.")
