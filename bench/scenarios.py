"""The scenarios of issue 5, each run interleaved: every round runs every system once, in a rotating order."""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from bench.drive import Load, Run, drive, percentile, quiesce
from bench.procs import rss_bytes
from bench.profile import Profiler
from bench.systems import Harness

Metrics = dict[str, float]
PACE_S = 0.01
"""The paced router's gap between tokens: 100 tokens/s per stream, as the issue asks."""


@dataclass(frozen=True)
class Plan:
    """Sizes of one bench run; `full()` fits 10 minutes on a 2-core machine, `quick()` about 2."""

    rounds: int
    seq_requests: int
    burst_s: float
    mem_step: int
    mem_total: int
    mem_total_baseline: int
    """Where the FastStream baseline's memory run stops: its growth shows early, and it is 10x slower."""
    paced_s: float
    paced_rounds: int
    paced1000_s: float
    paced1000_rounds: int
    seq_tokens: int = 16
    burst_clients: int = 50
    burst_tokens: int = 256
    mem_clients: int = 50
    mem_tokens: int = 16
    paced_tokens: int = 50
    zero_concurrency: int = 64
    """Consumer concurrency in the zero-delay phase: hfbus's default (and the anchor's)."""
    paced_concurrency: int = 1100
    """Consumer concurrency in the paced phase: room for 1,000 streams in one process."""

    @classmethod
    def full(cls) -> Plan:
        return cls(
            rounds=5,
            seq_requests=200,
            burst_s=1.5,
            mem_step=1000,
            mem_total=10_000,
            mem_total_baseline=2000,
            paced_s=2.5,
            paced_rounds=3,
            paced1000_s=3.0,
            paced1000_rounds=3,
        )

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            rounds=2,
            seq_requests=100,
            burst_s=0.8,
            mem_step=1000,
            mem_total=2000,
            mem_total_baseline=2000,
            paced_s=1.0,
            paced_rounds=2,
            paced1000_s=2.0,
            paced1000_rounds=1,
        )


def _rotate(names: Sequence[str], index: int) -> list[str]:
    shift = index % len(names) if names else 0
    return [*names[shift:], *names[:shift]]


def _ms(seconds: float) -> float:
    return seconds * 1e3


def _common(run: Run) -> Metrics:
    ok = run.ok
    messages = sum(s.messages for s in ok)
    return {
        "requests": float(len(run.samples)),
        "errors": float(len(run.errors)),
        "timeouts": float(sum(1 for e in run.errors if e == "timeout")),
        "messages_per_request": messages / len(ok) if ok else math.nan,
    }


def _window(run: Run) -> Metrics:
    tokens = run.tokens_in_window()
    seconds = run.window_s
    if seconds <= 0:
        return {}
    cpu = run.cpu_in_window("consumer") if run.consumers else math.nan
    metrics = {
        "tokens_per_s": tokens / seconds,
        "cpu_us_per_token": cpu / tokens * 1e6 if tokens else math.nan,
        "consumer_cores": cpu / seconds,
    }
    # Where the rest of the 2 cores went: a saturated router or loader would cap every system alike, and
    # `other_cores` (the machine's busy time not spent by the bench) flags rounds disturbed by other jobs.
    ours = 0.0
    for group in ("consumer", "loader", "router", "nats"):
        if group in run.window[0].cpu:
            used = run.cpu_in_window(group)
            ours += used
            if group != "consumer":
                metrics[f"{group}_cores"] = used / seconds
    metrics["other_cores"] = max(0.0, run.cpu_in_window("machine") - ours) / seconds
    return metrics


def _ttft(samples: Sequence[Any]) -> Metrics:
    ttfts = [s.ttft for s in samples if s.error is None and s.first > 0]
    return {"ttft_p50_ms": _ms(percentile(ttfts, 0.5)), "ttft_p99_ms": _ms(percentile(ttfts, 0.99))}


Progress = Callable[[str], None]


async def _rounds(
    harness: Harness,
    systems: Sequence[str],
    rounds: int,
    load: Load,
    measure: Callable[[Run], Metrics],
    label: str,
    progress: Progress,
    profiler: Profiler | None,
    profile_load: Load | None = None,
) -> dict[str, list[Metrics]]:
    out: dict[str, list[Metrics]] = {name: [] for name in systems}
    for index in range(rounds):
        for name in _rotate(systems, index):
            await quiesce(harness.all_pids())
            pids = [c.pid for c in harness.consumers[name]]
            run = await drive(harness.targets[name], load, pids, harness.infra_groups(name))
            metrics = measure(run)
            out[name].append(metrics)
            kinds = Counter(run.errors).most_common(2)
            errors = f" (errors: {'; '.join(f'{n}x {e}' for e, n in kinds)})" if kinds else ""
            progress(f"{label} round {index + 1}/{rounds} {name}: " + _brief(metrics) + errors)
    # Profiling perturbs what it measures, so it gets a round of its own that no figure is taken from.
    for name in systems:
        if profiler is None or name not in profiler.systems or not harness.consumers[name]:
            continue
        await quiesce(harness.all_pids())
        pids = [c.pid for c in harness.consumers[name]]
        recordings = profiler.begin(label, name, pids)
        await asyncio.sleep(0.5)  # let py-spy attach before the load starts
        await drive(harness.targets[name], profile_load or load, pids)
        summary = profiler.end(label, name, recordings)
        progress(f"{label} {name}: profiled, {summary['samples']} busy samples (summary at the end)")
    return out


def _brief(metrics: Metrics) -> str:
    keys = ("ttft_p50_ms", "ttft_p99_ms", "tokens_per_s", "cpu_us_per_token", "errors")
    return ", ".join(f"{k}={metrics[k]:.4g}" for k in keys if k in metrics)


async def sequential(
    harness: Harness, systems: Sequence[str], plan: Plan, progress: Progress, profiler: Profiler | None = None
) -> dict[str, Any]:
    """One client, one request at a time: time to first token (and the whole answer) per system."""
    load = Load(clients=1, max_tokens=plan.seq_tokens, duration_s=60.0, max_requests=plan.seq_requests)

    def measure(run: Run) -> Metrics:
        latencies = [s.ended - s.started for s in run.ok]
        window = _window(run)
        extra = {
            "latency_p50_ms": _ms(percentile(latencies, 0.5)),
            # One request at a time, so this is the consumer's fixed cost per request (intake to result).
            "cpu_us_per_request": run.cpu_in_window("consumer") / len(run.ok) * 1e6
            if run.ok and run.consumers
            else math.nan,
            "other_cores": window.get("other_cores", math.nan),
        }
        return _common(run) | _ttft(run.samples) | extra

    # A sequential client leaves the consumer mostly idle: profile ten times as many requests for enough samples.
    longer = replace(load, max_requests=load.max_requests * 10)
    return await _rounds(harness, systems, plan.rounds, load, measure, "sequential", progress, profiler, longer)


async def burst(
    harness: Harness, systems: Sequence[str], plan: Plan, progress: Progress, profiler: Profiler | None = None
) -> dict[str, Any]:
    """50 concurrent clients against the zero-delay router: end-to-end tokens/s and consumer CPU per token."""
    load = Load(
        clients=plan.burst_clients,
        max_tokens=plan.burst_tokens,
        duration_s=plan.burst_s,
        max_requests=1_000_000,
        drain_s=30.0,
    )

    def measure(run: Run) -> Metrics:
        return _common(run) | _window(run)

    return await _rounds(harness, systems, plan.rounds, load, measure, "burst", progress, profiler)


async def paced(
    harness: Harness,
    systems: Sequence[str],
    plan: Plan,
    progress: Progress,
    *,
    streams: int,
    seconds: float,
    rounds: int,
    profiler: Profiler | None = None,
) -> dict[str, Any]:
    """`streams` clients against the 100 tok/s router, spread over one stream's length; steady-state window."""
    ramp = plan.paced_tokens * PACE_S
    load = Load(
        clients=streams,
        max_tokens=plan.paced_tokens,
        duration_s=ramp + seconds,
        max_requests=1_000_000,
        stagger_s=ramp,
        warmup_s=ramp,
        drain_s=15.0,
    )

    def measure(run: Run) -> Metrics:
        metrics = _common(run) | _window(run) | _ttft(run.started_in_window())
        metrics["tokens_per_s_per_stream"] = metrics["tokens_per_s"] / streams
        return metrics

    return await _rounds(harness, systems, rounds, load, measure, f"paced{streams}", progress, profiler)


async def memory(
    harness: Harness, systems: Sequence[str], plan: Plan, progress: Progress, limits: dict[str, int] | None = None
) -> dict[str, Any]:
    """RSS of each consumer process after every `mem_step` requests, the systems taking turns step by step.

    `limits` stops a system's run early (its last checkpoint is then below `mem_total`).
    """
    load = Load(clients=plan.mem_clients, max_tokens=plan.mem_tokens, duration_s=120.0, max_requests=plan.mem_step)
    out: dict[str, Any] = {name: {"requests": [], "rss_mib": [], "errors": 0} for name in systems}
    steps = plan.mem_total // plan.mem_step
    for step in range(steps):
        for name in _rotate(systems, step):
            if (step + 1) * plan.mem_step > (limits or {}).get(name, plan.mem_total):
                continue
            await quiesce(harness.all_pids())
            pids = [c.pid for c in harness.consumers[name]]
            run = await drive(harness.targets[name], load, pids)
            rss = sum(rss_bytes(pid) for pid in pids) / 2**20
            entry = out[name]
            entry["requests"].append((step + 1) * plan.mem_step)
            entry["rss_mib"].append(rss)
            entry["errors"] += len(run.errors)
        progress(
            f"memory {(step + 1) * plan.mem_step} requests: "
            + ", ".join(f"{n}={out[n]['rss_mib'][-1]:.1f} MiB" for n in systems if out[n]["rss_mib"])
        )
    for entry in out.values():
        entry.update(memory_growth(entry["requests"], entry["rss_mib"]))
    return out


def memory_growth(requests: Sequence[int], rss_mib: Sequence[float]) -> dict[str, float]:
    """RSS at the first and last checkpoints, and growth per 1,000 requests after the first (the warm-up).

    The growth is a least-squares slope over the checkpoints after warm-up, so one noisy reading
    (arena reuse, a GC pass) does not decide it; `growth_endpoints` is the plain last-minus-first figure.
    """
    if len(requests) < 2:
        return {"rss_first_mib": rss_mib[0] if rss_mib else math.nan, "growth_mib_per_1000": math.nan}
    xs = [r / 1000 for r in requests]
    mean_x = sum(xs) / len(xs)
    mean_y = sum(rss_mib) / len(rss_mib)
    var = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, rss_mib, strict=True)) / var
    return {
        "rss_first_mib": rss_mib[0],
        "rss_last_mib": rss_mib[-1],
        "growth_mib_per_1000": slope,
        "growth_endpoints_mib_per_1000": (rss_mib[-1] - rss_mib[0]) / (xs[-1] - xs[0]),
    }
