"""The API tokens page: a user's tokens, a new one (its key shown once), revoking one."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from api.forms import ApiTokenForm
from api.models import ApiToken
from api.services import api_token_create, api_token_revoke


@require_http_methods(["GET", "POST"])
def api_tokens(request: HttpRequest) -> HttpResponse:
    form = ApiTokenForm(request.POST if request.method == "POST" else None)
    new_key = ""
    if request.method == "POST" and form.is_valid():
        try:
            token, new_key = api_token_create(user=request.user, name=form.cleaned_data["name"])
        except ValidationError as error:
            for message in error.message_dict.get("name", error.messages):
                form.add_error("name", message)
        else:
            messages.success(request, f"Token {token.name!r} created. Copy its key now: it is not shown again.")
            form = ApiTokenForm()
    return render(
        request,
        "api/tokens.html",
        {"tokens": ApiToken.objects.filter(user=request.user), "form": form, "new_key": new_key},
        status=400 if form.is_bound and form.errors else 200,
    )


@require_POST
def api_token_revoke_view(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    api_token_revoke(token=token)
    messages.success(request, f"Token {token.name!r} revoked: requests with it are refused from now on.")
    return redirect("api_tokens")
