"""``create_app``: the control plane as one Starlette app (hosted by uvicorn).

Routes: ``/v1/...`` (see :mod:`dispatch.control.api`), ``/metrics``,
``/openapi.json``, ``/healthz``, ``/readyz`` and the dashboard (``/`` and
``/static/dashboard.js``, shipped inside the package: no build step, no CDN).
Every error is a problem body (:mod:`dispatch.control.problems`).
"""

from __future__ import annotations

import time
from importlib import resources
from typing import Any

import anyio
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dispatch.control import api
from dispatch.control.auth import BearerAuth
from dispatch.control.metrics import metrics_endpoint, new_registry
from dispatch.control.openapi import openapi_document
from dispatch.control.problems import ProblemError, problem
from dispatch.control.target import ControlTarget, adapt
from dispatch.log import get_logger
from dispatch.store import StoreError

__all__ = ["create_app"]

log = get_logger("dispatch.control")

_STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
           "/static/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8")}


def _static_routes() -> list[Route]:
    folder = resources.files("dispatch.control") / "static"
    routes = []
    for path, (name, media_type) in _STATIC.items():
        content = (folder / name).read_bytes()

        async def serve(_: Request, content: bytes = content, media_type: str = media_type
                        ) -> Response:
            return Response(content, media_type=media_type,
                            headers={"Cache-Control": "no-cache"})

        routes.append(Route(path, serve, methods=["GET"]))
    return routes


#: ``/healthz`` fails when the dispatch loops (which turn at least every 0.5 s, also
#: while paused or idle) have not turned for this long
STALE_TICK_S = 30.0


async def _healthz(request: Request) -> JSONResponse:
    # answering at all proves the event loop runs; a target that reports its dispatch
    # loops' last turn (``last_tick_at``) also fails this when they are wedged
    target: ControlTarget = request.app.state.target
    running = sum(1 for h in target.campaigns() if h.running)
    body: dict[str, Any] = {"status": "ok", "campaigns_running": running,
                            "uptime_s": round(time.monotonic() - request.app.state.started, 3)}
    tick_at = getattr(target, "last_tick_at", None)
    if isinstance(tick_at, int | float):
        age_s = anyio.current_time() - tick_at
        body["loop_tick_age_s"] = round(age_s, 3)
        if age_s > STALE_TICK_S:
            return problem(503, f"the dispatch loops have not turned for {age_s:.0f} s",
                           loop_tick_age_s=round(age_s, 3))
    return JSONResponse(body)


async def _readyz(request: Request) -> JSONResponse:
    target: ControlTarget = request.app.state.target
    problems: list[str] = []
    try:
        async with target.store.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to answer means not ready
        problems.append(f"store unreachable: {type(exc).__name__}")
    if not target.agent_registered:
        problems.append("agent not registered with the voice server")
    if target.draining:
        problems.append("draining: no new dials")
    if problems:
        return problem(503, "; ".join(problems), checks=problems)
    return JSONResponse({"status": "ready"})


async def _openapi(_: Request) -> JSONResponse:
    return JSONResponse(openapi_document())


async def _on_problem(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    return exc.response()


async def _on_http(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return problem(exc.status_code, str(exc.detail))


async def _on_store(_: Request, exc: Exception) -> Response:
    log.error("control request failed", error=str(exc))
    return problem(503, f"database error: {exc}")


def create_app(target: ControlTarget | Any, *, token: str | None) -> Starlette:
    """The control plane over ``target``; with ``token`` every route but the probes and
    the dashboard's static files needs ``Authorization: Bearer <token>``.

    Binding is the host's business: call :func:`~dispatch.control.check_bind` first.
    """
    id_ = "/v1/campaigns/{id:str}"
    routes = [
        Route("/v1/campaigns", api.list_campaigns, methods=["GET"]),
        Route(id_, api.get_campaign, methods=["GET"]),
        Route(id_, api.patch_campaign, methods=["PATCH"]),
        Route(id_ + "/requeue", api.requeue_campaign, methods=["POST"]),
        Route(id_ + "/{action:str}", api.campaign_action, methods=["POST"]),
        Route("/v1/reload", api.reload, methods=["POST"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/openapi.json", _openapi, methods=["GET"]),
        Route("/healthz", _healthz, methods=["GET"]),
        Route("/readyz", _readyz, methods=["GET"]),
        *_static_routes(),
    ]
    app = Starlette(routes=routes, exception_handlers={
        ProblemError: _on_problem, HTTPException: _on_http, StoreError: _on_store})
    app.state.target = adapt(target)
    app.state.registry, app.state.collector = new_registry()
    app.state.started = time.monotonic()
    app.add_middleware(BearerAuth, token=token)
    return app
