"""Portfolios and their holdings, cash, targets, "rebalance now" and the sync from the broker."""

from __future__ import annotations

import hashlib
import json
import re

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from api.errors import Conflict, Unprocessable, field_errors
from api.schema import BUSY, responses
from api.serializers.holdings import (
    CashSerializer,
    HoldingsSerializer,
    MetricsSerializer,
    TargetsInputSerializer,
    TargetsSerializer,
)
from api.serializers.portfolios import PortfolioSerializer
from api.serializers.runs import (
    PlanRequestSerializer,
    PreviewSerializer,
    RebalanceInputSerializer,
    RunSerializer,
    SyncConfirmSerializer,
    SyncReviewSerializer,
    SyncSerializer,
)
from api.services import IdempotencyConflict, rebalance_request
from api.views.base import ApiView
from marketdata.models import Instrument
from marketdata.services import instruments_ensure
from portfolios.models import Portfolio
from portfolios.selectors import (
    latest_target_allocation,
    portfolio_get_for_user,
    portfolio_symbols_by_id,
    portfolios_for_user,
)
from portfolios.services.holdings import cash_set, holdings_replace, holdings_upsert, manual_targets_set
from portfolios.services.rebalancing import InputsChanged, RebalanceError, RunExecuting, rebalance_run_plan
from portfolios.services.sync import SyncChanged, SyncError, sync_confirm, sync_from_broker, sync_review

PORTFOLIO_TAG = ["portfolios"]


class PortfolioFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Portfolio
        fields = ["name", "active", "mode"]


class PortfolioObjectMixin:
    """The requesting user's portfolio from the URL (404 for anyone else's)."""

    def portfolio(self) -> Portfolio:
        return portfolio_get_for_user(user=self.request.user, portfolio_id=self.kwargs["pk"])


@extend_schema(tags=PORTFOLIO_TAG)
class PortfolioListView(ApiView):
    serializer_class = PortfolioSerializer
    filterset_class = PortfolioFilter
    ordering_fields = ["name", "created_at", "updated_at", "id"]
    ordering = ["name"]

    def get_queryset(self):
        if self.for_schema:
            return Portfolio.objects.none()
        return portfolios_for_user(user=self.request.user)

    @extend_schema(
        summary="List your portfolios",
        description="Your portfolios with every policy setting, a page at a time, filtered by name (part of it), "
        "active and mode.",
        responses=responses({200: PortfolioSerializer(many=True)}, bad_request=True, not_found=True),
    )
    def get(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        context = {
            **self.get_serializer_context(),
            "symbols_by_id": portfolio_symbols_by_id(portfolio_ids=[p.pk for p in page]),
        }
        return self.get_paginated_response(PortfolioSerializer(page, many=True, context=context).data)

    @extend_schema(
        summary="Create a portfolio",
        description="A new portfolio with any policy setting (the others take their defaults), validated like the "
        "settings page. The symbols of its universe must be known instruments.",
        responses=responses({201: PortfolioSerializer}, bad_request=True, writes=True),
    )
    def post(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        portfolio = serializer.save()
        return Response(self.get_serializer(portfolio).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=PORTFOLIO_TAG)
class PortfolioDetailView(PortfolioObjectMixin, ApiView):
    serializer_class = PortfolioSerializer

    @extend_schema(
        summary="Read a portfolio",
        description="The portfolio's every policy setting, its universe and its cash.",
        responses=responses({200: PortfolioSerializer}, not_found=True),
    )
    def get(self, request, pk: int):
        return Response(self.get_serializer(self.portfolio()).data)

    @extend_schema(
        summary="Change a portfolio's settings",
        description="Sets the settings given (the name at least) and keeps the others, "
        "validated like the settings page: all or nothing.",
        responses=responses({200: PortfolioSerializer}, bad_request=True, not_found=True, writes=True),
    )
    def put(self, request, pk: int):
        return self._update(partial=False)

    @extend_schema(
        summary="Change some of a portfolio's settings",
        description="Sets the settings given and keeps the others, validated like the settings page: all or nothing.",
        responses=responses({200: PortfolioSerializer}, bad_request=True, not_found=True, writes=True),
    )
    def patch(self, request, pk: int):
        return self._update(partial=True)

    def _update(self, *, partial: bool) -> Response:
        serializer = self.get_serializer(self.portfolio(), data=self.request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        return Response(self.get_serializer(serializer.save()).data)

    @extend_schema(
        summary="Delete a portfolio",
        description="Deletes the portfolio with its holdings and runs. A portfolio with orders at a broker is kept "
        "(409): set active to false to take it out of the daily run.",
        responses=responses({204: None}, not_found=True, writes=True),
    )
    def delete(self, request, pk: int):
        portfolio = self.portfolio()
        try:
            portfolio.delete()
        except ProtectedError:
            raise Conflict(
                "this portfolio has orders at a broker, which are kept as the record of its trades: it cannot be "
                "deleted; set active=false to take it out of the daily run"
            ) from None
        return Response(status=status.HTTP_204_NO_CONTENT)


def _holdings_data(portfolio: Portfolio) -> dict:
    rows = [
        {"symbol": h.instrument.symbol, "quantity": h.quantity, "cost_basis_usd": h.cost_basis_usd}
        for h in portfolio.holdings.select_related("instrument").order_by("instrument__symbol")
    ]
    return HoldingsSerializer({"holdings": rows, "cash_usd": portfolio.cash_usd}).data


@extend_schema(tags=PORTFOLIO_TAG)
class HoldingsView(PortfolioObjectMixin, ApiView):
    serializer_class = HoldingsSerializer

    @extend_schema(
        summary="Read the holdings and cash",
        description="Every holding (shares and, when known, the total paid) by symbol, and the uninvested cash.",
        responses=responses({200: HoldingsSerializer}, not_found=True),
    )
    def get(self, request, pk: int):
        return Response(_holdings_data(self.portfolio()))

    @extend_schema(
        summary="Replace the holdings",
        description="The holdings become exactly the ones given (those absent from the body are removed), and the "
        "cash when given: the sync from a spreadsheet or a broker export. All or nothing.",
        responses=responses({200: HoldingsSerializer}, bad_request=True, not_found=True, writes=True),
    )
    def put(self, request, pk: int):
        return self._write(holdings_replace)

    @extend_schema(
        summary="Set some holdings",
        description="Sets the holdings given and keeps the others (and the cash when given). All or nothing.",
        responses=responses({200: HoldingsSerializer}, bad_request=True, not_found=True, writes=True),
    )
    def patch(self, request, pk: int):
        return self._write(holdings_upsert)

    def _write(self, service) -> Response:
        portfolio = self.portfolio()
        serializer = self.get_serializer(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        rows = [{**row, "symbol": row["symbol"].strip().upper()} for row in data["holdings"]]
        _check_symbols(rows, create_missing=data["create_missing_instruments"])
        service(portfolio=portfolio, rows=rows, cash_usd=data.get("cash_usd"))
        portfolio.refresh_from_db(fields=["cash_usd"])
        return Response(_holdings_data(portfolio))


def _check_symbols(rows: list[dict], *, create_missing: bool) -> None:
    """Refuse duplicate and unknown symbols (or add the unknown ones as instruments when asked)."""
    symbols = [row["symbol"] for row in rows]
    duplicates = sorted({s for s in symbols if symbols.count(s) > 1})
    if duplicates:
        raise ValidationError({"holdings": [f"duplicate holding for {', '.join(duplicates)}"]})
    if create_missing:
        try:
            instruments_ensure(symbols=symbols)
        except DjangoValidationError as error:
            raise ValidationError({"holdings": error.messages}) from None
        return
    known = set(Instrument.objects.filter(symbol__in=symbols).values_list("symbol", flat=True))
    unknown = [s for s in symbols if s not in known]
    if unknown:
        raise ValidationError(
            {
                "holdings": [
                    f"unknown symbol {', '.join(unknown)}: add the instrument (fetch its prices) first, or send "
                    "create_missing_instruments=true"
                ]
            }
        )


@extend_schema(tags=PORTFOLIO_TAG)
class CashView(PortfolioObjectMixin, ApiView):
    serializer_class = CashSerializer

    @extend_schema(
        summary="Read the cash",
        description="The portfolio's uninvested cash in USD.",
        responses=responses({200: CashSerializer}, not_found=True),
    )
    def get(self, request, pk: int):
        return Response(CashSerializer(self.portfolio()).data)

    @extend_schema(
        summary="Set the cash",
        description="The portfolio's uninvested cash in USD (at least 0).",
        responses=responses({200: CashSerializer}, bad_request=True, not_found=True, writes=True),
    )
    def put(self, request, pk: int):
        portfolio = self.portfolio()
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        cash_set(portfolio=portfolio, cash_usd=serializer.validated_data["cash_usd"])
        return Response(CashSerializer(portfolio).data)


def _targets_data(portfolio: Portfolio) -> dict:
    allocation = latest_target_allocation(portfolio=portfolio)
    computed = None
    if allocation is not None:
        result = allocation.result
        computed = {
            "as_of": allocation.as_of,
            "strategy": result.strategy,
            "requested_strategy": result.requested_strategy,
            "weights": dict(sorted(result.weights().items())),
            "expected_return": result.expected_return,
            "volatility": result.volatility,
            "sharpe": result.sharpe,
            "equity_share": result.equity_share,
            "metrics": _metrics(result.metrics, symbols=sorted(result.weights())),
            "fallbacks": result.fallbacks,
            "warnings": [warning["message"] for warning in result.warnings],
        }
    manual = portfolio.manual_targets or None
    return TargetsSerializer(
        {"source": "manual" if manual else "optimizer", "manual_weights": manual, "computed": computed}
    ).data


def _metrics(stored: dict, *, symbols: list[str]) -> dict:
    """Stored metrics in their published shape: every figure present (null when not computed) and
    risk contributions by symbol (results stored before they were keyed by symbol hold a list)."""
    contributions = stored.get("risk_contributions") or {}
    if isinstance(contributions, list):
        contributions = dict(zip(symbols, contributions, strict=False))
    figures = {name: stored.get(name) for name in MetricsSerializer().fields}
    return {**figures, "risk_contributions": contributions, "observations": stored.get("observations") or 0}


@extend_schema(tags=PORTFOLIO_TAG)
class TargetsView(PortfolioObjectMixin, ApiView):
    serializer_class = TargetsInputSerializer

    @extend_schema(
        summary="Read the target weights",
        description="The latest targets the optimizer computed for the portfolio (null before its first plan), with "
        "their metrics and the strategies that failed before the one used, and the manual weights when set.",
        responses=responses({200: TargetsSerializer}, not_found=True),
    )
    def get(self, request, pk: int):
        return Response(_targets_data(self.portfolio()))

    @extend_schema(
        summary="Set manual target weights",
        description="Weights (summing to 1, symbols of the portfolio's universe) that the plans trade towards instead "
        "of the optimizer's; null goes back to the optimizer.",
        responses=responses({200: TargetsSerializer}, bad_request=True, not_found=True, writes=True),
    )
    def put(self, request, pk: int):
        portfolio = self.portfolio()
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            manual_targets_set(portfolio=portfolio, weights=serializer.validated_data["weights"])
        except DjangoValidationError as error:
            raise ValidationError({"weights": field_errors(error).get("manual_targets", error.messages)}) from None
        return Response(_targets_data(portfolio))


def request_fingerprint(portfolio: Portfolio, body) -> str:
    """SHA-256 of what was asked: the portfolio and the body, keys sorted."""
    text = json.dumps({"portfolio": portfolio.pk, "body": body}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


#: 1 to 255 visible ASCII characters (spaces inside only), e.g. a UUID.
IDEMPOTENCY_KEY_PATTERN = r"^[!-~](?:[ -~]{0,253}[!-~])?$"
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": IDEMPOTENCY_KEY_PATTERN},
    OpenApiParameter.HEADER,
    description="Any unique string (e.g. a UUID) of at most 255 visible ASCII characters: sending the same key "
    "again answers the run the first request created instead of planning again; the same key with a different "
    "body is 409.",
)


@extend_schema(tags=PORTFOLIO_TAG)
class RebalanceView(PortfolioObjectMixin, ApiView):
    serializer_class = RebalanceInputSerializer
    atomic = False  # planning stores its run in its own transaction (with the idempotency key)

    @extend_schema(
        summary="Plan a rebalance now",
        description="Plans the portfolio's run now, every trigger overridden, and answers it (201). One active run "
        "per portfolio and trading day: when one is stored already and nothing it was made from has changed "
        "(holdings, cash, targets, settings, broker account, this body), that run is answered (200). When something "
        "changed, a run that has sent no order is superseded by a new plan (201; the old run is kept, linked to it); "
        "a run being executed answers 409 naming it, and a run that traded is answered as it is (200). With a "
        "preview's inputs_fingerprint the plan is stored only if it is still the previewed one (409 otherwise). A "
        "run in propose mode waits for your approval; in auto mode it executes when the market is open.",
        parameters=[IDEMPOTENCY_KEY],
        responses=responses(
            {201: RunSerializer, 200: RunSerializer},
            bad_request=True,
            not_found=True,
            unprocessable=True,
            writes=True,
        ),
    )
    def post(self, request, pk: int):
        portfolio = self.portfolio()
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key = request.headers.get("Idempotency-Key")
        if key is not None and not re.fullmatch(IDEMPOTENCY_KEY_PATTERN, key):
            raise ValidationError({"Idempotency-Key": ["expected 1 to 255 visible ASCII characters, e.g. a UUID"]})
        data = serializer.validated_data
        try:
            answer = rebalance_request(
                user=request.user,
                portfolio=portfolio,
                idempotency_key=key,
                fingerprint=request_fingerprint(portfolio, request.data),
                **data,
            )
        except (IdempotencyConflict, RunExecuting, InputsChanged) as error:
            raise Conflict(str(error)) from None
        except RebalanceError as error:
            raise Unprocessable(f"planning failed, nothing to trade: {error}") from None
        planned = answer.planned
        created = not answer.replayed and not planned.existing
        return Response(
            RunSerializer(planned.run, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


@extend_schema(tags=PORTFOLIO_TAG)
class PreviewView(PortfolioObjectMixin, ApiView):
    serializer_class = PlanRequestSerializer
    atomic = False  # nothing is written

    @extend_schema(
        summary="Preview the plan the portfolio would get now",
        description="Plans the portfolio as it is now, with the same optional body as the rebalance endpoint (a "
        "trading date, a deposit or withdrawal, a strategy), every trigger overridden, and answers the plan "
        "without storing anything. Send its inputs_fingerprint with the rebalance request to store exactly this "
        "plan. Planning that fails is 422.",
        responses=responses({200: PreviewSerializer}, bad_request=True, not_found=True, unprocessable=True),
    )
    def post(self, request, pk: int):
        portfolio = self.portfolio()
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            planned = rebalance_run_plan(portfolio=portfolio, manual=True, **serializer.validated_data)
        except RebalanceError as error:
            raise Unprocessable(f"planning failed, nothing to trade: {error}") from None
        planned.run.preview_trades = planned.trades
        return Response(PreviewSerializer(planned.run, context=self.get_serializer_context()).data)


@extend_schema(tags=PORTFOLIO_TAG)
class SyncFromBrokerView(PortfolioObjectMixin, ApiView):
    atomic = False  # the sync owns its transaction and reads the broker outside it

    @extend_schema(
        summary="Review a sync from the broker",
        description="Reads the broker account and answers what a sync would change (per symbol: shares held now, "
        "at the broker, and the change; cash before and after) with the fingerprints that apply exactly that. "
        "Nothing is written. A portfolio without a broker account, or a broker that cannot be read, is 409.",
        responses=responses({200: SyncReviewSerializer, **BUSY}, not_found=True),
    )
    def get(self, request, pk: int):
        try:
            review = sync_review(portfolio=self.portfolio())
        except DjangoValidationError as error:  # no broker account: the request itself is fine
            raise Conflict(f"cannot review a sync: {' '.join(error.messages)}") from None
        except SyncError as error:
            raise Conflict(f"cannot review the sync: {error}") from None
        return Response(SyncReviewSerializer(review).data)

    @extend_schema(
        summary="Copy the holdings from the broker",
        description="The portfolio's holdings and cash become its broker account's positions and cash; answers "
        "what changed. With a review's two fingerprints, only the sync reviewed is applied: 409 with the new "
        "review when the broker's positions or the portfolio's holdings changed since; 204 when it changes "
        "nothing. A portfolio without a broker account is 400, a broker that cannot be read 409.",
        request=SyncConfirmSerializer,
        responses=responses({200: SyncSerializer, 204: None}, bad_request=True, not_found=True, writes=True),
    )
    def post(self, request, pk: int):
        portfolio = self.portfolio()
        if not request.data:
            try:
                sync = sync_from_broker(portfolio=portfolio)
            except SyncError as error:
                raise Conflict(f"sync failed, nothing changed: {error}") from None
            return Response(SyncSerializer(sync).data)
        serializer = SyncConfirmSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            sync = sync_confirm(portfolio=portfolio, **serializer.validated_data)
        except SyncChanged as changed:
            body = {"detail": f"nothing changed: {changed}", "review": SyncReviewSerializer(changed.review).data}
            return Response(body, status=status.HTTP_409_CONFLICT)
        except SyncError as error:
            raise Conflict(f"sync failed, nothing changed: {error}") from None
        if sync is None:  # the reviewed sync changes nothing: nothing is written
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(SyncSerializer(sync).data)
