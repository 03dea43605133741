"""`stallfree`: how many streams a system carries without a stall, as LLM gateway benchmarks count it.

N streams of 64 tokens, the router pacing them 20 ms apart, all started at once. A stream holds when its first
output arrives within 150 ms of its request and no gap between two of its outputs exceeds 40 ms (twice the pace);
a system's capacity is the largest N at which at least 99 % of the streams hold. Each round goes up the levels
with every system at each level (in a rotating order), and a system that missed a level sits out the higher
ones of that round: a system that stalls at N is not expected to hold at 2N, and each extra level costs seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bench.drive import Load, drive, percentile, quiesce
from bench.report import Rounds, Target, metric, paired, ratio, table
from bench.systems import Harness

PACE_S = 0.02
TOKENS = 64
FIRST_WITHIN_S = 0.150
GAP_WITHIN_S = 0.040
HOLD_SHARE = 0.99
LEVELS = (50, 100, 200, 400, 800)
QUICK_LEVELS = (50, 100, 200, 400)


def holds(sample: Any) -> bool:
    return bool(
        sample.error is None and sample.first > 0 and sample.ttft <= FIRST_WITHIN_S and sample.max_gap <= GAP_WITHIN_S
    )


async def stallfree(
    harness: Harness, systems: Sequence[str], levels: Sequence[int], rounds: int, progress: Callable[[str], None]
) -> Rounds:
    """Per system, per round: `capacity` and, per level tried, `held_<N>` (share of streams that held), plus
    the worst first-output time and gap at each level, to tell a slow start from a stall in mid-stream."""
    out: Rounds = {name: [] for name in systems}
    stream_s = TOKENS * PACE_S
    for index in range(rounds):
        figures: dict[str, dict[str, float]] = {name: {"capacity": 0.0} for name in systems}
        failed: set[str] = set()
        for level in levels:
            turn = [n for n in systems if n not in failed]
            shift = index % len(turn) if turn else 0
            for name in [*turn[shift:], *turn[:shift]]:
                await quiesce(harness.all_pids())
                pids = [c.pid for c in harness.consumers[name]]
                load = Load(clients=level, max_tokens=TOKENS, duration_s=stream_s, max_requests=level, drain_s=20.0)
                run = await drive(harness.targets[name], load, pids, harness.infra_groups(name))
                held = sum(1 for s in run.samples if holds(s)) / level
                ok = [s for s in run.samples if s.error is None and s.first > 0]
                entry = figures[name]
                entry[f"held_{level}"] = held
                entry[f"ttft_p99_ms_{level}"] = percentile([s.ttft for s in ok], 0.99) * 1e3
                entry[f"gap_p99_ms_{level}"] = percentile([s.max_gap for s in ok], 0.99) * 1e3
                if held >= HOLD_SHARE:
                    entry["capacity"] = float(level)
                else:
                    failed.add(name)
                progress(
                    f"stallfree round {index + 1}/{rounds} N={level} {name}: {held:.1%} held, "
                    f"first output p99 {entry[f'ttft_p99_ms_{level}']:.0f} ms, "
                    f"worst gap p99 {entry[f'gap_p99_ms_{level}']:.0f} ms, errors {len(run.errors)}"
                )
        for name in systems:
            out[name].append(figures[name])
    return out


def render(rounds: Rounds, levels: Sequence[int]) -> str:
    headers = ["capacity", *(f"held @{n}" for n in levels)]
    rows = []
    for system, per_round in rounds.items():
        cells = [metric(rounds, system, "capacity").fmt()]
        for level in levels:
            shares = [r[f"held_{level}"] for r in per_round if f"held_{level}" in r]
            cells.append(" / ".join(f"{s:.0%}" for s in shares) if shares else "-")
        rows.append((system, cells))
    title = (
        f"stall-free streams ({TOKENS} tok, {PACE_S * 1e3:g} ms apart; first within {FIRST_WITHIN_S * 1e3:g} ms, "
        f"no gap over {GAP_WITHIN_S * 1e3:g} ms; capacity: largest N with >= {HOLD_SHARE:.0%} holding)"
    )
    return table(title, rows, headers)


def targets(rounds: Rounds) -> list[Target]:
    """Issue 18's stall-free rows, each a capacity ratio paired within a round."""
    out: list[Target] = []
    core, durable = "hfbus-core", "hfbus-durable"
    for a, b, threshold in ((core, "lean", 1.0), (durable, "lean", 0.8), (core, "direct", 0.5)):
        if a in rounds and b in rounds:
            # `paired` leaves out a round where the yardstick held at no level: there is nothing to compare.
            measured = paired(rounds, a, b, "capacity", ratio)
            out.append(Target(f"stall-free capacity, {a} / {b}", measured, ">=", threshold, "x"))
    return out
