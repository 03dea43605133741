"""Closed-loop load: N clients, each sending its next request when the previous one ends, bounded in count and time.

A run keeps every sample and three CPU marks (window start, window end, end), so throughput and CPU per token
come from the same steady-state window: requests still running at the window's edges are pro-rated by the part
of their token stream that fell inside it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bench.loader import Sample, Target, now
from bench.procs import machine_busy_seconds, runnable_wait_seconds, total_cpu


@dataclass(frozen=True)
class Load:
    """The shape of one run."""

    clients: int
    max_tokens: int
    duration_s: float
    """No request starts after this; the window ends here (or when the run ends, if earlier)."""
    max_requests: int
    stagger_s: float = 0.0
    """Client i starts at i/clients of this, so paced streams are spread over one stream's length."""
    warmup_s: float = 0.0
    """The measuring window starts this long after the run (ramp-up excluded)."""
    drain_s: float = 10.0
    """How long requests in flight at the window's end may still take before they count as timeouts."""


@dataclass(frozen=True)
class _Mark:
    at: float
    cpu: dict[str, float]
    """CPU seconds so far per process group: `consumer`, `loader` (this process) and any extra group."""


@dataclass
class Run:
    """What one run of one system measured."""

    samples: list[Sample]
    window: tuple[_Mark, _Mark]
    end: _Mark
    consumers: int
    """How many consumer processes were measured (0: no bus, so no consumer CPU)."""
    marks: dict[str, _Mark] = field(default_factory=dict)

    @property
    def ok(self) -> list[Sample]:
        return [s for s in self.samples if s.error is None]

    @property
    def errors(self) -> list[str]:
        return [s.error for s in self.samples if s.error is not None]

    @property
    def window_s(self) -> float:
        return self.window[1].at - self.window[0].at

    def tokens_in_window(self) -> float:
        a, b = self.window[0].at, self.window[1].at
        total = 0.0
        for s in self.samples:
            if s.error is not None or not s.tokens:
                continue
            lo, hi = s.first, s.ended
            if hi <= lo:
                total += s.tokens if a <= hi < b else 0
            elif hi > a and lo < b:
                total += s.tokens * (min(b, hi) - max(a, lo)) / (hi - lo)
        return total

    def cpu_in_window(self, group: str) -> float:
        """CPU seconds `group` used inside the window."""
        return self.window[1].cpu[group] - self.window[0].cpu[group]

    def started_in_window(self) -> list[Sample]:
        a, b = self.window[0].at, self.window[1].at
        return [s for s in self.samples if a <= s.started < b]


async def drive(
    target: Target, load: Load, consumer_pids: Sequence[int], others: Mapping[str, Sequence[int]] | None = None
) -> Run:
    """Run `load` against `target`; bounded by `max_requests` and by duration + drain (+5 s of slack).

    CPU is sampled for the consumer processes, this loader, and each group in `others` (router, nats-server).
    """
    loop = asyncio.get_running_loop()
    groups = {"consumer": list(consumer_pids), **{k: list(v) for k, v in (others or {}).items()}}
    marks: dict[str, _Mark] = {}

    def mark(name: str) -> None:
        cpu = {group: total_cpu(pids) for group, pids in groups.items()}
        cpu["loader"] = time.process_time()
        cpu["machine"] = machine_busy_seconds()
        cpu["consumer_runnable"] = runnable_wait_seconds(groups["consumer"])
        marks[name] = _Mark(now(), cpu)

    mark("start")
    start = marks["start"].at
    window_end = start + load.duration_s
    hard_end = window_end + load.drain_s
    timers = [loop.call_at(window_end, mark, "window_end")]
    if load.warmup_s > 0:
        timers.append(loop.call_at(start + load.warmup_s, mark, "window_start"))
    samples: list[Sample] = []
    issued = 0

    async def client(index: int) -> None:
        nonlocal issued
        if load.stagger_s > 0:
            await asyncio.sleep(load.stagger_s * index / load.clients)
        while now() < window_end and issued < load.max_requests:
            issued += 1
            samples.append(await target.request(load.max_tokens, hard_end))

    try:
        async with asyncio.timeout_at(hard_end + 5):
            await asyncio.gather(*(client(i) for i in range(load.clients)))
    finally:
        for timer in timers:
            timer.cancel()
    mark("end")
    window_start = marks.get("window_start", marks["start"])
    window_stop = marks.get("window_end", marks["end"])
    return Run(samples, (window_start, window_stop), marks["end"], len(groups["consumer"]), marks)


async def quiesce(
    pids: Sequence[int], *, max_wait_s: float = 20.0, machine_wait_s: float = 1.0, window_s: float = 0.2
) -> float:
    """Wait until the bench's processes are (nearly) idle, so one system's leftovers do not tax the next one.

    Idle means at most 10% of one core over `window_s`, summed over `pids`. Then wait a little (bounded by
    `machine_wait_s`) for the rest of the machine to calm down too: on a shared box other jobs come and go,
    and what they still take during a run is reported as `other_cores` rather than waited out.
    Returns the seconds waited.
    """
    started = now()
    while now() - started < max_wait_s:
        before = total_cpu(list(pids))
        await asyncio.sleep(window_s)
        if total_cpu(list(pids)) - before <= 0.1 * window_s + 1e-9:
            break
    calm_by = now() + machine_wait_s
    while now() < calm_by:
        before = machine_busy_seconds()
        await asyncio.sleep(window_s)
        if machine_busy_seconds() - before <= 0.25 * window_s:
            break
    return now() - started


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
