"""docker-compose.yml as the tests read it: each app service's command, run here for real.

The integration tests start the processes of a deployment from these very command lines (the
`approval` of the image becomes this virtualenv's), and `tests/web/test_compose.py` checks that
every service with a command is one of `LAUNCHED`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
BIN = Path(sys.executable).parent

#: The services whose commands the integration tests run (tests/integration/test_topology.py).
LAUNCHED = {"migrate", "bundles", "web", "worker", "beat"}


def services() -> dict[str, dict]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]


def command(service: str) -> list[str]:
    """The service's command with the image's `approval` replaced by this virtualenv's."""
    argv = list(services()[service]["command"])
    return [str(BIN / argv[0]), *argv[1:]] if argv[0] == "approval" else argv


def healthcheck(service: str, port: int | None = None) -> list[str]:
    """The service's health check as this machine runs it (compose's `$$` is a plain `$`)."""
    test = [part.replace("$$", "$") for part in services()[service]["healthcheck"]["test"]]
    kind, *argv = test
    if port is not None:
        argv = [part.replace(":8000/", f":{port}/") for part in argv]
    if argv[0] == "python":
        argv[0] = sys.executable
    return ["sh", "-c", argv[0]] if kind == "CMD-SHELL" else argv


def child_env(settings_env: dict[str, str], **extra: str) -> dict[str, str]:
    """This machine's environment with the deployment's settings, and the venv first on PATH."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("APPROVAL_")}
    path = f"{BIN}{os.pathsep}{base.get('PATH', '')}"
    return {**base, **settings_env, **extra, "PATH": path, "PYTHONUNBUFFERED": "1"}


def alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie, killed but not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


class Process:
    """One started service: its own process group, its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path):
        self.name, self.argv, self.env, self.log = name, argv, env, log
        self.popen: subprocess.Popen | None = None
        self.ended_on_purpose = False
        self.start()

    def start(self) -> None:
        self.ended_on_purpose = False
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def crashed(self) -> bool:
        """It ended by itself, with an error: nothing a test did."""
        return not self.ended_on_purpose and self.popen.poll() not in (None, 0)

    def kill(self) -> None:
        """SIGKILL the whole process group: the machine lost power, as far as it knows."""
        self.ended_on_purpose = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()

    def stop(self, timeout: float = 20) -> int | None:
        """SIGTERM (a warm shutdown), then SIGKILL if it does not end in time."""
        self.ended_on_purpose = True
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.popen.returncode

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {self.name} ({self.log}) ---\n" + "\n".join(text.splitlines()[-lines:])


def wait_for(predicate, timeout: float, what: str, processes=(), interval: float = 0.1):
    """Poll `predicate` until it returns a true value; fail with the processes' logs if it
    does not in time, or at once if one of `processes` crashed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        crashed = [p for p in processes if p.crashed()]
        if crashed:
            logs = "\n".join(p.tail() for p in crashed)
            raise AssertionError(f"{crashed[0].name} crashed waiting for {what}\n{logs}")
        time.sleep(interval)
    logs = "\n".join(p.tail() for p in processes)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{logs}")
