"""Tools the server-side LLM can call, and the ``llm.tool_call`` runner.

``tool(name=, description=, schema=Model, execute=fn)`` declares a tool in the
function-calling shape of ``agent.create`` (``parameters`` = the model's JSON schema).
On ``llm.tool_call`` the arguments are validated with the model and ``execute(args,
call)`` runs (sync functions in a worker thread, async ones on the loop). Every
failure becomes ``{"error": ...}`` in the answer; nothing is raised into the loop.
"""

from __future__ import annotations

import inspect
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from pydantic import BaseModel, ValidationError

from dispatch.log import get_logger

if TYPE_CHECKING:
    from dispatch.sdk.call import Call

__all__ = ["BoundedSet", "Tool", "run_tool_calls", "tool"]

_log = get_logger("dispatch.sdk.tools")

Execute = Callable[[Any, "Call | None"], Any]


@dataclass(frozen=True)
class Tool:
    """A declared tool. ``execute(args, call)`` gets the validated model (or a dict)."""

    name: str
    description: str
    execute: Execute
    schema: type[BaseModel] | None = None
    parameters: dict[str, Any] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        """The ``agent.create`` ``tools[]`` entry (OpenAI function-calling shape)."""
        params = self.parameters or (
            self.schema.model_json_schema() if self.schema is not None else {"type": "object"}
        )
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": params},
        }


def tool(
    *,
    name: str,
    description: str = "",
    schema: type[BaseModel] | None = None,
    execute: Execute,
    parameters: dict[str, Any] | None = None,
) -> Tool:
    """Declare a tool. ``schema`` is a pydantic model validating the arguments.

    Without ``schema``, ``parameters`` (a JSON schema) is sent as is and ``execute``
    receives the raw argument dict. Raises :class:`ValueError` on an empty name.
    """
    if not name:
        raise ValueError("a tool needs a name")
    return Tool(name, description, execute, schema, dict(parameters or {}))


class BoundedSet:
    """An insertion-ordered set that forgets its oldest members beyond ``max_size``."""

    def __init__(self, max_size: int = 4096) -> None:
        self._items: OrderedDict[Hashable, None] = OrderedDict()
        self._max = max_size

    def add(self, item: Hashable) -> bool:
        """Add ``item``; ``False`` when it was already present (a duplicate)."""
        if item in self._items:
            return False
        self._items[item] = None
        if len(self._items) > self._max:
            self._items.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._items)


async def run_tool_calls(
    tools: dict[str, Tool], tool_calls: list[Any], call: Call | None
) -> list[dict[str, Any]]:
    """Run every tool call of one ``llm.tool_call`` frame; one result entry each."""
    results: list[dict[str, Any]] = []
    for item in tool_calls:
        if not isinstance(item, dict):
            continue
        name, raw_args = _name_and_arguments(item)
        result = await _run_one(tools.get(name), name, raw_args, call)
        if call is not None:
            call.record_tool_result(name, raw_args, result)
        results.append({"tool_call_id": str(item.get("id", "")), "result": result})
    return results


def _name_and_arguments(item: dict[str, Any]) -> tuple[str, Any]:
    fn = item.get("function")
    source = fn if isinstance(fn, dict) else item
    raw = source.get("arguments", "{}")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except ValueError:
            pass  # left as text: validation reports it
    return str(source.get("name", "")), raw


async def _run_one(spec: Tool | None, name: str, raw_args: Any, call: Call | None) -> Any:
    if spec is None:
        _log.warning("unknown tool called", tool=name)
        return {"error": f"Unknown tool: {name}"}
    try:
        args: Any = _validate(spec, raw_args)
    except ValidationError as exc:
        _log.warning("tool arguments invalid", tool=name, errors=exc.error_count())
        return {"error": f"invalid arguments: {exc.errors(include_url=False)}"}
    except TypeError as exc:
        return {"error": f"invalid arguments: {exc}"}
    try:
        result = await _execute(spec.execute, args, call)
        return _jsonable(result)
    except Exception as exc:
        _log.exception("tool raised", tool=name)
        return {"error": f"{type(exc).__name__}: {exc}"}


def _validate(spec: Tool, raw_args: Any) -> Any:
    if spec.schema is not None:
        if isinstance(raw_args, str):
            return spec.schema.model_validate_json(raw_args)
        return spec.schema.model_validate(raw_args)
    if not isinstance(raw_args, dict):
        raise TypeError("arguments are not a JSON object")
    return raw_args


async def _execute(fn: Execute, args: Any, call: Call | None) -> Any:
    if inspect.iscoroutinefunction(fn):
        return await fn(args, call)
    result = await anyio.to_thread.run_sync(fn, args, call, abandon_on_cancel=True)
    if inspect.isawaitable(result):
        return await _await(result)
    return result


async def _await(value: Awaitable[Any]) -> Any:
    return await value


def _jsonable(result: Any) -> Any:
    if isinstance(result, BaseModel):
        return result.model_dump(mode="json")
    json.dumps(result)  # raises TypeError when not JSON: answered as an error
    return result
