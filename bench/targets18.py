"""Issue 18's targets, each a ratio or difference against the hand-rolled consumer (`lean`) in the same rounds.

Issue 5's rows (absolute thresholds, comparisons with direct calls) stay in `bench.report`; the stall-free rows
are `bench.stallfree`'s. Rows whose systems were not run are left out.
"""

from __future__ import annotations

import math
from typing import Any

from bench.report import Rounds, Summary, Target, diff, paired, ratio, summarize
from bench.scenarios import EMBED_LATENCY_S, VECTORIZE_MODES, Plan

CORE, DURABLE, LEAN = "hfbus-core", "hfbus-durable", "lean"


def targets(results: dict[str, Any]) -> list[Target]:
    out: list[Target] = []
    seq: Rounds = results.get("sequential", {})
    burst: Rounds = results.get("burst", {})
    p200: Rounds = results.get("paced200", {})
    p1000: Rounds = results.get("paced1000", {})

    def vs_lean(rounds: Rounds, system: str, key: str, label: str, threshold: float, note: str = "") -> None:
        if system in rounds and LEAN in rounds:
            measured = paired(rounds, system, LEAN, key, ratio)
            out.append(Target(f"{label}, {system.removeprefix('hfbus-')} / lean", measured, "<=", threshold, "x", note))

    per_router = _per_router_cpu(p200)

    def per_router_note(system: str) -> str:
        if system not in per_router or LEAN not in per_router:
            return ""
        return f"per router CPU: {paired(per_router, system, LEAN, 'consumer_per_router', ratio).fmt()}x"

    if DURABLE in burst and LEAN in burst:
        measured = paired(burst, DURABLE, LEAN, "tokens_per_s", ratio)
        out.append(Target("tokens/s @50, durable / lean", measured, ">=", 1.5, "x"))
    vs_lean(p200, CORE, "cpu_us_per_token", "200 paced: CPU per token", 0.8, per_router_note(CORE))
    vs_lean(p200, DURABLE, "cpu_us_per_token", "200 paced: CPU per token", 0.9, per_router_note(DURABLE))
    vs_lean(p200, CORE, "ttft_p50_ms", "200 paced: TTFT p50", 1.0)
    vs_lean(p200, DURABLE, "ttft_p50_ms", "200 paced: TTFT p50", 1.5)
    vs_lean(p1000, CORE, "ttft_p50_ms", "1,000 paced: TTFT p50", 1.5)
    if CORE in p1000:
        errors = summarize([sum(r.get("errors", 0.0) for r in p1000[CORE])])
        out.append(Target("1,000 paced: errors, core", errors, "<=", 0, ""))
    if CORE in seq and LEAN in seq:
        # Added over direct, core minus lean's: the direct time cancels, so it is core's TTFT minus lean's.
        measured = paired(seq, CORE, LEAN, "ttft_p50_ms", diff)
        out.append(Target("sequential TTFT added: core minus lean's", measured, "<=", 0.0, "ms"))
    if CORE in seq and DURABLE in seq:
        measured = paired(seq, DURABLE, CORE, "ttft_p50_ms", diff)
        out.append(Target("sequential TTFT: durable minus core", measured, "<=", 0.5, "ms"))
    vec: dict[str, Any] = results.get("vectorize", {})
    vec_rounds: Rounds = vec.get("rounds", {})
    if "batching on" in vec_rounds and "batching off" in vec_rounds:
        measured = paired(vec_rounds, "batching on", "batching off", "requests_per_s", ratio)
        ceiling = vectorize_ceiling(vec_rounds["batching on"], vec_rounds["batching off"])
        note = f"ceiling {ceiling.fmt()}x (one core's worth of batching on, clients / (call + window))"
        out.append(Target("vectorize @200: batching on / off (issue 18)", measured, ">=", 3.0, "x", note))
    return out


def _per_router_cpu(rounds: Rounds) -> Rounds:
    """Each round's consumer CPU over the router's in the same window: both handled the same tokens, and the router
    does the same work per token whichever system reads it, so the ratio is CPU per token with the machine's speed
    at that moment taken out (on this machine one system's CPU per token moves by 30 % between rounds)."""

    def one(r: dict[str, float]) -> float:
        consumer, router = r.get("consumer_cores"), r.get("router_cores")
        return consumer / router if isinstance(consumer, float) and isinstance(router, float) and router else math.nan

    return {system: [{"consumer_per_router": one(r)} for r in rs] for system, rs in rounds.items()}


def vectorize_ceiling(batching_on: list[dict[str, float]], batching_off: list[dict[str, float]]) -> Summary:
    """The most batching on / off could reach in each round, whatever the batcher did better.

    Batching on cannot pass one core's worth of its own consumer CPU per request (one process, one event loop),
    nor clients / (upstream call + batch window): closed-loop clients each wait at least that long. The lower of
    the two, over what batching off reached in the same round.
    """
    wait_s = float(VECTORIZE_MODES["batching on"]["HFBUS_EMBED_BATCH_WAIT"])
    waiting_bound = Plan.vec_clients / (EMBED_LATENCY_S + wait_s)
    ceilings = []
    for on, off in zip(batching_on, batching_off, strict=False):
        cpu_bound = 1e6 / on["cpu_us_per_request"] if on.get("cpu_us_per_request") else math.inf
        if off.get("requests_per_s"):
            ceilings.append(min(waiting_bound, cpu_bound) / off["requests_per_s"])
    return summarize(ceilings)
