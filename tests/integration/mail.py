"""A slow SMTP server for the notification crash test, and finding who is talking to it.

The server takes its time over each message so that a test can kill the sender in the middle;
the sender is found from the client port of the SMTP connection (`/proc/net/tcp`, then the
processes' open sockets).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from email import message_from_bytes
from email import policy as email_policy
from pathlib import Path

from tests.integration.compose import alive


class SlowMailServer:
    """An SMTP server that takes `delay` seconds to accept each message. aiosmtpd cancels the
    handler when the sender disconnects, so a sender killed meanwhile delivers nothing — as with
    a real server, which takes responsibility for a message only with its `250`."""

    def __init__(self, delay: float):
        self.delay, self.amounts, self.sending = delay, [], {}

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        amount = amount_of(envelope.content)
        self.sending[session.peer[1]] = (time.monotonic(), amount)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.sending.pop(session.peer[1], None)
        self.amounts.append(amount)
        return "250 OK"


def amount_of(content: bytes) -> int:
    """Whose application an e-mail is about: its amount (each application has its own)."""
    body = message_from_bytes(content, policy=email_policy.default).get_body().get_content()
    return int(re.search(r"金额 (\d+) 元", body).group(1))


def owner_of_port(port: int, groups: set[int]) -> int | None:
    """The process of the process groups `groups` holding the local TCP port `port`."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port:
            inodes.add(f"socket:[{fields[9]}]")
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            if os.getpgid(int(proc.name)) in groups:
                for fd in (proc / "fd").iterdir():
                    if os.readlink(fd) in inodes:
                        return int(proc.name)
    return None


def sender(server: SlowMailServer, workers: list, spared: set[int]) -> tuple[int, int] | None:
    """(pid, amount) of a worker process early in handing over a message not killed before:
    early, so that the kill surely lands before the server's `250`; once, so that a message
    never runs out of retries while a dead sender's claim on it runs out."""
    groups = {w.pid for w in workers if w.alive()}
    for port, (since, amount) in list(server.sending.items()):
        if amount not in spared and 0.05 < time.monotonic() - since < server.delay / 3:
            pid = owner_of_port(port, groups)
            if pid is not None and alive(pid):
                return pid, amount
    return None
