"""Who may use the control plane: loopback by default, a bearer token elsewhere.

:func:`check_bind` is what ``dispatch serve`` calls before it listens: binding a
non-loopback address without a token is refused, since anyone on the network
could otherwise pause or cancel a campaign. :class:`BearerAuth` checks the
``Authorization: Bearer`` header in constant time on every request except the
public probes (``/healthz``, ``/readyz``) and the dashboard's static files (the
page itself carries no data; its API calls send the token). The token is never
logged, echoed or put in an error.
"""

from __future__ import annotations

import hmac
import ipaddress

from starlette.types import ASGIApp, Receive, Scope, Send

from dispatch.control.problems import problem

__all__ = ["PUBLIC_PATHS", "BearerAuth", "BindRefused", "check_bind", "is_loopback"]

#: reachable without a token (probes, the dashboard's page and script)
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/", "/static/dashboard.js",
                          "/static/dashboard.css"})


class BindRefused(ValueError):
    """A non-loopback bind address without a token (the message says what to do)."""


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (``127.0.0.0/8``, ``::1``)."""
    name = host.strip().strip("[]")
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def check_bind(host: str, token: str | None) -> None:
    """Raise :class:`BindRefused` when ``host`` is not loopback and there is no token."""
    if token is not None and not token.strip():
        raise BindRefused("the control token is empty; give a non-empty token or none")
    if token is None and not is_loopback(host):
        raise BindRefused(f"refusing to bind the control plane to {host!r} without a token: "
                          "set a token file, or bind 127.0.0.1")


class BearerAuth:
    """ASGI middleware: 401 unless the request carries ``Bearer <token>``."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self._token = None if token is None else token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or self._token is None
                or scope.get("path", "") in PUBLIC_PATHS):
            await self.app(scope, receive, send)
            return
        if not self._authorized(scope):
            response = problem(401, "missing or wrong bearer token (Authorization: Bearer ...)")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        assert self._token is not None
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                scheme, _, given = value.partition(b" ")
                return scheme.lower() == b"bearer" and hmac.compare_digest(
                    given.strip(), self._token)
        return False
