"""A host application that configured stdlib logging and runs a dispatch campaign as a
library (run by ``test_library_logging.py`` in a subprocess; must print nothing)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import anyio


class Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[str, str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.name, record.levelname, record.getMessage()))


async def campaign(db: Path) -> None:
    from dispatch import DispatchHub, Pinecall, Record
    from dispatch.sandbox import Sandbox
    from dispatch.testing import MemoryStrategy

    rows = [Record(id="ok1", phone="+15550000101"), Record(id="bad", phone="+1555ABC1234"),
            Record(id="ok2", phone="+15550000102")]
    async with Sandbox(speed=100, seed=1) as sandbox, Pinecall("pk_sandbox", sandbox.url) as pc:
        agent = pc.agent("host-agent", phone_number="+15005550006")
        hub = DispatchHub(agent, [MemoryStrategy(rows)], db=db, poll_interval_s=0.2)
        await hub.run(until_idle=True)


def main() -> None:
    out, db = Path(sys.argv[1]), Path(sys.argv[2])
    keep = Keep()
    root = logging.getLogger()
    root.addHandler(keep)
    root.setLevel(logging.INFO)
    before = {"handlers": [repr(h) for h in root.handlers], "level": root.level}
    anyio.run(campaign, db)
    import structlog

    after = {"handlers": [repr(h) for h in root.handlers], "level": root.level}
    out.write_text(json.dumps({"before": before, "after": after, "lines": keep.lines,
                               "structlog_configured": structlog.is_configured()}))


if __name__ == "__main__":
    main()
