"""The gateway (issue 13) and resumable streams (issue 15), each against hfbus alone in the same rounds.

`gateway-core` / `gateway-durable` are `hfbus gateway` in front of one `hfbus run` process, read as SSE; their
CPU per token is gateway + consumer, beside `hfbus-core` / `hfbus-durable` read straight off the bus.
`hfbus-resumable` is `hfbus-durable` with every request `"resumable": true`. Issue 13 sets no figure for the
gateway, so its rows are measurements; issue 15's one target (resumable paced CPU per token at most 1.3 x plain
durable) is a target row.
"""

from __future__ import annotations

from typing import Any

from bench.report import Rounds, Summary, Target, diff, metric, paired, ratio

CORE, DURABLE, RESUMABLE = "hfbus-core", "hfbus-durable", "hfbus-resumable"
GATEWAYS = (("gateway-core", CORE), ("gateway-durable", DURABLE))


def targets(results: dict[str, Any]) -> list[Target]:
    p200: Rounds = results.get("paced200", {})
    if RESUMABLE not in p200 or DURABLE not in p200:
        return []
    measured = paired(p200, RESUMABLE, DURABLE, "cpu_us_per_token", ratio)
    cpu = [metric(p200, system, "cpu_us_per_token").fmt() for system in (RESUMABLE, DURABLE)]
    note = f"{cpu[0]} vs {cpu[1]} us"
    return [Target("200 paced: CPU per token, resumable / durable", measured, "<=", 1.3, "x", note)]


def rows(results: dict[str, Any]) -> list[tuple[str, Summary, str]]:
    """Same-round figures of the gateway over the bus alone, and of resumable over plain durable."""
    seq: Rounds = results.get("sequential", {})
    burst: Rounds = results.get("burst", {})
    p200: Rounds = results.get("paced200", {})
    out: list[tuple[str, Summary, str]] = []

    def add(rounds: Rounds, a: str, b: str, key: str, label: str, unit: str) -> None:
        if a in rounds and b in rounds:
            op = diff if unit == "ms" else ratio
            out.append((label, paired(rounds, a, b, key, op), unit))

    def own(rounds: Rounds, gateway: str, label: str) -> None:
        if gateway in rounds:
            out.append((label, metric(rounds, gateway, "gateway_cpu_us_per_token"), "us"))

    for gateway, bus in GATEWAYS:
        mode = bus.removeprefix("hfbus-")
        add(seq, gateway, bus, "ttft_p50_ms", f"sequential: TTFT p50 added by the gateway over hfbus {mode}", "ms")
        add(burst, gateway, bus, "tokens_per_s", f"50 clients: tokens/s, gateway / hfbus {mode}", "x")
        add(burst, gateway, bus, "cpu_us_per_token", f"50 clients: CPU per token, gateway+consumer / {mode}", "x")
        own(burst, gateway, f"50 clients: the gateway's own CPU per token ({mode})")
        add(p200, gateway, bus, "ttft_p50_ms", f"200 paced: TTFT p50 added by the gateway over hfbus {mode}", "ms")
        add(p200, gateway, bus, "tokens_per_s_per_stream", f"200 paced: tokens/s per stream, gateway / {mode}", "x")
        add(p200, gateway, bus, "cpu_us_per_token", f"200 paced: CPU per token, gateway+consumer / {mode}", "x")
        own(p200, gateway, f"200 paced: the gateway's own CPU per token ({mode})")
    add(seq, RESUMABLE, DURABLE, "ttft_p50_ms", "sequential: TTFT p50, resumable minus durable", "ms")
    add(burst, RESUMABLE, DURABLE, "tokens_per_s", "50 clients: tokens/s, resumable / durable", "x")
    add(burst, RESUMABLE, DURABLE, "cpu_us_per_token", "50 clients: CPU per token, resumable / durable", "x")
    nats = "nats_cpu_us_per_token"
    add(burst, RESUMABLE, DURABLE, nats, "50 clients: nats-server CPU per token, resumable / durable", "x")
    add(p200, RESUMABLE, DURABLE, "ttft_p50_ms", "200 paced: TTFT p50, resumable minus durable", "ms")
    add(p200, RESUMABLE, DURABLE, nats, "200 paced: nats-server CPU per token, resumable / durable", "x")
    return out
