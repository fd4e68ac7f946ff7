"""Errors as RFC 9457 problem bodies (``application/problem+json``)."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

__all__ = ["ProblemError", "problem"]

_TITLES = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
           405: "Method Not Allowed", 409: "Conflict", 422: "Unprocessable Content",
           413: "Content Too Large", 500: "Internal Server Error", 501: "Not Implemented",
           503: "Service Unavailable"}


def problem(status: int, detail: str, **extra: Any) -> JSONResponse:
    """A problem response; ``detail`` is one line meant for the operator."""
    body = {"type": "about:blank", "title": _TITLES.get(status, "Error"), "status": status,
            "detail": detail, **extra}
    headers = {"WWW-Authenticate": 'Bearer realm="dispatch"'} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type="application/problem+json",
                        headers=headers)


class ProblemError(Exception):
    """Raised by a handler: the app turns it into :func:`problem`."""

    def __init__(self, status: int, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.extra = extra

    def response(self) -> JSONResponse:
        return problem(self.status, self.detail, **self.extra)
