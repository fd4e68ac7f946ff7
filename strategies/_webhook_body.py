"""Reading a request body under a size limit, before anything parses it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

__all__ = ["DEFAULT_MAX_BODY_BYTES", "BodyTooLarge", "check_declared_length", "read_limited"]

DEFAULT_MAX_BODY_BYTES = 1024 * 1024


class BodyTooLarge(Exception):
    """The body is (or declares to be) over the limit (413)."""


def check_declared_length(headers: Mapping[str, str], limit: int) -> None:
    """Refuse a ``Content-Length`` over ``limit`` before a byte of the body is read."""
    declared = headers.get("content-length")
    if declared is None:
        return
    if not declared.strip().isdigit():
        raise BodyTooLarge("content-length is not a number")
    if int(declared) > limit:
        raise BodyTooLarge(f"body of {int(declared)} bytes is over the {limit}-byte limit")


async def read_limited(chunks: AsyncIterator[bytes], limit: int) -> bytes:
    """Collect ``chunks``; stop with :class:`BodyTooLarge` as soon as ``limit`` is passed
    (a chunked body without ``Content-Length`` is never read further)."""
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"body is over the {limit}-byte limit")
        parts.append(chunk)
    return b"".join(parts)
