"""`Authorization: Token <key>` for API clients; staff sessions for the browsable API and docs."""

from __future__ import annotations

from rest_framework.authentication import BaseAuthentication, SessionAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from hub.connections.services import api_client_authenticate


class ApiKeyAuthentication(BaseAuthentication):
    keyword = b"token"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise AuthenticationFailed("malformed Authorization header: expected 'Token <key>'")
        try:
            key = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationFailed("malformed API key: not ASCII") from None
        client = api_client_authenticate(key=key)
        if client is None:
            raise AuthenticationFailed("invalid or revoked API key")
        return client, client

    def authenticate_header(self, request) -> str:
        return 'Token realm="crossdock"'


class StaffSessionAuthentication(SessionAuthentication):
    """An admin-console login (staff) may use the API in the browser, with CSRF protection."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None or not result[0].is_staff:
            return None
        return result
