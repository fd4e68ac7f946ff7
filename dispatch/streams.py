"""Reading a memory object stream in bursts.

anyio's ``receive()`` yields to the event loop on every item, even when more are
queued: a consumer that handles a cheap item per turn of the loop (a frame to write, a
callback to run) spends more on the turns than on the items. :func:`bursts` hands out
what is already queued without a turn in between, with a checkpoint every ``burst``
items so that a full queue does not hold the loop. Items are taken one at a time, as
the consumer asks: one that stops early leaves the rest in the stream.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import TypeVar

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

__all__ = ["BURST", "bursts"]

T = TypeVar("T")

#: items handed out without yielding to the event loop, at most
BURST = 256


async def bursts(stream: MemoryObjectReceiveStream[T],
                 burst: int = BURST) -> AsyncGenerator[T, None]:
    """Every item of ``stream`` until it ends. Use it under ``contextlib.aclosing``."""
    async for item in stream:
        yield item
        for _ in range(burst):
            try:
                item = stream.receive_nowait()
            except (anyio.WouldBlock, anyio.EndOfStream):
                break
            yield item
