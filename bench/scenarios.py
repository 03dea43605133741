"""The scenarios of issue 5, each run interleaved: every round runs every system once, in a rotating order."""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from bench import stages
from bench.drive import Load, Run, drive, percentile, quiesce
from bench.loader import EMBED_MODEL
from bench.procs import rss_bytes
from bench.profile import Profiler
from bench.systems import Harness
from schemas.subjects import Subjects
from services.client import HfBus

Metrics = dict[str, float]
PACE_S = 0.01
"""The paced router's gap between tokens: 100 tokens/s per stream, as the issue asks."""
EMBED_LATENCY_S = 0.02
"""What the vectorize router charges per feature-extraction call, however many texts it carries."""
VECTORIZE_MODES = {
    "batching on": {"HFBUS_EMBED_BATCH_WAIT": "0.005", "HFBUS_EMBED_BATCH_SIZE": "64"},
    "batching off": {"HFBUS_EMBED_BATCH_WAIT": "0"},
}
"""The two consumers the vectorize scenario compares: micro-batched, and one upstream call per request."""


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
    vec_s: float
    vec_rounds: int
    seq_tokens: int = 16
    burst_clients: int = 50
    burst_tokens: int = 256
    mem_clients: int = 50
    mem_tokens: int = 16
    paced_tokens: int = 50
    stall_levels: tuple[int, ...] = (50, 100, 200, 400, 800)
    """Stream counts the stall-free scenario goes up through (bench/stallfree.py)."""
    stall_rounds: int = 2
    zero_concurrency: int = 64
    """The baselines' concurrency in the zero-delay phase (hfbus always runs on its own defaults)."""
    paced_concurrency: int = 1100
    """The baselines' concurrency in the paced and stall-free phases: room for 1,000 streams in one process, as
    hfbus's default chat concurrency has."""
    vec_clients: int = 200
    vec_warmup_s: float = 0.3
    """Excluded from the vectorize window: 200 clients starting at once send their first requests in one wave."""
    vec_concurrency: int = 256
    """Consumer concurrency for vectorize, in both modes: room for all 200 requests at once, so one upstream call
    per request is not held back by the consumer's own slots and the ratio is batching's alone."""
    vec_sample_texts: int = 32
    """Texts whose vectors are compared, batching on vs off (sent at once, so batching groups them)."""

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
            vec_s=2.0,
            vec_rounds=5,
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
            vec_s=1.0,
            vec_rounds=2,
            stall_levels=(50, 100, 200, 400),
            stall_rounds=1,
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
    }
    # The nats-server's CPU per token (a resumable stream's outputs are stored too), and a gateway's share of
    # `cpu_us_per_token` (which, for a gateway system, is gateway + consumer).
    for group in ("nats", "gateway"):
        if group in run.window[0].cpu:
            used = run.cpu_in_window(group)
            metrics[f"{group}_cpu_us_per_token"] = used / tokens * 1e6 if tokens else math.nan
    return metrics | _cores(run)


def _cores(run: Run) -> Metrics:
    """Cores each process group used over the window (`consumer_cores`, `router_cores`, ..., `other_cores`)."""
    seconds = run.window_s
    if seconds <= 0:
        return {}
    metrics = {"consumer_cores": run.cpu_in_window("consumer") / seconds if run.consumers else math.nan}
    if run.consumers and "consumer_runnable" in run.window[0].cpu:
        # Time ready to run but waiting for a core: when this and `consumer_cores` add up to the number of
        # single-threaded processes measured, none of them ever waited for work.
        metrics["consumer_preempted"] = run.cpu_in_window("consumer_runnable") / seconds
    # Where the rest of the 2 cores went: a saturated router or loader would cap every system alike, and
    # `other_cores` (the machine's busy time not spent by the bench) flags rounds disturbed by other jobs.
    ours = 0.0
    for group in ("consumer", "loader", "router", "nats"):
        if group in run.window[0].cpu:
            used = run.cpu_in_window(group)
            ours += used
            if group != "consumer":
                metrics[f"{group}_cores"] = used / seconds
    if "gateway" in run.window[0].cpu:  # already inside `consumer`: shown, not added again
        metrics["gateway_cores"] = run.cpu_in_window("gateway") / seconds
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
            metrics_url = harness.metrics_urls.get(name)
            before = await stages.scrape(metrics_url) if metrics_url else {}
            run = await drive(harness.targets[name], load, pids, harness.infra_groups(name))
            metrics = measure(run)
            if metrics_url:
                metrics |= stages.round_means(before, await stages.scrape(metrics_url))
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


async def vectorize(
    harness: Harness, router_key: str, plan: Plan, progress: Progress, profiler: Profiler | None = None
) -> dict[str, Any]:
    """200 closed-loop clients, one text per request, against a router that charges a fixed latency per call.

    Each round starts a fresh `hfbus run --tags vectorize` consumer per mode (batching on and off, the order
    alternating by round), measures requests/s over a fixed window, counts the feature-extraction calls of
    router `router_key` (a `bench.router` with `--embed-latency`) over the run, and then asks the vectors of
    `vec_sample_texts` texts through the hfbus client; every run must return exactly the same vectors.
    With a profiler for `hfbus-core`, each mode then gets one more, unscored run with py-spy attached.
    Returns `{"rounds": {mode: [metrics per round]}, "vectors": the same-vectors check}`.
    """
    texts = [f"vectorize bench text {i}: NATS subjects meet HuggingFace providers" for i in range(1000)]
    sample = [f"same-vectors sample {i}" for i in range(plan.vec_sample_texts)]
    load = Load(
        clients=plan.vec_clients,
        max_tokens=1,
        duration_s=plan.vec_warmup_s + plan.vec_s,
        max_requests=1_000_000,
        warmup_s=plan.vec_warmup_s,
        drain_s=15.0,
    )
    warm = Load(clients=plan.vec_clients, max_tokens=1, duration_s=10.0, max_requests=3 * plan.vec_clients)
    rounds: dict[str, list[Metrics]] = {mode: [] for mode in VECTORIZE_MODES}
    seen: dict[str, list[float]] = {}  # each sample text's vector from the first run; every other run must equal it
    mismatches: list[str] = []
    checked_runs = 0
    router = harness.router_urls[router_key]
    for index in range(plan.vec_rounds):
        for mode in _rotate(list(VECTORIZE_MODES), index):
            name = f"vectorize-{mode.split()[-1]}"
            target = await harness.start_vectorize(name, router, plan.vec_concurrency, VECTORIZE_MODES[mode], texts)
            try:
                pid = harness.consumers[name][0].pid
                # Opens the consumer's upstream connections (up to one per client with batching off).
                await drive(target, warm, [])
                await quiesce(harness.all_pids())
                groups = {
                    "router": [harness.routers[router_key].pid],
                    "nats": [harness.servers["vectorize"].process.pid],
                }
                calls_before = await harness.embed_calls(router_key)
                run = await drive(target, load, [pid], groups)
                calls = await harness.embed_calls(router_key) - calls_before
                metrics = _vectorize_metrics(run, calls)
                vectors, check_calls = await _sample_vectors(harness, router_key, sample)
            finally:
                harness.stop_consumer(name)
            checked_runs += 1
            for text, got in zip(sample, vectors, strict=True):
                expected = seen.setdefault(text, got)
                if got != expected:
                    mismatches.append(f"{mode}, round {index + 1}: {text!r}")
            metrics["sample_upstream_calls"] = float(check_calls)
            rounds[mode].append(metrics)
            kinds = Counter(run.errors).most_common(2)
            errors = f" (errors: {'; '.join(f'{n}x {e}' for e, n in kinds)})" if kinds else ""
            progress(
                f"vectorize round {index + 1}/{plan.vec_rounds} {mode}: "
                f"requests/s={metrics['requests_per_s']:.4g}, upstream calls={calls}, "
                f"texts/call={metrics['texts_per_call']:.3g}, p50={metrics['latency_p50_ms']:.3g} ms, "
                f"sample: {len(sample)} texts in {check_calls} calls{errors}"
            )
    for mode in VECTORIZE_MODES:
        if profiler is None or "hfbus-core" not in profiler.systems:
            break
        name = f"vectorize-{mode.split()[-1]}"
        target = await harness.start_vectorize(name, router, plan.vec_concurrency, VECTORIZE_MODES[mode], texts)
        try:
            pids = [c.pid for c in harness.consumers[name]]
            await drive(target, warm, [])
            await quiesce(harness.all_pids())
            system = f"hfbus-core-batching-{mode.split()[-1]}"
            recordings = profiler.begin("vectorize", system, pids)
            await asyncio.sleep(0.5)  # let py-spy attach before the load starts
            await drive(target, load, pids)
            summary = profiler.end("vectorize", system, recordings)
        finally:
            harness.stop_consumer(name)
        progress(f"vectorize {mode}: profiled, {summary['samples']} busy samples (summary at the end)")
    check = {
        "texts": len(sample),
        "runs": checked_runs,
        "mismatches": len(mismatches),
        "examples": mismatches[:5],
    }
    return {"rounds": rounds, "vectors": check}


def _vectorize_metrics(run: Run, upstream_calls: int) -> Metrics:
    a, b = run.window[0].at, run.window[1].at
    done = [s for s in run.ok if a <= s.ended < b]
    seconds = run.window_s
    latencies = [s.ended - s.started for s in run.started_in_window() if s.error is None]
    cpu = run.cpu_in_window("consumer")
    return {
        "requests_per_s": len(done) / seconds if seconds > 0 else math.nan,
        "latency_p50_ms": _ms(percentile(latencies, 0.5)),
        "latency_p99_ms": _ms(percentile(latencies, 0.99)),
        "upstream_calls": float(upstream_calls),
        "texts_per_call": len(run.ok) / upstream_calls if upstream_calls else math.nan,
        "cpu_us_per_request": cpu / len(done) * 1e6 if done else math.nan,
        "requests": float(len(run.samples)),
        "errors": float(len(run.errors)),
    } | _cores(run)


async def _sample_vectors(harness: Harness, router_key: str, texts: list[str]) -> tuple[list[list[float]], int]:
    """Each text's vector through the hfbus client, all sent at once; and the upstream calls they took."""
    bus = HfBus(harness.connections["vectorize"], Subjects(), "core")
    before = await harness.embed_calls(router_key)
    results = await asyncio.wait_for(
        asyncio.gather(*(bus.embed(text, model=EMBED_MODEL).result() for text in texts)), 30.0
    )
    calls = await harness.embed_calls(router_key) - before
    for text, result in zip(texts, results, strict=True):
        if len(result.vectors) != 1:
            raise RuntimeError(f"vectorize {text!r}: {len(result.vectors)} vectors for one text")
    return [result.vectors[0] for result in results], calls
