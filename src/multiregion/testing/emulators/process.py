"""Start a server process on a free loopback port, wait until it answers, stop it cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence

from multiregion.errors import Unavailable
from multiregion.testing.fakes.serving import Served

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int, host: str = LOOPBACK) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_for_port(port: int, *, timeout_s: float, host: str = LOOPBACK) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if port_open(port, host):
            return
        time.sleep(0.05)
    raise Unavailable(f"nothing answered on {host}:{port} within {timeout_s:g}s")


class EmulatorProcess(Served):
    """One emulator as a child process in its own process group.

    ``argv`` may contain ``{port}``, replaced by the chosen port. ``stop`` sends SIGTERM to the
    group, then SIGKILL, and waits until the port is closed so that it can be reused.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        start_timeout_s: float = 30.0,
    ) -> None:
        self.port = port if port is not None else free_port()
        self.argv = [a.replace("{port}", str(self.port)) for a in argv]
        self._env = {**os.environ, **(env or {})}
        self._cwd = cwd
        self._start_timeout_s = start_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> EmulatorProcess:
        self._proc = subprocess.Popen(
            self.argv,
            env=self._env,
            cwd=self._cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + self._start_timeout_s
            while not port_open(self.port):
                if self._proc.poll() is not None:
                    raise Unavailable(f"{self.argv[0]} exited with {self._proc.returncode}")
                if time.monotonic() > deadline:
                    raise Unavailable(f"{self.argv[0]} did not listen on port {self.port}")
                time.sleep(0.05)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for sig, wait_s in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
            if proc.poll() is not None:
                break
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                continue
        deadline = time.monotonic() + 3.0
        while port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None
