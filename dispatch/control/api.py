"""The ``/v1`` endpoints: read campaigns, steer them through their row.

Pause, resume and cancel are the compare-and-set transitions of
:mod:`dispatch.store.campaigns` (persisted, so they survive a restart and reach
every process; a running hub obeys within half a second). ``PATCH`` writes the
limit columns and asks the running hub, if any, to apply them now. ``requeue``
takes the CLI's filters and, like the CLI, needs the run lock: it is refused
(409) while a hub runs on the database.
"""

from __future__ import annotations

import getpass
import os
import socket
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from dispatch.control.problems import ProblemError
from dispatch.control.queries import set_limits
from dispatch.control.target import LIMIT_FIELDS, ControlTarget
from dispatch.control.views import campaign_view, handles_by_id, list_views, running_handle
from dispatch.reasons import Reason
from dispatch.store import RequeueFilter, RunLock, StoreError, StoreLocked, campaigns

__all__ = ["campaign_action", "get_campaign", "list_campaigns", "patch_campaign", "reload",
           "requeue_campaign"]

_MAX_BODY_BYTES = 64 * 1024
_MAX_IDS = 10_000


def _target(request: Request) -> ControlTarget:
    target: ControlTarget = request.app.state.target
    return target


def _operator(request: Request) -> str:
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = f"uid {os.getuid()}"
    peer = request.client.host if request.client is not None else "?"
    return f"http {peer} via {user}@{socket.gethostname()}"


async def _row(target: ControlTarget, campaign_id: str) -> campaigns.Campaign:
    row = await campaigns.get(target.store.engine, campaign_id)
    if row is None:
        raise ProblemError(404, f"unknown campaign {campaign_id!r}")
    return row


async def _view(target: ControlTarget, campaign_id: str) -> dict[str, Any]:
    row = await _row(target, campaign_id)
    handles = handles_by_id(target)
    counts = None
    if running_handle(handles, campaign_id) is None:
        counts = (await campaigns.record_counts(target.store.engine)).get(campaign_id, {})
    return campaign_view(row, counts, handles.get(campaign_id))


async def _json_object(request: Request) -> dict[str, Any]:
    body = await request.body()
    if len(body) > _MAX_BODY_BYTES:
        raise ProblemError(413, f"body over {_MAX_BODY_BYTES} bytes")
    if not body.strip():
        return {}
    try:
        import json

        data = json.loads(body)
    except ValueError as exc:
        raise ProblemError(400, f"body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ProblemError(422, "body must be a JSON object")
    return data


async def list_campaigns(request: Request) -> JSONResponse:
    return JSONResponse({"campaigns": await list_views(_target(request))})


async def get_campaign(request: Request) -> JSONResponse:
    return JSONResponse(await _view(_target(request), request.path_params["id"]))


async def campaign_action(request: Request) -> JSONResponse:
    target = _target(request)
    campaign_id = request.path_params["id"]
    action = request.path_params["action"]
    if action not in campaigns.ACTIONS:
        raise ProblemError(404, f"no action {action!r} (pause, resume or cancel)")
    try:
        await campaigns.transition(target.store.engine, campaign_id, action, now=time.time(),
                                   by=_operator(request))
    except campaigns.UnknownCampaign as exc:
        raise ProblemError(404, str(exc)) from None
    except campaigns.IllegalTransition as exc:
        raise ProblemError(409, str(exc)) from None
    return JSONResponse(await _view(target, campaign_id))


def _limits(data: dict[str, Any]) -> dict[str, int | None]:
    aliases = {"max_calls_per_minute": "max_per_minute", "max_calls_per_second": "max_per_second"}
    limits: dict[str, int | None] = {}
    for key, value in data.items():
        name = aliases.get(key, key)
        if name not in LIMIT_FIELDS:
            raise ProblemError(422, f"field {key!r}: unknown (allowed: {', '.join(LIMIT_FIELDS)})",
                               field=key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 1):
            raise ProblemError(422, f"field {key!r}: must be an integer >= 1 or null, "
                               f"got {value!r}", field=key)
        limits[name] = value
    if not limits:
        raise ProblemError(422, f"give at least one of {', '.join(LIMIT_FIELDS)}")
    return limits


async def patch_campaign(request: Request) -> JSONResponse:
    target = _target(request)
    campaign_id = request.path_params["id"]
    limits = _limits(await _json_object(request))
    await _row(target, campaign_id)
    await set_limits(target.store.engine, campaign_id, limits, now=time.time())
    handle = handles_by_id(target).get(campaign_id)
    applied = handle is not None and handle.running and await handle.apply_limits(limits)
    view = await _view(target, campaign_id)
    view["limits_applied_live"] = applied
    return JSONResponse(view)


def _strings(data: dict[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ProblemError(422, f"field {key!r}: must be a string or a list of strings",
                           field=key)
    if len(value) > _MAX_IDS:
        raise ProblemError(422, f"field {key!r}: at most {_MAX_IDS} values", field=key)
    return tuple(value)


def _selection(data: dict[str, Any]) -> RequeueFilter:
    unknown = sorted(set(data) - {"status", "reason", "ids", "source", "all", "dry_run"})
    if unknown:
        raise ProblemError(422, f"field {unknown[0]!r}: unknown", field=unknown[0])
    reasons = _strings(data, "reason")
    known = {reason.value for reason in Reason}
    for reason in reasons:
        if reason not in known:
            raise ProblemError(422, f"field 'reason': {reason!r} is not a reason", field="reason")
    everything = data.get("all", False)
    if not isinstance(everything, bool):
        raise ProblemError(422, "field 'all': must be true or false", field="all")
    try:
        return RequeueFilter(statuses=_strings(data, "status"), reasons=reasons,
                             ids=_strings(data, "ids"), everything=everything,
                             sources=_strings(data, "source"))
    except ValueError as exc:
        raise ProblemError(422, str(exc)) from None


async def requeue_campaign(request: Request) -> JSONResponse:
    target = _target(request)
    campaign_id = request.path_params["id"]
    data = await _json_object(request)
    selection = _selection(data)
    dry_run = data.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise ProblemError(422, "field 'dry_run': must be true or false", field="dry_run")
    await _row(target, campaign_id)
    running = sorted(h.campaign_id for h in target.campaigns() if h.running)
    if running:  # a running hub keeps its records in memory: it would not see the change
        raise ProblemError(409, f"campaign {running[0]!r} is running in this process; "
                           "requeue needs the campaigns of the database stopped")
    lock = RunLock(target.store.url)  # and none running in another process
    try:
        lock.acquire()
    except StoreLocked as exc:
        raise ProblemError(409, f"{exc} (requeue needs the campaign stopped)") from None
    try:
        result = await target.store.requeue(selection, now=time.time(), user=_operator(request),
                                            pid=os.getpid(), dry_run=dry_run)
    except StoreError as exc:
        raise ProblemError(500, str(exc)) from None
    finally:
        lock.release()
    by = [{"status": status, "reason": reason, "count": n}
          for (status, reason), n in sorted(result.by_status_reason.items(),
                                            key=lambda item: (item[0][0], item[0][1] or ""))]
    return JSONResponse({"campaign": campaign_id, "count": result.count, "dry_run": result.dry_run,
                         "by_status_reason": by, "first_ids": result.first_ids,
                         "requeue_id": result.requeue_id})


async def reload(request: Request) -> JSONResponse:
    """``POST /v1/reload``: what SIGHUP does, when the target can (``request_reload()``)."""
    method = getattr(_target(request), "request_reload", None)
    if method is None:
        raise ProblemError(501, "this process cannot reload its configuration")
    method()
    return JSONResponse({"status": "reloading"}, status_code=202)
