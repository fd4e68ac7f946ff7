"""What a :class:`~strategies.sql.SqlStrategy` reads and writes: mapping, write-back, URL.

Everything here is plain data checked at construction (no I/O): a mistake in a
column name is found by ``preflight()`` against the live database, a mistake in
the settings themselves (an unknown write-back field, a page size of 0) raises
``ValueError`` at once.

The URL's password never leaves :func:`safe_url`: keys, log lines and error
messages use the URL rendered with the password hidden, and :func:`scrub` removes
the password from any driver message before it is shown.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

__all__ = [
    "WRITEBACK_FIELDS",
    "SqlMapping",
    "WriteBackColumns",
    "parse_url",
    "safe_url",
    "scrub",
    "source_key",
    "split_table",
]

#: outcome fields that can be written back, in the order they are written
WRITEBACK_FIELDS = ("status", "reason", "attempts", "call_id", "disposition", "updated_at")

_QUERY_HASH_CHARS = 12
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


#: the async driver used when a URL names none (``postgresql://`` -> asyncpg)
DEFAULT_DRIVERS = {"postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg",
                   "mysql": "mysql+asyncmy", "mariadb": "mariadb+asyncmy",
                   "sqlite": "sqlite+aiosqlite"}


def parse_url(url: str | URL) -> URL:
    """A SQLAlchemy URL, with the default async driver when it names none;
    ``ValueError`` (without the URL text) when it cannot be parsed."""
    if not isinstance(url, URL):
        try:
            url = make_url(url)
        except sa.exc.ArgumentError:
            raise ValueError("not a SQLAlchemy database URL (expected e.g. "
                             "postgresql+asyncpg://user@host/db)") from None
    driver = DEFAULT_DRIVERS.get(url.drivername)
    return url.set(drivername=driver) if driver else url


def safe_url(url: URL) -> str:
    """The URL as text with its password (if any) shown as ``***``."""
    return url.render_as_string(hide_password=True)


def scrub(text: str, url: URL) -> str:
    """``text`` with the URL's password removed (driver messages may echo it)."""
    password = url.password
    if password:
        text = text.replace(str(password), "***")
    return text


def source_key(url: URL, table: str | None, query: str | None) -> str:
    """``sql:<url without password>#<table>`` or ``...#query:<hash of the query>``."""
    if query is not None:
        normal = " ".join(query.split())
        digest = hashlib.sha256(normal.encode()).hexdigest()[:_QUERY_HASH_CHARS]
        return f"sql:{safe_url(url)}#query:{digest}"
    return f"sql:{safe_url(url)}#{table}"


def split_table(name: str) -> tuple[str | None, str]:
    """``"schema.table"`` -> ``("schema", "table")``; each part must be a plain identifier."""
    parts = name.split(".")
    if len(parts) > 2 or not all(_IDENT.match(p) for p in parts):
        raise ValueError(f"table {name!r}: expected a name such as leads or schema.leads")
    return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])


def _check_column(option: str, name: str | None) -> None:
    if name is not None and not _IDENT.match(name):
        raise ValueError(f"{option} {name!r}: not a plain column name")


@dataclasses.dataclass(frozen=True, slots=True)
class SqlMapping:
    """Which columns make a record.

    ``cursor_column`` orders the incremental read (default: the id column); it is
    an ever-growing id or an ``updated_at`` that the application bumps on change.
    ``metadata_columns``: columns copied into ``Record.metadata`` and
    ``prompt_vars`` (``None``: every column not otherwise mapped). ``skip_column``:
    rows with a non-empty value there are not handed out (the write-back status
    column by default, so that a row we already wrote an outcome to is not read as
    new work).
    """

    id_column: str = "id"
    phone_column: str = "phone"
    greeting: str | None = None
    metadata_columns: Sequence[str] | None = None
    not_before_column: str | None = None
    timezone_column: str | None = None
    cursor_column: str | None = None
    skip_column: str | None = None
    #: columns never copied into metadata (the write-back columns)
    exclude_columns: Sequence[str] = ()
    #: the skip column may be absent (it was derived from the write-back status column)
    skip_optional: bool = False

    def __post_init__(self) -> None:
        for option, name in (("id_column", self.id_column), ("phone_column", self.phone_column),
                             ("not_before_column", self.not_before_column),
                             ("timezone_column", self.timezone_column),
                             ("cursor_column", self.cursor_column),
                             ("skip_column", self.skip_column)):
            _check_column(option, name)
        for name in self.metadata_columns or ():
            _check_column("metadata_columns", name)

    @property
    def cursor(self) -> str:
        return self.cursor_column or self.id_column

    def required(self) -> list[str]:
        """Columns the source must have (template fields are checked separately)."""
        wanted = [self.id_column, self.phone_column, self.cursor, self.not_before_column,
                  self.timezone_column, None if self.skip_optional else self.skip_column,
                  *(self.metadata_columns or ())]
        out: list[str] = []
        for name in wanted:
            if name and name not in out:
                out.append(name)
        return out

    def special(self) -> set[str]:
        """Columns that are not metadata."""
        names = {self.id_column, self.phone_column, self.not_before_column,
                 self.timezone_column, self.skip_column, *self.exclude_columns}
        return {n for n in names if n}


@dataclasses.dataclass(frozen=True, slots=True)
class WriteBackColumns:
    """Outcome field -> column of the table to write it to (only these are written).

    ``table``: the table to update by the id column (default: the strategy's table;
    required in query mode).
    """

    columns: Mapping[str, str]
    table: str | None = None

    def __post_init__(self) -> None:
        if not self.columns:
            raise ValueError("write_back: name at least one column (e.g. {'status': 'status'})")
        for field, column in self.columns.items():
            if field not in WRITEBACK_FIELDS:
                raise ValueError(f"write_back field {field!r}: expected one of "
                                 f"{', '.join(WRITEBACK_FIELDS)}")
            _check_column(f"write_back {field}", column)
        if self.table is not None:
            split_table(self.table)

    @classmethod
    def parse(cls, text: str, table: str | None = None) -> WriteBackColumns:
        """``"status,reason=dial_reason"``: a bare field is written to a column of its name."""
        columns: dict[str, str] = {}
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            field, _, column = part.partition("=")
            columns[field.strip()] = column.strip() or field.strip()
        return cls(columns, table)
