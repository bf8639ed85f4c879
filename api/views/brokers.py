"""Broker accounts: list, create, read, update (label, live flag, credentials), delete.

The web forms validate (label unique per owner, credentials of the kind, the password for
credentials and the live flag) and call the services; credentials are never returned.
"""

from __future__ import annotations

from django.db.models import ProtectedError
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from api.errors import Conflict
from api.schema import responses
from api.serializers.brokers import (
    BrokerAccountCreateSerializer,
    BrokerAccountSerializer,
    BrokerAccountUpdateSerializer,
)
from api.views.base import ApiView
from brokers.forms import BrokerAccountCreateForm, BrokerAccountEditForm
from brokers.models import CREDENTIAL_FIELDS, BrokerAccount
from brokers.selectors import broker_account_get_for_user, broker_accounts_for_user

BROKER_TAG = ["broker accounts"]


def _form_data(validated: dict) -> dict:
    """The API's fields as the web form's (credentials flattened; booleans and numbers as text)."""
    data = {name: value for name, value in validated.items() if name != "credentials"}
    data.update(validated.get("credentials") or {})
    for name, value in list(data.items()):
        if isinstance(value, bool):
            if value:
                data[name] = "on"
            else:
                del data[name]
        elif value is not None:
            data[name] = str(value)
    return data


def _credentials_of_kind(validated: dict, kind: str) -> None:
    """Refuse credentials of another kind: the web form ignores its hidden fields, a client's body means them."""
    foreign = sorted(set(validated.get("credentials") or {}) - set(CREDENTIAL_FIELDS.get(kind, ())))
    if foreign:
        raise ValidationError({"credentials": {name: [f"not a credential of {kind} accounts"] for name in foreign}})


def _form_errors(form) -> ValidationError:
    credentials = set(BrokerAccountCreateSerializer().fields["credentials"].fields)
    errors: dict = {}
    for name, messages in form.errors.items():
        if name in credentials:
            errors.setdefault("credentials", {})[name] = messages
        else:
            errors["non_field_errors" if name == "__all__" else name] = messages
    return ValidationError(errors)


@extend_schema(tags=BROKER_TAG)
class BrokerAccountListView(ApiView):
    serializer_class = BrokerAccountSerializer
    ordering_fields = ["label", "created_at", "id"]
    ordering = ["label"]
    filterset_fields = ["kind", "is_live"]

    def get_queryset(self):
        if self.for_schema:
            return BrokerAccount.objects.none()
        return broker_accounts_for_user(user=self.request.user).select_related("paper").prefetch_related("portfolios")

    @extend_schema(
        summary="List your broker accounts",
        description="Your broker accounts (credentials only as set or not set), filtered by kind and live flag.",
        responses=responses({200: BrokerAccountSerializer(many=True)}, bad_request=True, not_found=True),
    )
    def get(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        summary="Add a broker account",
        description="A paper account (simulated, with its starting cash and trading hours) or an Alpaca or "
        "Interactive Brokers account with its credentials. Sending credentials or is_live=true needs your password; "
        "a paper account never trades real money.",
        request=BrokerAccountCreateSerializer,
        responses=responses({201: BrokerAccountSerializer}, bad_request=True, writes=True),
    )
    def post(self, request):
        serializer = BrokerAccountCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        _credentials_of_kind(serializer.validated_data, serializer.validated_data["kind"])
        form = BrokerAccountCreateForm(_form_data(serializer.validated_data), user=request.user)
        account = form.save() if form.is_valid() else None
        if account is None:
            raise _form_errors(form)
        return Response(BrokerAccountSerializer(account).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=BROKER_TAG)
class BrokerAccountDetailView(ApiView):
    serializer_class = BrokerAccountSerializer

    def account(self):
        return broker_account_get_for_user(user=self.request.user, account_id=self.kwargs["pk"])

    @extend_schema(
        summary="Read a broker account",
        description="The account's kind, label, live flag, which credentials are set, and a paper account's cash "
        "and trading hours.",
        responses=responses({200: BrokerAccountSerializer}, not_found=True),
    )
    def get(self, request, pk: int):
        return Response(BrokerAccountSerializer(self.account()).data)

    @extend_schema(
        summary="Change a broker account",
        description="Sets the label, the live flag or credentials given and keeps the others. Credentials and the "
        "live flag need your password; a paper account cannot be made live.",
        request=BrokerAccountUpdateSerializer,
        responses=responses({200: BrokerAccountSerializer}, bad_request=True, not_found=True, writes=True),
    )
    def put(self, request, pk: int):
        return self._update()

    @extend_schema(
        summary="Change some of a broker account",
        description="Sets the label, the live flag or credentials given and keeps the others. Credentials and the "
        "live flag need your password; a paper account cannot be made live.",
        request=BrokerAccountUpdateSerializer,
        responses=responses({200: BrokerAccountSerializer}, bad_request=True, not_found=True, writes=True),
    )
    def patch(self, request, pk: int):
        return self._update()

    def _update(self) -> Response:
        account = self.account()
        serializer = BrokerAccountUpdateSerializer(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        if account.kind == BrokerAccount.Kind.PAPER and serializer.validated_data.get("is_live"):
            # The web form shows the flag disabled for a paper account; the API says so, as on creation.
            raise ValidationError({"is_live": ["a paper account cannot trade real money"]})
        _credentials_of_kind(serializer.validated_data, account.kind)
        data = {"label": account.label, "is_live": account.is_live, **serializer.validated_data}
        form = BrokerAccountEditForm(_form_data(data), user=self.request.user, account=account)
        saved = form.save() if form.is_valid() else None
        if saved is None:
            raise _form_errors(form)
        saved.refresh_from_db()
        return Response(BrokerAccountSerializer(saved).data)

    @extend_schema(
        summary="Delete a broker account",
        description="Deletes the account and its stored credentials. An account that backs a portfolio or has "
        "orders is kept (409).",
        responses=responses({204: None}, not_found=True, writes=True),
    )
    def delete(self, request, pk: int):
        account = self.account()
        try:
            account.delete()
        except ProtectedError:
            raise Conflict(
                "this account backs a portfolio or has orders (kept as the record of its trades): detach it from "
                "its portfolio first; an account with orders cannot be deleted"
            ) from None
        return Response(status=status.HTTP_204_NO_CONTENT)
