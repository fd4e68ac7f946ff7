"""The call-log REST endpoint, served on the WebSocket's own host and port.

Plain HTTP requests reach ``websockets``' ``process_request`` hook before any
upgrade, so the sandbox answers them there (one request per connection, JSON
bodies). Every route needs ``Authorization: Bearer <key>``; when the sandbox has
an ``api_key`` it must match (else 401), otherwise any key is accepted, as on the
socket (any key, or none, when the sandbox has none). Routes (``GET`` only; see :func:`answer`):

- ``/v1/calls/{id}/state`` → the call's state (``CallEntry.state_view``), 404 if unknown;
  the ``Authorization: Bearer <key>`` header is checked first (401 ``INVALID_KEY``);
- ``/v1/calls/{id}/events?after=<seq>&limit=<n>`` → ``{call, events, last_seq, sealed,
  next_after}``: log entries with ``seq > after``, oldest first;
- ``/v1/agents/{slug}/calls?attempt=<id>&meta.<key>=<value>&limit=<n>`` → ``{agent,
  calls}``: the agent's calls, newest first, as state objects, filtered by the dial's
  attempt id (metadata ``dispatch_attempt``) and/or metadata values (compared as text).
"""

from __future__ import annotations

import hmac
import json
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from dispatch.sandbox.call_log import ATTEMPT_KEY, CallEntry, CallLog
from dispatch.sandbox.state import SandboxState, slugify

__all__ = ["answer", "is_rest_request"]

_MAX_LIMIT = 1_000


def is_rest_request(request: Request) -> bool:
    """True for a plain HTTP request to ``/v1/...`` (not a WebSocket upgrade)."""
    return request.path.startswith("/v1/") and "upgrade" not in request.headers.get(
        "Connection", "").lower()


def _json(status: HTTPStatus, body: dict[str, Any]) -> Response:
    data = json.dumps(body, separators=(",", ":"), default=str).encode()
    headers = Headers([
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(data))),
        ("Connection", "close"),
        ("Cache-Control", "no-store"),
    ])
    return Response(status.value, status.phrase, headers, data)


def _error(status: HTTPStatus, code: str, text: str) -> Response:
    return _json(status, {"error": text, "code": code})


def _authorized(state: SandboxState, request: Request) -> bool:
    """Like ``connect`` on the socket: any key when the sandbox has none, else that key."""
    expected = state.api_key
    if expected is None:
        return True
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(key.encode(), expected.encode())


def answer(state: SandboxState, request: Request) -> Response:
    """The HTTP response to ``request`` (never raises)."""
    if not _authorized(state, request):
        return _error(HTTPStatus.UNAUTHORIZED, "INVALID_KEY", "missing or invalid api key")
    url = urlsplit(request.path)
    parts = [unquote(p) for p in url.path.strip("/").split("/")]
    query = parse_qsl(url.query, keep_blank_values=True)
    log = state.call_log
    try:
        if len(parts) == 4 and parts[:2] == ["v1", "calls"]:
            return _call_route(log, parts[2], parts[3], dict(query))
        if len(parts) == 4 and parts[:2] == ["v1", "agents"] and parts[3] == "calls":
            return _agent_calls(log, slugify(parts[2]), query)
    except ValueError as exc:
        return _error(HTTPStatus.BAD_REQUEST, "BAD_REQUEST", str(exc))
    return _error(HTTPStatus.NOT_FOUND, "NOT_FOUND", f"no route {url.path}")


def _call_route(log: CallLog, call_id: str, what: str, query: dict[str, str]) -> Response:
    entry = log.get(call_id)
    if what not in ("state", "events"):
        return _error(HTTPStatus.NOT_FOUND, "NOT_FOUND", f"no route /v1/calls/{{id}}/{what}")
    if entry is None:
        return _error(HTTPStatus.NOT_FOUND, "CALL_NOT_FOUND", f"unknown call {call_id!r}")
    if what == "state":
        return _json(HTTPStatus.OK, entry.state_view())
    after, limit = _int(query, "after", 0), _limit(query)
    events = [e for e in entry.events if e["seq"] > after][:limit]
    next_after = events[-1]["seq"] if events else after
    return _json(HTTPStatus.OK, {
        "call": call_id, "events": events, "last_seq": entry.seq, "sealed": entry.sealed,
        "next_after": next_after,
    })


def _agent_calls(log: CallLog, slug: str, query: list[tuple[str, str]]) -> Response:
    attempt = next((v for k, v in query if k == "attempt"), None)
    wanted = [(k[5:], v) for k, v in query if k.startswith("meta.")]
    limit = _limit(dict(query))
    found: list[dict[str, Any]] = []
    for entry in reversed(log.of_agent(slug)):
        if _matches(entry, attempt, wanted):
            found.append(entry.state_view())
            if len(found) >= limit:
                break
    return _json(HTTPStatus.OK, {"agent": slug, "calls": found})


def _matches(entry: CallEntry, attempt: str | None, wanted: list[tuple[str, str]]) -> bool:
    metadata = entry.record.metadata or {}
    if attempt is not None and metadata.get(ATTEMPT_KEY) != attempt:
        return False
    return all(key in metadata and _text(metadata[key]) == value for key, value in wanted)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _int(query: dict[str, str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"query parameter {name!r} must be an integer, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"query parameter {name!r} must be >= 0, got {value}")
    return value


def _limit(query: dict[str, str]) -> int:
    return max(1, min(_int(query, "limit", 100), _MAX_LIMIT))
