"""Structured logging (structlog) with secret redaction.

Secrets never reach a log line: keys whose name looks secret are masked, and any
value registered with :func:`register_secret` (the API key, webhook secrets) is
replaced wherever it appears inside a string, including exception text.

As a library, ``dispatch`` configures nothing and never prints: until
:func:`configure_logging` is called (the CLI does), every ``dispatch`` log line
goes to the standard :mod:`logging` module under the ``dispatch.*`` logger names
(``dispatch.hub``, ``dispatch.sdk``...), formatted as ``event key=value ...``,
and the host application's handlers and levels decide what is shown. A host that
configured structlog itself gets the lines through its own structlog setup.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import MutableMapping
from typing import Any

import structlog

__all__ = [
    "SecretFilter",
    "configure_logging",
    "get_logger",
    "redact",
    "register_secret",
    "secret_safe_logger",
]

_SECRET_KEY = re.compile(r"(api[_-]?key|secret|token|password|authorization)", re.IGNORECASE)
_MASK = "***"
_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember ``value`` so that it is masked in every log line from now on."""
    if value and len(value) >= 4:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """Return ``text`` with every registered secret masked."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, _MASK)
    return text


_API_KEY_FIELD = re.compile(r'("api_key"\s*:\s*")[^"\']*')


class SecretFilter(logging.Filter):
    """A stdlib logging filter that masks secrets in a record's message.

    Third-party loggers (websockets' DEBUG frame dumps include the ``connect``
    frame) are masked by field, since long frames are elided mid-text, and by
    registered secret value.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        masked = redact(_API_KEY_FIELD.sub(r"\1***", text))
        if masked != text:
            record.msg, record.args = masked, None
        return True


def secret_safe_logger(name: str) -> logging.Logger:
    """A stdlib logger with :class:`SecretFilter`, to hand to libraries that log frames."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, SecretFilter) for f in logger.filters):
        logger.addFilter(SecretFilter())
    return logger


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, BaseException):
        return redact(f"{type(value).__name__}: {value}")
    if isinstance(value, dict):
        return {
            k: (_MASK if _SECRET_KEY.search(str(k)) else _redact_value(v)) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    return value


def _redact_processor(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if _SECRET_KEY.search(key) and event_dict[key] is not None:
            event_dict[key] = _MASK
        else:
            event_dict[key] = _redact_value(event_dict[key])
    return event_dict


class _RedactingRenderer:
    """Runs the real renderer, then masks registered secrets in its output."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __call__(self, logger: Any, name: str, event_dict: MutableMapping[str, Any]) -> str:
        return redact(str(self._inner(logger, name, event_dict)))


_configured = False

#: the library's own loggers stay silent unless the host configures logging
logging.getLogger("dispatch").addHandler(logging.NullHandler())


def configure_logging(*, json: bool = False, level: str = "info", stream: Any = None) -> None:
    """Configure structlog for the process (CLI, daemon): lines to ``stream`` (default
    stderr). A library user need not call it; see the module docstring."""
    global _configured
    _configured = True
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _redact_processor,
            _RedactingRenderer(renderer),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stderr),
        cache_logger_on_first_use=False,
    )


def _to_stdlib(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> tuple[tuple[str], dict[str, Any]]:
    """The last stage for stdlib logging: one redacted ``event key=value`` message."""
    exc_info = event_dict.pop("exc_info", None)
    event_dict.pop("positional_args", None)
    event = str(event_dict.pop("event", ""))
    fields = " ".join(f"{key}={value!r}" if isinstance(value, str) else f"{key}={value}"
                      for key, value in event_dict.items())
    message = redact(f"{event} {fields}".strip())
    return (message,), ({"exc_info": exc_info} if exc_info else {})


_stdlib_loggers: dict[str, Any] = {}


def _stdlib_logger(name: str) -> Any:
    logger = _stdlib_loggers.get(name)
    if logger is None:
        logger = structlog.wrap_logger(
            secret_safe_logger(name),
            processors=[structlog.stdlib.filter_by_level, _redact_processor, _to_stdlib],
            wrapper_class=structlog.stdlib.BoundLogger,
        )
        _stdlib_loggers[name] = logger
    return logger


class _LibraryLogger:
    """Resolves, at every call, where a line goes: structlog when the process
    configured it (the CLI, or a host using structlog), else stdlib ``logging``."""

    def __init__(self, name: str) -> None:
        self._name = name

    def _target(self) -> Any:
        if _configured or structlog.is_configured():
            return structlog.get_logger(self._name, component=self._name)
        return _stdlib_logger(self._name)

    def __getattr__(self, method: str) -> Any:
        return getattr(self._target(), method)


def get_logger(name: str) -> Any:
    """A logger for ``name`` (``dispatch.hub``...); see the module docstring for where
    its lines go. Resolved per call, so a module-level logger follows a later
    :func:`configure_logging`."""
    return _LibraryLogger(name)
