"""Campaign-level errors: mistakes that are the same for every record.

A record-level problem (one bad phone, one malformed row) is never an exception:
that record is skipped with a reason and the campaign goes on. The errors here are
for problems that would make *every* dial fail or every record be skipped; they
are raised before anyone is dialled (or as soon as the pattern is clear) so that a
whole list is never burnt by one typo::

    CampaignError              the campaign cannot proceed; records stay pending
    ├── PreflightError         found before the first dial (config vs. source)
    │   └── SourceUnusable     a source cannot be read at all (missing, empty,
    │                          binary, no phone column); transient in follow mode
    ├── SourceFailing          a strategy's poll() keeps raising
    └── QuotaExhausted         the voice server's plan quota is spent: the campaign
                               row was paused with that reason

Messages are one line and name the source, the option or field at fault, what was
expected and what was found. They never contain secrets.
"""

from __future__ import annotations

__all__ = ["CampaignError", "PreflightError", "QuotaExhausted", "SourceFailing",
           "SourceUnusable"]


class CampaignError(Exception):
    """The campaign cannot go on; nothing was marked terminal because of it."""


class PreflightError(CampaignError):
    """A campaign-wide mistake found before the first dial.

    ``option`` names the CLI option or constructor argument at fault when there is
    one (``"--greeting"``, ``"--from"``, ``"--region"``).
    """

    def __init__(self, message: str, *, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


class SourceUnusable(PreflightError):
    """A source cannot be read at all. In a one-shot run this ends the campaign
    (exit 2); a long-running hub keeps waiting for the source to become usable."""

    def __init__(self, message: str, *, source: str, option: str | None = None) -> None:
        super().__init__(message, option=option)
        self.source = source


class SourceFailing(CampaignError):
    """A strategy's ``poll()`` kept raising; ``source`` is the strategy's key."""

    def __init__(self, message: str, *, source: str) -> None:
        super().__init__(message)
        self.source = source


class QuotaExhausted(CampaignError):
    """The voice server refused a dial because the plan's quota is spent (concurrent
    calls, minutes). The hub paused campaign ``campaign`` with that reason and
    drained; the records not dialled stay pending (``dispatch run`` exits 3)."""

    def __init__(self, message: str, *, campaign: str) -> None:
        super().__init__(message)
        self.campaign = campaign
