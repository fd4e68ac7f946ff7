"""Client of the call-log REST API (protocol Appendix C, §6.3): what became of a call.

The API lives on the socket's host (``ws://`` → ``http://``, ``wss://`` → ``https://``)
and takes the same key as ``Authorization: Bearer <key>``. It answers the one
question a dispatcher asks after losing track of a call: is it still live, and if
it ended, how. :func:`call_state_from_wire` is the **only** place that knows the
wire's field names and reason words; correct it there if the platform differs.

Errors, in the SDK's tree::

    PinecallError
    └── PinecallConnectionError
        ├── AuthenticationError   401/403: the key was refused
        └── CallLogUnavailable    network failure, timeout, 5xx, unreadable body

An unknown call id is not an error: :meth:`CallsApi.state` returns ``None``.
Neither the key nor the request headers ever appear in an exception or a log line.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from dispatch.log import register_secret
from dispatch.reasons import Reason
from dispatch.sdk.dialing import ATTEMPT_KEY
from dispatch.sdk.errors import AuthenticationError, PinecallConnectionError
from dispatch.sdk.reasons import normalize_reason
from dispatch.sdk.wire import slugify

__all__ = ["CallLogUnavailable", "CallState", "CallsApi", "call_state_from_wire", "rest_base"]


class CallLogUnavailable(PinecallConnectionError):
    """The call log could not be read (network, timeout, server error, bad body)."""


@dataclasses.dataclass(frozen=True, slots=True)
class CallState:
    """What the platform knows of one call. Times are epoch seconds; ``duration_s`` is
    the answered time (``None`` when not reported)."""

    call_id: str
    live: bool
    state: str
    answered: bool
    end_reason: Reason | None
    end_reason_raw: str | None
    to: str | None = None
    agent: str | None = None
    dialed_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    duration_s: float | None = None
    attempt_id: str | None = None
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    last_seq: int = 0


def _number(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if ok else None


def call_state_from_wire(body: Mapping[str, Any]) -> CallState:
    """Map a ``/v1/calls/{id}/state`` body (or one entry of an agent's calls) to a
    :class:`CallState`. Raises ``ValueError`` when ``call_id`` is missing."""
    call_id = body.get("call_id") or body.get("call")
    if not isinstance(call_id, str) or not call_id:
        raise ValueError("call state without a call_id")
    state = str(body.get("state") or "unknown")
    live = body.get("live")
    live = state not in ("ended", "completed") if not isinstance(live, bool) else live
    raw = body.get("end_reason", body.get("reason"))
    raw = raw if isinstance(raw, str) and raw else None
    answered_at = _number(body.get("answered_at"))
    answered = body.get("answered")
    raw_meta = body.get("metadata")
    metadata: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    attempt = body.get("attempt_id", metadata.get(ATTEMPT_KEY))
    return CallState(
        call_id=call_id, live=live, state=state,
        answered=answered if isinstance(answered, bool) else answered_at is not None,
        end_reason=None if live else normalize_reason(raw), end_reason_raw=raw,
        to=body.get("to") if isinstance(body.get("to"), str) else None,
        agent=body.get("agent") if isinstance(body.get("agent"), str) else None,
        dialed_at=_number(body.get("dialed_at")), answered_at=answered_at,
        ended_at=_number(body.get("ended_at")),
        duration_s=_number(body.get("duration_seconds", body.get("duration_s"))),
        attempt_id=attempt if isinstance(attempt, str) else None,
        metadata=dict(metadata), last_seq=int(_number(body.get("last_seq")) or 0),
    )


def rest_base(socket_url: str) -> str:
    """``wss://host/client`` → ``https://host`` (the REST base on the socket's host)."""
    url = socket_url.strip().rstrip("/")
    if url.endswith("/client"):
        url = url[: -len("/client")]
    if url.startswith("ws://") or url.startswith("wss://"):
        url = "http" + url[2:]
    return url


class CallsApi:
    """Reads call state from the call-log REST API. One ``httpx.AsyncClient``, opened
    on first use; :meth:`aclose` (or ``Pinecall.close``) releases it.

    ``timeout_s`` bounds every request (connect, read and write each). ``transport``
    is httpx's seam (e.g. ``httpx.MockTransport``) for tests.
    """

    def __init__(self, base_url: str, api_key: str, *, timeout_s: float = 5.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        register_secret(api_key)
        self.base_url = rest_base(base_url)
        self.timeout_s = timeout_s
        self._api_key = api_key
        self._transport = transport
        self._http: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"<CallsApi {self.base_url}>"

    async def state(self, call_id: str) -> CallState | None:
        """The call's state, or ``None`` when the platform does not know the id."""
        body = await self._get(f"/v1/calls/{quote(call_id, safe='')}/state")
        return None if body is None else self._parse(body)

    async def events(self, call_id: str, after: int = 0) -> list[dict[str, Any]] | None:
        """The call's log entries with ``seq > after`` (one page), or ``None`` if unknown."""
        body = await self._get(f"/v1/calls/{quote(call_id, safe='')}/events",
                               {"after": str(after)})
        if body is None:
            return None
        events = body.get("events")
        return [e for e in events if isinstance(e, dict)] if isinstance(events, list) else []

    async def find(self, agent_id: str, *, attempt_id: str | None = None,
                   metadata: Mapping[str, Any] | None = None, limit: int = 20) -> list[CallState]:
        """The agent's calls, newest first, whose dial carried ``attempt_id`` (the SDK's
        ``dispatch_attempt``) and every ``metadata`` item (values compared as text)."""
        params = {"limit": str(limit)}
        if attempt_id is not None:
            params["attempt"] = attempt_id
        for key, value in (metadata or {}).items():
            params[f"meta.{key}"] = value if isinstance(value, str) else json.dumps(value)
        body = await self._get(f"/v1/agents/{quote(slugify(agent_id), safe='')}/calls", params)
        calls = body.get("calls") if body is not None else None
        if not isinstance(calls, list):
            return []
        return [self._parse(c) for c in calls if isinstance(c, dict)]

    async def aclose(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                base_url=self.base_url, timeout=httpx.Timeout(self.timeout_s),
                headers={"Authorization": f"Bearer {self._api_key}"} if self._api_key else {},
                transport=self._transport, follow_redirects=False)
        return self._http

    async def _get(self, path: str, params: dict[str, str] | None = None
                   ) -> dict[str, Any] | None:
        """GET ``path``: the JSON object, ``None`` for 404; raises the SDK's errors."""
        try:
            response = await self._client().get(path, params=params)
        except httpx.TimeoutException as exc:
            raise CallLogUnavailable(
                f"call log {path}: no answer within {self.timeout_s:g} s") from exc
        except httpx.HTTPError as exc:  # its text names the URL, never the headers
            raise CallLogUnavailable(f"call log {path}: {type(exc).__name__}: {exc}") from exc
        if response.status_code == 404:
            return None
        if response.status_code in (401, 403):
            raise AuthenticationError(f"call log refused the key (HTTP {response.status_code})",
                                      code="INVALID_KEY")
        if response.status_code != 200:
            raise CallLogUnavailable(f"call log {path}: HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError as exc:
            raise CallLogUnavailable(f"call log {path}: body is not JSON") from exc
        if not isinstance(body, dict):
            raise CallLogUnavailable(f"call log {path}: body is not a JSON object")
        return body

    @staticmethod
    def _parse(body: Mapping[str, Any]) -> CallState:
        try:
            return call_state_from_wire(body)
        except ValueError as exc:
            raise CallLogUnavailable(f"call log: {exc}") from exc
