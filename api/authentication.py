"""Bearer tokens: ``Authorization: Bearer <key>`` (or ``Token <key>``), looked up by SHA-256 digest."""

from __future__ import annotations

from rest_framework import authentication, exceptions

from api.services import api_token_authenticate

KEYWORDS = ("bearer", "token")


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """The first authentication class: an anonymous request gets 401 with ``WWW-Authenticate: Bearer``."""

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].decode("latin-1").lower() not in KEYWORDS:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("invalid Authorization header: expected 'Bearer <token>'")
        try:
            key = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("invalid token") from None
        token = api_token_authenticate(key=key)
        if token is None:
            raise exceptions.AuthenticationFailed("invalid or revoked token")
        return token.user, token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'
