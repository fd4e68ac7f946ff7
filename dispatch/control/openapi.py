"""The OpenAPI 3.1 document served at ``/openapi.json`` (hand-written: small, exact)."""

from __future__ import annotations

from typing import Any

from dispatch import __version__

__all__ = ["openapi_document"]

_PROBLEM = {"description": "problem body (RFC 9457)",
            "content": {"application/problem+json": {
                "schema": {"$ref": "#/components/schemas/Problem"}}}}
_CAMPAIGN = {"description": "the campaign",
             "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Campaign"}}}}
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
_LIMIT = {"type": ["integer", "null"], "minimum": 1}


def _action(summary: str) -> dict[str, Any]:
    return {"post": {"summary": summary, "parameters": [_ID],
                     "responses": {"200": _CAMPAIGN, "401": _PROBLEM, "404": _PROBLEM,
                                   "409": _PROBLEM}}}


_SCHEMAS: dict[str, Any] = {
    "Problem": {"type": "object", "required": ["title", "status", "detail"],
                "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                               "status": {"type": "integer"}, "detail": {"type": "string"},
                               "field": {"type": "string"}}},
    "Limits": {"type": "object", "additionalProperties": False,
               "properties": {"max_per_minute": _LIMIT, "max_per_second": _LIMIT,
                              "max_concurrent": _LIMIT}},
    "Campaign": {"type": "object", "required": ["id", "state", "limits", "records"],
                 "properties": {
                     "id": {"type": "string"},
                     "state": {"enum": ["running", "paused", "cancelled", "done"]},
                     "state_changed_by": {"type": "string"},
                     "state_changed_at": {"type": "number"},
                     "acked_state": {"type": ["string", "null"]},
                     "limits": {"$ref": "#/components/schemas/Limits"},
                     "records": {"type": "object", "additionalProperties": {"type": "integer"}},
                     "total_records": {"type": "integer"},
                     "deferred": {"type": "integer"},
                     "next_dial_in_s": {"type": ["number", "null"]},
                     "waiting_on": {"type": ["string", "null"]},
                     "live": {"type": ["object", "null"],
                              "description": "the running hub's statistics, null when no hub "
                                             "of this process runs the campaign"}}},
    "Requeue": {"type": "object", "additionalProperties": False,
                "properties": {"status": {"type": "array", "items": {"type": "string"}},
                               "reason": {"type": "array", "items": {"type": "string"}},
                               "ids": {"type": "array", "items": {"type": "string"}},
                               "source": {"type": "array", "items": {"type": "string"}},
                               "all": {"type": "boolean"}, "dry_run": {"type": "boolean"}}},
}


def openapi_document() -> dict[str, Any]:
    """The control API's OpenAPI document."""
    body = {"required": True, "content": {"application/json": {"schema": {}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "dispatch control plane", "version": __version__},
        "components": {"schemas": _SCHEMAS,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": {
            "/v1/campaigns": {"get": {"summary": "every campaign with its counters",
                                      "responses": {"200": {"description": "campaigns"}}}},
            "/v1/campaigns/{id}": {
                "get": {"summary": "counters, limits, state, next dial, waiting on",
                        "parameters": [_ID],
                        "responses": {"200": _CAMPAIGN, "404": _PROBLEM}},
                "patch": {"summary": "change limits (persisted; applied live when the hub can)",
                          "parameters": [_ID],
                          "requestBody": {**body, "content": {"application/json": {
                              "schema": {"$ref": "#/components/schemas/Limits"}}}},
                          "responses": {"200": _CAMPAIGN, "404": _PROBLEM, "422": _PROBLEM}}},
            "/v1/campaigns/{id}/pause": _action("no new dials; live calls continue"),
            "/v1/campaigns/{id}/resume": _action("dial again"),
            "/v1/campaigns/{id}/cancel": _action(
                "no new dials; live calls finish; the rest become cancelled"),
            "/v1/campaigns/{id}/requeue": {"post": {
                "summary": "put finished records back to pending (the CLI's filters)",
                "parameters": [_ID],
                "requestBody": {**body, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Requeue"}}}},
                "responses": {"200": {"description": "what changed"}, "409": _PROBLEM,
                              "422": _PROBLEM}}},
            "/v1/reload": {"post": {"summary": "reload the configuration (as SIGHUP)",
                                    "responses": {"202": {"description": "reloading"},
                                                  "501": _PROBLEM}}},
            "/metrics": {"get": {"summary": "Prometheus text format",
                                 "responses": {"200": {"description": "metrics"}}}},
            "/healthz": {"get": {"summary": "the event loop answers", "security": [],
                                 "responses": {"200": {"description": "alive"}}}},
            "/readyz": {"get": {"summary": "store reachable, agent registered, not draining",
                                "security": [],
                                "responses": {"200": {"description": "ready"},
                                              "503": _PROBLEM}}},
        },
    }
