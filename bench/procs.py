"""Child processes of the bench and what /proc says about them (CPU time, RSS)."""

from __future__ import annotations

import ctypes
import math
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from services.bus.natsserver import end_process, free_ports

_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: if the bench is killed (even with SIGKILL) its children follow,
    # so no consumer or router outlives a run. Linux only, like the /proc readers below.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    """One process started by the bench; `stop()` ends it (TERM, then KILL)."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, size: int = 2000) -> str:
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return ""
        return data[-size:].decode(errors="replace")

    def stop(self, timeout: float = 5.0) -> None:
        end_process(self.process, timeout)


def spawn(name: str, argv: list[str], *, env: dict[str, str], log_dir: Path, cwd: Path | None = None) -> Child:
    """Start `argv` with its output in `log_dir/<name>.log` (a file: a pipe nobody reads would block it)."""
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            preexec_fn=_die_with_parent,
            # Own process group: Ctrl-C reaches only the bench, which then stops children in order.
            start_new_session=True,
        )
    return Child(name, process, log_path)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    return free_ports(1)[0]


def wait_for_port(port: int, child: Child, timeout: float = 20.0) -> None:
    """Return once 127.0.0.1:`port` accepts connections; raise if `child` died or the time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive:
            raise RuntimeError(f"{child.name} exited with {child.process.returncode}:\n{child.log_tail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{child.name} did not listen on port {port} within {timeout:g}s:\n{child.log_tail()}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` (all its threads), from /proc/<pid>/stat; 10 ms resolution."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    # The command name may contain spaces; fields are counted from after its closing parenthesis.
    fields = stat[stat.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def rss_bytes(pid: int) -> int:
    """Resident set size of `pid`, from the VmRSS line of /proc/<pid>/status."""
    with open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            if line.startswith(b"VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def total_cpu(pids: list[int]) -> float:
    """Summed CPU seconds of live processes among `pids` (a process that exited counts 0)."""
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except (OSError, ValueError):
            pass
    return total


def runnable_wait_seconds(pids: list[int]) -> float:
    """Seconds the threads of `pids` were ready to run but waited for a CPU (/proc/<pid>/task/*/schedstat).

    CPU time alone cannot tell a process that waits for work from one that waits for a core: a consumer at
    0.9 cores may be idle 10% of the time, or preempted by the nats-server and router sharing the machine.
    A thread that ends between two readings takes its waits with it; the consumers' threads live as long as they do.
    NaN when no thread could be read (no schedstat in this kernel, or the processes are gone).
    """
    total, read = 0, False
    for pid in pids:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{pid}/task/{task}/schedstat", "rb") as f:
                    total += int(f.read().split()[1])
                read = True
            except (OSError, ValueError, IndexError):
                pass
    return total / 1e9 if read else math.nan


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all cores, every process), from /proc/stat."""
    with open("/proc/stat", "rb") as f:
        fields = [int(x) for x in f.readline().split()[1:9]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / _CLK_TCK
