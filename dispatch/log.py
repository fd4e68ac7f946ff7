"""Structured logging (structlog) with secret redaction.

Secrets never reach a log line: keys whose name looks secret are masked, and any
value registered with :func:`register_secret` (the API key, webhook secrets) is
replaced wherever it appears inside a string, including exception text.
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


def configure_logging(*, json: bool = False, level: str = "info", stream: Any = None) -> None:
    """Configure structlog for the process (CLI, daemon). Libraries need not call it."""
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


def get_logger(name: str) -> Any:
    """A structlog logger bound to ``component=name``."""
    # Bind lazily (initial values, not .bind()): a module-level logger must follow a
    # configure_logging() call made after the module was imported.
    return structlog.get_logger(name, component=name)
