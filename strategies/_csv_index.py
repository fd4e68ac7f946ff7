"""What has been handed out already, in two forms.

* **row keys** -- a vectorised in-process hash (``DataFrame.hash_rows``) of a
  row's identity columns, kept as polars Series, so a re-read of a million-row
  file drops every already-handled row in one ``is_in`` instead of a Python loop.
  Polars' hash is stable within one process (fixed seeds), which is all this
  needs; it is never persisted.
* **record ids** -- the persisted ids of emitted records (``id -> row key``), so
  duplicate ids collapse and write-back can find a record's rows again.

Keys depend on which columns were hashed, so they are grouped in
*generations*, one per identity-column set (a header change starts a new one).
"""

from __future__ import annotations

import dataclasses

import polars as pl

__all__ = ["KEY", "ROW", "EmittedIndex", "row_keys"]

KEY = "__dispatch_key"
ROW = "__dispatch_row"
_SEED = 0x5EED_0001

Columns = tuple[str, ...]


def row_keys(frame: pl.DataFrame, columns: Columns) -> pl.Series:
    """A UInt64 key per row of ``frame`` over ``columns`` (sorted; nulls = empty)."""
    if not columns:
        return pl.Series(KEY, [0] * frame.height, dtype=pl.UInt64)
    part = frame.select(pl.col(c).fill_null("") for c in columns)
    return part.hash_rows(seed=_SEED).alias(KEY)


@dataclasses.dataclass(slots=True)
class _Generation:
    done: list[pl.Series] = dataclasses.field(default_factory=list)
    ids: dict[str, int] = dataclasses.field(default_factory=dict)
    #: first line of ids chosen by the file (id column, map_row), for conflict messages
    lines: dict[str, int] = dataclasses.field(default_factory=dict)


class EmittedIndex:
    """Row keys handled and record ids emitted (see the module docstring)."""

    def __init__(self) -> None:
        self._gens: dict[Columns, _Generation] = {}

    def __len__(self) -> int:
        return sum(len(g.ids) for g in self._gens.values())

    def entry(self, columns: Columns, record_id: str) -> tuple[int | None, int | None] | None:
        """``(row key, first line)`` of a known id; the key is ``None`` when it was
        emitted under other columns (not comparable). ``None`` for a new id."""
        gen = self._gens.get(columns)
        if gen is not None and record_id in gen.ids:
            return gen.ids[record_id], gen.lines.get(record_id)
        for other in self._gens.values():
            if record_id in other.ids:
                return None, other.lines.get(record_id)
        return None

    def add_id(
        self, columns: Columns, record_id: str, key: int, *, line: int | None = None
    ) -> None:
        gen = self._gens.setdefault(columns, _Generation())
        gen.ids[record_id] = key
        if line is not None:
            gen.lines[record_id] = line

    def add_done(self, columns: Columns, keys: pl.Series) -> None:
        """Remember row keys whose rows were handled (emitted, collapsed or rejected)."""
        if keys.len():
            self._gens.setdefault(columns, _Generation()).done.append(keys)

    def drop_done(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Rows of ``frame`` whose key (in any generation it can be computed for) is new."""
        keep: pl.Series | None = None
        for columns, gen in self._gens.items():
            if not gen.done or not set(columns) <= set(frame.columns):
                continue
            done = pl.concat(gen.done)
            gen.done = [done]
            fresh = ~row_keys(frame, columns).is_in(done.implode())
            keep = fresh if keep is None else keep & fresh
        # filtering copies every column: skip it when nothing can drop (a first load)
        if keep is None or keep.all():
            return frame
        return frame.filter(keep)

    def keys_of(self, record_ids: list[str]) -> dict[Columns, dict[str, int]]:
        """The row keys of known ``record_ids``, grouped by generation."""
        found: dict[Columns, dict[str, int]] = {}
        for columns, gen in self._gens.items():
            for rid in record_ids:
                if rid in gen.ids:
                    found.setdefault(columns, {})[rid] = gen.ids[rid]
        return found
