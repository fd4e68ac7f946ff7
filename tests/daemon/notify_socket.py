"""A fake systemd: an AF_UNIX datagram socket the daemon under test notifies."""

from __future__ import annotations

import socket
import time
import uuid


class NotifySocket:
    """Binds an abstract-namespace address (``NOTIFY_SOCKET=@...``) and collects messages."""

    def __init__(self) -> None:
        self.name = f"@dispatch-test-{uuid.uuid4().hex}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name[1:])
        self.messages: list[dict[str, str]] = []

    def close(self) -> None:
        self.sock.close()

    def _receive(self, timeout_s: float) -> bool:
        self.sock.settimeout(max(0.01, timeout_s))
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return False
        fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
        self.messages.append(fields)
        return True

    def wait_for(self, key: str, value: str | None = None, *, after: int = 0,
                 timeout_s: float = 60.0) -> dict[str, str]:
        """The first message from index ``after`` on holding ``key`` (``=value``)."""
        deadline = time.monotonic() + timeout_s
        index = after
        while True:
            while index < len(self.messages):
                message = self.messages[index]
                index += 1
                if key in message and (value is None or message[key] == value):
                    return message
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {key}={value} within {timeout_s}s; got {self.messages}")
            self._receive(left)

    def count(self, key: str) -> int:
        return sum(1 for m in self.messages if key in m)
