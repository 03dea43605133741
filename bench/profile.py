"""`--profile SYSTEM`: one extra, unscored round per scenario with py-spy attached to that system's consumers.

py-spy samples the consumer from outside (no code change, no import in the consumer) and writes collapsed
stacks; `summarize` turns them into the share of the consumer's busy samples spent in each function, self and
inclusive, so a missed target can be traced to names in services/ (or to the libraries they call).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.deps import installer

RATE_HZ = 250


def ensure_py_spy() -> str | None:
    """The py-spy binary (pip-installed into this venv on first use), or None when it cannot be had."""
    found = shutil.which("py-spy") or _beside_python()
    if found:
        return found
    if importlib.util.find_spec("py_spy") is None:
        print("bench: installing py-spy into this venv for --profile...", flush=True)
        subprocess.run([*installer(), "py-spy"], check=False, timeout=300)
    return _beside_python()


def _beside_python() -> str | None:
    candidate = Path(sys.executable).with_name("py-spy")
    return str(candidate) if candidate.exists() else None


@dataclass
class Recording:
    process: subprocess.Popen[bytes]
    output: Path


def start(binary: str, pid: int, output: Path) -> Recording:
    # --nonblocking: sample without pausing the consumer, so the profile perturbs what it measures least.
    # BENCH_PYSPY_NATIVE=1 adds C frames (the event loop, syscalls, parsers), which needs blocking samples;
    # BENCH_PYSPY_FORMAT=flamegraph writes an SVG instead of the collapsed stacks the summary reads.
    native = os.environ.get("BENCH_PYSPY_NATIVE") == "1"
    fmt = os.environ.get("BENCH_PYSPY_FORMAT", "raw")
    argv = [binary, "record", "-p", str(pid), "-o", str(output), "-f", fmt, "--nolineno", "-r", str(RATE_HZ)]
    argv += ["--native"] if native else ["--nonblocking"]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    return Recording(process, output)


def stop(recording: Recording, timeout: float = 20.0) -> None:
    """Ctrl-C is py-spy's way to stop and write the file."""
    if recording.process.poll() is None:
        recording.process.send_signal(signal.SIGINT)
    try:
        recording.process.wait(timeout)
    except subprocess.TimeoutExpired:
        recording.process.kill()
        recording.process.wait(timeout)


def summarize(path: Path, top: int = 25) -> dict[str, Any]:
    """Self and inclusive shares per function from py-spy's collapsed stacks (`frame;frame;... count`)."""
    self_counts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {"samples": 0, "self": [], "inclusive": []}
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        self_counts[frames[-1]] += count
        for frame in set(frames):  # a recursive frame counts once per sample
            inclusive[frame] += count

    def share(counter: Counter[str], limit: int, only: str | None = None) -> list[tuple[str, float]]:
        items = [(name, n) for name, n in counter.most_common() if only is None or only in name]
        return [(name, 100.0 * n / total) for name, n in items[:limit]] if total else []

    return {
        "samples": total,
        "self": share(self_counts, top),
        "inclusive": share(inclusive, top),
        "inclusive_services": share(inclusive, top, "services/"),
    }


def render(title: str, summary: dict[str, Any], top: int = 15) -> str:
    lines = [f"profile {title}: {summary['samples']} busy samples at {RATE_HZ} Hz (shares of busy time)"]
    for key, label in (("self", "self"), ("inclusive_services", "inclusive, services/")):
        lines.append(f"  {label}:")
        lines += [f"    {pct:5.1f}%  {name}" for name, pct in summary.get(key, [])[:top]]
    return "\n".join(lines)


@dataclass
class Profiler:
    """Which systems to profile, where the raw stacks go, and the summaries gathered so far."""

    binary: str
    systems: frozenset[str]
    directory: Path
    summaries: dict[str, dict[str, Any]]

    def begin(self, label: str, system: str, pids: list[int]) -> list[Recording]:
        self.directory.mkdir(parents=True, exist_ok=True)
        return [start(self.binary, pid, self.directory / f"{label}-{system}-{i}.txt") for i, pid in enumerate(pids)]

    def end(self, label: str, system: str, recordings: list[Recording]) -> dict[str, Any]:
        for recording in recordings:
            stop(recording)
        # Several processes (the x2 system) are summed, as their CPU time is.
        merged = self.directory / f"{label}-{system}.txt"
        merged.write_text("".join(r.output.read_text() for r in recordings if r.output.exists()))
        summary = summarize(merged)
        self.summaries[f"{label}/{system}"] = summary
        return summary
