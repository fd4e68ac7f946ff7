"""Dial failures that are the same for every record: a campaign error, not an outcome.

No caller id on the agent ("No phone numbers registered on agent"), a refused key
(:class:`~dispatch.sdk.errors.AuthenticationError`), a refused agent registration
(:class:`~dispatch.sdk.errors.RegistrationError`) and other
:class:`~dispatch.sdk.errors.ConfigurationError`\\ s would fail every dial of the
list. Burning the list on them (every record ``failed``, a re-run with the fix
dialling nobody) is the mistake this module prevents: such a dial leaves its
record ``pending`` (the attempt row keeps the error; it does not count toward the
record's retries), and after :data:`STOP_AFTER` in a row (at once for a refused
key or registration) the hub stops dialling, drains, and ``run()`` raises
:class:`~dispatch.errors.CampaignError`.

Per-record problems should never get here: a bad destination is refused at
admission (``invalid_phone``), so a ``ConfigurationError`` from the dialer is about
the campaign's own settings. A record put back this way goes behind the others;
one that keeps failing so while other records are dialled fine (a dialer raising
``ConfigurationError`` for that record alone) is not put back more than
:data:`STOP_AFTER` times: its next such failure is its own outcome (``error``).
"""

from __future__ import annotations

import dataclasses

from dispatch.errors import CampaignError
from dispatch.sdk.errors import AuthenticationError, ConfigurationError, RegistrationError

__all__ = ["STOP_AFTER", "CampaignGuard", "is_campaign_wide"]

#: consecutive campaign-wide dial failures after which the hub stops dialling
STOP_AFTER = 3

_AT_ONCE = (AuthenticationError, RegistrationError)


def is_campaign_wide(exc: BaseException) -> bool:
    """True for a dial failure that would be the same for every record."""
    return isinstance(exc, (*_AT_ONCE, ConfigurationError))


def _cause(exc: BaseException) -> str:
    if isinstance(exc, AuthenticationError):
        return f"the voice server refused the API key ({exc})"
    if isinstance(exc, RegistrationError):
        return f"the voice server refused the agent's registration ({exc})"
    return str(exc)


@dataclasses.dataclass(slots=True)
class CampaignGuard:
    """Counts campaign-wide dial failures in a row; any other dial result resets it."""

    streak: int = 0

    def ok(self) -> None:
        self.streak = 0

    def failed(self, exc: BaseException) -> CampaignError | None:
        """Count one; return the error that ends the campaign once it is clear."""
        self.streak += 1
        if not isinstance(exc, _AT_ONCE) and self.streak < STOP_AFTER:
            return None
        dials = "1 dial" if self.streak == 1 else f"{self.streak} dials in a row"
        error = CampaignError(f"campaign stopped ({dials} failed the same way; the records "
                              f"not dialled stay pending): {_cause(exc)}")
        error.__cause__ = exc
        return error
