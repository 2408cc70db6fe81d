"""Who may talk to the dashboard, and which requests may change something.

- Loopback without a token: only requests whose Host is a loopback name are served, so a web
  page elsewhere cannot reach the dashboard by pointing a DNS name at 127.0.0.1.
- With a token (required when binding anywhere else): every request carries it, as
  `?token=` once (then a cookie; the URL is cleaned by a redirect), a cookie, or an
  `Authorization: Bearer` header. Compared in constant time.
- Actions are POST only, with a CSRF token in a form field: an HMAC of the browser's
  session cookie under a per-process secret, checked on every POST.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlencode

from starlette.datastructures import URL
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

TOKEN_COOKIE = "chute_ui_token"
SESSION_COOKIE = "chute_ui_session"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}

HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def _host_name(header: str) -> str:
    if header.startswith("["):
        return header[: header.find("]") + 1]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class Guard(BaseHTTPMiddleware):
    def __init__(self, app, token: str | None, secure_cookies: bool = False):
        super().__init__(app)
        self.token = token
        self.secret = secrets.token_bytes(32)
        self.secure = secure_cookies

    def csrf_for(self, session: str) -> str:
        return hmac.new(self.secret, session.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, request: Request, value: str | None) -> bool:
        session = request.cookies.get(SESSION_COOKIE)
        return bool(session and value and hmac.compare_digest(self.csrf_for(session), value))

    def _token_ok(self, value: str | None) -> bool:
        return bool(value) and hmac.compare_digest(value.encode(), self.token.encode())  # type: ignore[union-attr]

    async def dispatch(self, request: Request, call_next) -> Response:
        if self.token is None:
            if not is_loopback(_host_name(request.headers.get("host", ""))):
                return PlainTextResponse("this dashboard only answers on a loopback address (see chute ui --help)",
                                         status_code=400)
        else:
            given = request.query_params.get("token")
            if given is not None:
                if not self._token_ok(given):
                    return _forbidden()
                # Keep the token out of the address bar and history: cookie, then the clean URL.
                rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
                clean = URL(str(request.url)).replace(query=urlencode(rest))
                response = RedirectResponse(clean.path + (f"?{clean.query}" if clean.query else ""), status_code=303)
                response.set_cookie(TOKEN_COOKIE, self.token, httponly=True, samesite="strict", secure=self.secure)
                return _finish(response)
            bearer = request.headers.get("authorization", "")
            bearer = bearer[7:] if bearer.lower().startswith("bearer ") else None
            if not (self._token_ok(request.cookies.get(TOKEN_COOKIE)) or self._token_ok(bearer)):
                return _forbidden()
        session = request.cookies.get(SESSION_COOKIE)
        new_session = None
        if not session:
            session = new_session = secrets.token_urlsafe(24)
        request.state.csrf_token = self.csrf_for(session)
        request.state.csrf_ok = lambda value: self.csrf_ok(request, value)
        response = await call_next(request)
        if new_session:
            response.set_cookie(SESSION_COOKIE, new_session, httponly=True, samesite="strict", secure=self.secure)
        return _finish(response)


def _finish(response: Response) -> Response:
    for key, value in HEADERS.items():
        response.headers.setdefault(key, value)
    return response


def _forbidden() -> Response:
    return _finish(PlainTextResponse(
        "a token is needed: open the dashboard's address with ?token=... (the one given to chute ui)",
        status_code=401))
