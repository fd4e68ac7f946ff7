"""Reading a :class:`~dispatch.config.DispatchConfig`: TOML, then the environment.

Environment variables override the file: ``DISPATCH_<PATH>``, with ``__`` between
the parts of a key path, upper or lower case. Under ``CAMPAIGNS`` the next part is
a campaign's ``name`` (``-`` written ``_``) or its index::

    DISPATCH_STORE=/var/lib/dispatch/dispatch.db
    DISPATCH_LOG_FORMAT=json
    DISPATCH_CONTROL__BIND=0.0.0.0:8765
    DISPATCH_CAMPAIGNS__REMINDERS__LIMITS__MAX_PER_MINUTE=30
    DISPATCH_CAMPAIGNS__0__AGENT__FROM=+14155550000

A value is taken as text (pydantic converts ``30`` and ``true``); one starting with
``[`` or ``{`` is read as JSON. ``DISPATCH_CONFIG`` (the file ``serve`` reads) is not
a setting. The API key is never a setting: ``PINECALL_API_KEY`` or
``voice.api_key_file``.

Every problem is one line naming the key path (or the variable) and the bad value
(:class:`ConfigError`); a value under a secret-looking key is never shown.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dispatch.config.model import SECRET_KEY_WORDS, DispatchConfig

__all__ = ["ENV_PREFIX", "ConfigError", "load_config", "parse_config"]

ENV_PREFIX = "DISPATCH_"
#: ``DISPATCH_*`` variables that are not settings
RESERVED_ENV = frozenset({"DISPATCH_CONFIG"})
_SOURCE_KINDS = frozenset({"csv", "sql", "webhook"})
_MAX_VALUE_CHARS = 80


class ConfigError(ValueError):
    """An unusable configuration; ``errors`` holds one line per problem."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors
        super().__init__(f"{source}: " + "; ".join(errors))


def load_config(path: str | os.PathLike[str],
                environ: Mapping[str, str] | None = None) -> DispatchConfig:
    """Read ``path`` (TOML), apply ``environ`` (default ``os.environ``), validate."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, [f"cannot read the file: {exc.strerror}"]) from None
    except UnicodeDecodeError:
        raise ConfigError(source, ["not UTF-8 text"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [f"not valid TOML: {exc}"]) from None
    return parse_config(data, source=source, environ=environ)


def parse_config(data: Mapping[str, Any], *, source: str = "config",
                 environ: Mapping[str, str] | None = None) -> DispatchConfig:
    """Validate a mapping (a parsed file) after the environment overrides."""
    errors = [f"{path}: secrets are not read from the config file (value not shown); "
              "use PINECALL_API_KEY or a *_file setting" for path in _secret_keys(data, ())]
    merged: dict[str, Any] = json.loads(json.dumps(data, default=str))  # a deep copy
    origins: dict[tuple[str, ...], str] = {}
    env = os.environ if environ is None else environ
    for name in sorted(env):
        if name.upper().startswith(ENV_PREFIX) and name.upper() not in RESERVED_ENV:
            problem = _apply_env(merged, name, env[name], origins)
            if problem:
                errors.append(problem)
    if errors:
        raise ConfigError(source, errors)
    try:
        return DispatchConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(source, _lines(exc, origins)) from None


def _secretish(key: str) -> bool:
    low = key.lower()
    return any(word in low for word in SECRET_KEY_WORDS) and not low.endswith("_file")


def _secret_keys(value: Any, path: tuple[str | int, ...]) -> list[str]:
    found: list[str] = []
    if isinstance(value, Mapping):
        for key, child in value.items():
            here = (*path, str(key))
            if _secretish(str(key)):
                found.append(_dotted(here))
            else:
                found += _secret_keys(child, here)
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _secret_keys(child, (*path, index))
    return found


def _apply_env(data: dict[str, Any], name: str, raw: str,
               origins: dict[tuple[str, ...], str]) -> str | None:
    parts = [p.lower() for p in name[len(ENV_PREFIX):].split("__")]
    if not all(parts):
        return f"{name} (environment): not a key path (parts are separated by '__')"
    if any(_secretish(p) for p in parts):
        return (f"{name} (environment): secrets are not settings (value not shown); use "
                "PINECALL_API_KEY or a *_file setting")
    node: Any = data
    path: list[str] = []
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(node, list):
            index = _list_index(node, part)
            if index is None:
                return f"{name} (environment): no campaign {part!r} at {_dotted(tuple(path))}"
            path.append(str(index))
            if last:
                return f"{name} (environment): cannot replace a whole campaign"
            node = node[index]
            continue
        if not isinstance(node, dict):
            return f"{name} (environment): {_dotted(tuple(path))} is not a table"
        path.append(part)
        if last:
            node[part] = _env_value(raw)
            origins[tuple(path)] = name
        else:
            node = node.setdefault(part, [] if part == "campaigns" else {})
    return None


def _list_index(items: list[Any], part: str) -> int | None:
    if part.isdigit():
        return int(part) if int(part) < len(items) else None
    for index, item in enumerate(items):
        if isinstance(item, dict) and str(item.get("name", "")).lower().replace("-", "_") == part:
            return index
    return None


def _env_value(raw: str) -> Any:
    if raw.lstrip().startswith(("[", "{")):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _dotted(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _lines(exc: ValidationError, origins: dict[tuple[str, ...], str]) -> list[str]:
    lines = []
    for error in exc.errors(include_url=False):
        loc = _clean_loc(tuple(error["loc"]))
        where = _dotted(loc)
        origin = origins.get(tuple(str(p) for p in loc))
        if origin:
            where = f"{where} (from {origin})"
        message = str(error["msg"]).removeprefix("Value error, ")
        line = f"{where}: {message}"
        if error["type"] != "missing" and "input" in error and not isinstance(
                error["input"], dict | list):
            shown = ("(value not shown)" if any(_secretish(str(p)) for p in loc)
                     else _short(error["input"]))
            line += f" (got {shown})"
        lines.append(line)
    return lines


def _clean_loc(loc: tuple[Any, ...]) -> tuple[str | int, ...]:
    """Drop the discriminator tag pydantic inserts after a source's index."""
    out: list[str | int] = []
    for index, part in enumerate(loc):
        if (isinstance(part, str) and part in _SOURCE_KINDS and index >= 2
                and loc[index - 2] == "sources" and isinstance(loc[index - 1], int)):
            continue
        out.append(part)
    return tuple(out)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 3] + "..."
