"""Queued outcomes of a CsvStrategy and their write-back (status column, results file).

Outcomes are queued by ``record_outcome`` and written at the next poll or at
close, in a worker thread. A write that fails (file missing, replaced meanwhile,
results file not writable) keeps its outcomes queued for the next flush; an
outcome whose row cannot be found any more is logged.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import anyio.to_thread
import polars as pl

from dispatch.clock import Clock
from dispatch.log import get_logger
from dispatch.strategies._csv_index import EmittedIndex
from dispatch.strategies._csv_writeback import ResultsFile, StatusWriteBack, WriteBackError
from dispatch.strategy import Outcome

__all__ = ["OutcomeWriter"]

log = get_logger("dispatch.strategies.csv")


class OutcomeWriter:
    """Queues outcomes and writes them to ``status_writer`` / ``results`` when flushed."""

    def __init__(self, path: Path, index: EmittedIndex, clock: Clock, *,
                 status_writer: StatusWriteBack | None, results: ResultsFile | None) -> None:
        self.path = path
        self.status_writer = status_writer
        self.results = results
        self._index = index
        self._clock = clock
        self._status_outbox: dict[str, str] = {}
        self._results_outbox: list[dict[str, str]] = []

    @property
    def queued(self) -> int:
        return len(self._status_outbox) + len(self._results_outbox)

    def queue(self, outcome: Outcome) -> None:
        word = outcome.disposition or outcome.reason.value
        if self.status_writer is not None:
            self._status_outbox[outcome.record.id] = word
        if self.results is not None:
            self._results_outbox.append(_result_row(outcome, word, self._clock.now()))

    async def flush(self) -> None:
        """Write what is queued; failures are logged and retried at the next flush."""
        if self.results is not None and self._results_outbox:
            rows, self._results_outbox = self._results_outbox, []
            try:
                await anyio.to_thread.run_sync(self.results.append, rows)
            except OSError as exc:
                self._results_outbox = rows + self._results_outbox
                log.warning(
                    "csv results file not written", path=str(self.results.path), error=repr(exc)
                )
        if self.status_writer is not None and self._status_outbox:
            await self._flush_status(self.status_writer)

    async def _flush_status(self, writer: StatusWriteBack) -> None:
        outbox, self._status_outbox = self._status_outbox, {}
        known = self._index.keys_of(list(outbox))
        updates = {
            cols: {key: outbox[rid] for rid, key in ids.items()} for cols, ids in known.items()
        }
        try:
            result = await anyio.to_thread.run_sync(writer.flush, updates)
        except (OSError, WriteBackError, pl.exceptions.PolarsError) as exc:
            self._status_outbox = {**outbox, **self._status_outbox}
            log.warning("csv status write-back postponed", path=str(self.path), error=repr(exc))
            return
        lost = [
            rid
            for cols, ids in known.items()
            for rid, key in ids.items()
            if key not in result.matched.get(cols, set())
        ]
        if lost:
            log.warning("csv rows for outcomes not found", path=str(self.path), ids=lost[:20])


def _result_row(outcome: Outcome, word: str, now_s: float) -> dict[str, str]:
    return {
        "id": outcome.record.id,
        "phone": outcome.record.phone,
        "status": word,
        "reason": outcome.reason.value,
        "attempts": str(outcome.attempts),
        "call_id": outcome.call_id or "",
        "disposition": outcome.disposition or "",
        "at": dt.datetime.fromtimestamp(now_s, dt.UTC).isoformat(),
    }
