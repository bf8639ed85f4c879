"""Broker accounts. Credentials are write-only (only "set" / "not set" is returned); the web forms
validate input, so entering credentials or marking an account live asks for the password here too."""

from __future__ import annotations

from rest_framework import serializers

from api.serializers.base import DecimalField, StrictSerializer, password_field
from brokers.forms import ALL_CREDENTIALS
from brokers.models import BrokerAccount, PaperAccount


class BrokerAccountSerializer(serializers.ModelSerializer):
    credentials = serializers.SerializerMethodField(help_text='"set" or "not set" per credential of the kind.')
    portfolios = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = BrokerAccount
        fields = ["id", "kind", "label", "is_live", "live_opt_in_at", "credentials", "portfolios", "created_at"]

    def get_credentials(self, account: BrokerAccount) -> dict[str, str]:
        return account.credential_status()


class CredentialsSerializer(StrictSerializer):
    api_key = serializers.CharField(required=False, allow_blank=True, max_length=200, write_only=True)
    secret_key = serializers.CharField(required=False, allow_blank=True, max_length=200, write_only=True)
    host = serializers.CharField(required=False, allow_blank=True, max_length=200, write_only=True)
    port = serializers.CharField(required=False, allow_blank=True, max_length=200, write_only=True)
    client_id = serializers.CharField(required=False, allow_blank=True, max_length=200, write_only=True)


assert set(CredentialsSerializer().fields) == set(ALL_CREDENTIALS)


class BrokerAccountCreateSerializer(StrictSerializer):
    kind = serializers.ChoiceField(choices=BrokerAccount.Kind.choices, default=BrokerAccount.Kind.PAPER)
    label = serializers.CharField(max_length=100)
    is_live = serializers.BooleanField(default=False)
    paper_cash_usd = DecimalField(max_digits=20, decimal_places=4, min_value=0, required=False)
    paper_session_mode = serializers.ChoiceField(
        choices=PaperAccount.SessionMode.choices, default=PaperAccount.SessionMode.EXCHANGE
    )
    credentials = CredentialsSerializer(required=False, write_only=True)
    password = password_field("Your password: needed when you send credentials or mark the account live.")


class BrokerAccountUpdateSerializer(StrictSerializer):
    label = serializers.CharField(max_length=100, required=False)
    is_live = serializers.BooleanField(required=False)
    credentials = CredentialsSerializer(required=False, write_only=True)
    password = password_field("Your password: needed when you change credentials or the live flag.")
