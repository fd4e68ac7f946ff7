"""The CLI's own error, and the translation of everything else that ends a run.

Exit codes (``dispatch run``)::

    0    every record is terminal
    1    anything else (a campaign-wide failure such as no caller id on the agent,
         a lead source whose poll keeps failing, an unexpected error)
    2    bad option, unusable input, campaign-wide mistake found before dialling,
         database in use by another run
    3    the voice server refused the API key or the agent (at connect or mid-run)
    130  interrupted (Ctrl-C, SIGTERM) before every record was terminal
"""

from __future__ import annotations

__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_USAGE",
    "CliError",
    "translate",
]

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_REFUSED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class CliError(Exception):
    """Fatal for the command: print ``str(self)`` on one line and exit ``exit_code``.

    ``option`` names the option at fault when there is one (for JSON error lines).
    """

    def __init__(self, message: str, exit_code: int, *, option: str | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.option = option


def translate(exc: BaseException) -> CliError | None:
    """The one-line error for ``exc`` (or for the leaves of an exception group).

    ``None`` when ``exc`` is not a known way for a run to end: the caller re-raises
    it, so a bug keeps its traceback.
    """
    if isinstance(exc, BaseExceptionGroup):
        leaves = [translate(leaf) for leaf in _leaves(exc)]
        known = [leaf for leaf in leaves if leaf is not None]
        return known[0] if known and len(known) == len(leaves) else None
    if isinstance(exc, CliError):
        return exc
    return _translate_domain(exc)


def _translate_domain(exc: BaseException) -> CliError | None:
    from dispatch.errors import CampaignError, PreflightError, QuotaExhausted, SourceFailing
    from dispatch.store import StoreLocked

    if isinstance(exc, StoreLocked):
        return CliError(str(exc), EXIT_USAGE)
    if isinstance(exc, PreflightError):
        return CliError(str(exc), EXIT_USAGE, option=exc.option)
    if isinstance(exc, SourceFailing):
        return CliError(f"{exc}; records not dialled stay pending", EXIT_ERROR)
    if isinstance(exc, QuotaExhausted):  # its message says what to do
        return CliError(str(exc), EXIT_REFUSED)
    if isinstance(exc, CampaignError):
        code = EXIT_REFUSED if _refused(exc) else EXIT_ERROR
        return CliError(f"{exc}; records not dialled stay pending: fix this and run the same "
                        "command again", code)
    return None


def _refused(exc: BaseException) -> bool:
    """True when the voice server refused the key or the agent somewhere in the chain."""
    from dispatch.sdk import AuthenticationError, RegistrationError

    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, AuthenticationError | RegistrationError):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out
