"""Small parts of the daemon: the watchdog's stall rule, fatal errors out of the task
tree, and starting the control plane when it is installed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from anyio.abc import TaskGroup

from dispatch.daemon.voice import FatalError
from dispatch.log import get_logger

if TYPE_CHECKING:
    from dispatch.daemon.daemon import Daemon

__all__ = ["first_fatal", "stalled", "start_control"]

log = get_logger("dispatch.daemon")


def first_fatal(group: BaseExceptionGroup[BaseException]) -> FatalError | None:
    for exc in group.exceptions:
        found = first_fatal(exc) if isinstance(exc, BaseExceptionGroup) else exc
        if isinstance(found, FatalError):
            return found
    return None


def stalled(previous: Mapping[str, int], beats: Mapping[str, int]) -> list[str]:
    """Campaigns whose dispatch loop had turned by the last check and has not turned since
    (0 turns: the loop has not started yet, e.g. still resuming: not held against it)."""
    return [name for name, beat in beats.items() if beat and beat == previous.get(name)]


async def start_control(tg: TaskGroup, daemon: Daemon) -> None:
    """Serve ``dispatch.control`` (when installed) on ``control.bind``."""
    control = daemon.config.control
    if not control.enabled:
        return
    try:
        from dispatch.daemon.control_host import serve_control
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("dispatch.control"):
            log.info("control plane not installed in this build")
            return
        raise
    token = None
    if control.token_file is not None:
        try:
            token = control.token_file.read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise FatalError(f"control.token_file: cannot read {control.token_file}: "
                             f"{exc.strerror}", 2) from None
    from dispatch.log import register_secret

    register_secret(token)  # masked in every log line
    await tg.start(serve_control, daemon, control.host, control.port, token)


