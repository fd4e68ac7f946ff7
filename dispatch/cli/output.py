"""Where ``dispatch run`` writes what, so that each stream stays machine-readable.

=================  ===========================  ==============================
mode               stderr                       stdout
=================  ===========================  ==============================
terminal           live panel, notices, errors  summary table
not a terminal     key=value log lines          summary table
``--json-logs``    one JSON object per line     one JSON summary object
=================  ===========================  ==============================

Errors are one line in every mode (``dispatch: error: ...`` or a JSON object with
``event="error"``). Third-party stdlib logging is routed through the same renderer
so that nothing else is mixed into stderr.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from typing import Any, TextIO

from rich.console import Console
from rich.text import Text

from dispatch.cli import progress
from dispatch.log import get_logger

__all__ = ["Output", "Summary"]

log = get_logger("dispatch.cli")


@dataclasses.dataclass(frozen=True, slots=True)
class Summary:
    """What a finished (or interrupted) run did, for the final report."""

    file: str
    db: str
    duration_s: float
    counts: dict[str, int]
    reasons: dict[str, int]
    exit_code: int

    @property
    def unfinished(self) -> int:
        return sum(n for s, n in self.counts.items() if s not in ("completed", "failed", "skipped"))

    def as_dict(self) -> dict[str, Any]:
        return {
            "event": "summary",
            "file": self.file,
            "db": self.db,
            "duration_s": round(self.duration_s, 3),
            "total": sum(self.counts.values()),
            "unfinished": self.unfinished,
            "counts": dict(sorted(self.counts.items())),
            "reasons": dict(sorted(self.reasons.items())),
            "exit_code": self.exit_code,
        }


class Output:
    """The run command's streams: ``console`` is stderr, ``stdout`` takes the summary."""

    def __init__(self, *, json_logs: bool, interactive: bool, stdout: TextIO | None = None,
                 console: Console | None = None) -> None:
        self.json_logs = json_logs
        self.interactive = interactive
        self.console = console or Console(stderr=True)
        self._stdout = stdout or sys.stdout

    def route_stdlib_logging(self) -> None:
        """Send warnings from stdlib loggers (websockets, alembic...) through structlog."""
        logging.captureWarnings(True)
        root = logging.getLogger()
        if not any(isinstance(h, _ToStructlog) for h in root.handlers):
            root.addHandler(_ToStructlog(logging.WARNING))

    def error(self, message: str, exit_code: int, **fields: Any) -> int:
        """Report a fatal error on one line; return ``exit_code``."""
        message = " ".join(message.split())  # one line, whatever the exception text held
        if self.json_logs:
            log.error("error", message=message, exit_code=exit_code, **fields)
        else:
            print(f"dispatch: error: {message}", file=sys.stderr, flush=True)
        return exit_code

    def notice(self, event: str, text: str, *, style: str = "bold yellow", **fields: Any) -> None:
        """Something the operator must see now (sandbox banner, draining)."""
        if self.interactive:
            self.console.print(Text(text, style=style), soft_wrap=True)  # no markup parsing
        else:
            log.warning(event, message=text, **fields)

    def summary(self, summary: Summary) -> None:
        """The final report on stdout (a table, or one JSON object with ``--json-logs``)."""
        if self.json_logs:
            print(json.dumps(summary.as_dict(), sort_keys=True), file=self._stdout, flush=True)
            return
        out = Console(file=self._stdout, width=None if self._stdout.isatty() else 100)
        progress.render_summary(summary.counts, summary.reasons, out)
        out.print(f"{summary.duration_s:.1f} s, database {summary.db}", highlight=False)
        if summary.unfinished:
            self.notice("unfinished", f"{summary.unfinished} record(s) not finished; run the "
                        "same command again to go on.", style="yellow",
                        unfinished=summary.unfinished)


class _ToStructlog(logging.Handler):
    """A stdlib handler that re-emits records as structlog events."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a library's bad format string must not kill the CLI
            text = str(record.msg)
        level = "error" if record.levelno >= logging.ERROR else "warning"
        getattr(get_logger(record.name), level)(text)
