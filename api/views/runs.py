"""Stored runs: list, detail, and the owner's approval that executes a proposed run."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response

from api.errors import Conflict
from api.schema import responses
from api.serializers.runs import ApproveInputSerializer, RunSerializer, RunSummarySerializer
from api.views.base import ApiView
from brokers.base import BrokerError
from portfolios.forms import ApproveForm
from portfolios.models import RebalanceRun
from portfolios.selectors import portfolios_for_user, run_get_for_user, runs_for_user
from portfolios.services.execution import (
    ExecutionBusy,
    ExecutionRefused,
    approval_blocked,
    approval_outcome,
    approval_queue,
    execute_run,
)
from two_factor.services import real_money_refusal, session_is_verified

RUN_TAG = ["runs"]


def _user_portfolios(request):
    return portfolios_for_user(user=request.user) if request is not None and request.user.is_authenticated else None


class RunFilter(django_filters.FilterSet):
    # The choices are the requesting user's portfolios: another user's id is "not one of the choices".
    portfolio = django_filters.ModelChoiceFilter(queryset=_user_portfolios)
    status = django_filters.ChoiceFilter(choices=RebalanceRun.Status.choices)
    trading_date = django_filters.DateFromToRangeFilter(
        help_text="trading_date_after / trading_date_before (inclusive)"
    )
    date = django_filters.DateFilter(field_name="trading_date", help_text="One trading date.")

    class Meta:
        model = RebalanceRun
        fields = ["portfolio", "status", "trading_date", "date"]


@extend_schema(tags=RUN_TAG)
class RunListView(ApiView):
    serializer_class = RunSummarySerializer
    filterset_class = RunFilter
    ordering_fields = ["trading_date", "created_at", "id"]
    ordering = ["-trading_date", "-created_at"]

    def get_queryset(self):
        if self.for_schema:
            return RebalanceRun.objects.none()
        return runs_for_user(user=self.request.user)

    @extend_schema(
        summary="List your runs",
        description="The stored plans of your portfolios, newest trading date first, filtered by portfolio, status "
        "and trading date.",
        responses=responses({200: RunSummarySerializer(many=True)}, bad_request=True, not_found=True),
    )
    def get(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


@extend_schema(tags=RUN_TAG)
class RunDetailView(ApiView):
    serializer_class = RunSerializer

    @extend_schema(
        summary="Read a run",
        description="A stored plan: its figures, each holding's position against its band, the planned trades, the "
        "orders sent, what each execution step found, and the address of its report.",
        responses=responses({200: RunSerializer}, not_found=True),
    )
    def get(self, request, pk: int):
        return Response(self.get_serializer(run_get_for_user(user=request.user, run_id=pk)).data)


@extend_schema(tags=RUN_TAG)
class RunApproveView(ApiView):
    """Execute a proposed run under the execution gates (pre-trade checks, kill switch, live-trading
    opt-in); an account trading real money needs the owner's password and a session verified by a
    two-factor code, which an API token cannot carry (403: approve it on the web page). 200: the run,
    executed or with its orders still working; 409: nothing to approve, or a gate stopped the execution."""

    serializer_class = ApproveInputSerializer
    atomic = False  # execution commits each step (order intents before broker calls)

    @extend_schema(
        summary="Approve a proposed run",
        description="Executes the run under the execution gates (pre-trade checks, kill switch, live-trading opt-in) "
        "and answers it, executed or with its orders still working. While the market is closed the approval is "
        "stored and the run answered with approved_at and execute_after: its orders are sent then, "
        "EXECUTE_AFTER_OPEN_MINUTES after the next open. An account trading real money needs your "
        "password and a session verified by a two-factor code, which a token cannot carry (403: approve it on the "
        "web page). 409: nothing to approve, or a gate stopped the execution.",
        responses=responses({200: RunSerializer}, bad_request=True, not_found=True, writes=True),
    )
    def post(self, request, pk: int):
        run = run_get_for_user(user=request.user, run_id=pk)
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        account = run.portfolio.broker_account
        blocked = approval_blocked(run)
        if blocked:
            raise Conflict(blocked)
        if account.is_live and (refusal := real_money_refusal(request.user)):
            raise PermissionDenied(f"not approved: {refusal}")
        verified = session_is_verified(request.user)
        form = ApproveForm(serializer.validated_data, user=request.user, live=account.is_live, verified=verified)
        if not form.is_valid():
            raise ValidationError(form.errors)
        try:
            outcome = approval_outcome(run, execute_run(run=run, submit=False, approved=True))
        except (ExecutionRefused, BrokerError) as error:
            raise Conflict(f"not executed: {error}") from None
        if outcome.due is not None:
            if not approval_queue(run, outcome.due):
                raise Conflict(f"not approved: run {run.pk} changed meanwhile")
            run.refresh_from_db()
            return Response(RunSerializer(run, context=self.get_serializer_context()).data)
        try:
            result = execute_run(run=run, submit=True, approved=True)
        except (ExecutionRefused, ExecutionBusy) as error:
            raise Conflict(f"not executed: {error}") from None
        if result.run.status == RebalanceRun.Status.EXECUTION_FAILED:
            # A gate or the broker stopped it; the run keeps why, and may be approved again once fixed.
            raise Conflict(f"execution stopped: {result.run.error or result.message}")
        return Response(RunSerializer(result.run, context=self.get_serializer_context()).data)
