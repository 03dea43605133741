"""Medians with min/max, the tables, and issue 5's targets as same-run ratios (PASS / MISS)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Rounds = dict[str, list[dict[str, float]]]


@dataclass(frozen=True)
class Summary:
    median: float
    low: float
    high: float
    n: int

    def fmt(self, digits: int = 3) -> str:
        if math.isnan(self.median):
            return "n/a"
        if self.n == 1 or self.low == self.high:
            return _num(self.median, digits)
        return f"{_num(self.median, digits)} [{_num(self.low, digits)}-{_num(self.high, digits)}]"

    def as_json(self) -> dict[str, Any]:
        return {"median": _clean(self.median), "min": _clean(self.low), "max": _clean(self.high), "n": self.n}


def _num(value: float, digits: int) -> str:
    if math.isnan(value):
        return "n/a"
    if value == int(value) and abs(value) < 10_000:
        return str(int(value))
    if abs(value) >= 10_000:
        return f"{value / 1000:.{max(digits - 2, 0)}f}k" if abs(value) < 1e6 else f"{value / 1e6:.2f}M"
    if abs(value) >= 1000:
        return f"{value:.0f}"
    return f"{value:.{digits}g}" if abs(value) >= 1 else f"{value:.{digits}f}"


def _clean(value: Any) -> Any:
    """NaN is not JSON: write null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


clean = _clean


def summarize(values: Sequence[float]) -> Summary:
    real = [v for v in values if not math.isnan(v)]
    if not real:
        return Summary(math.nan, math.nan, math.nan, 0)
    return Summary(statistics.median(real), min(real), max(real), len(real))


def metric(rounds: Rounds, system: str, key: str) -> Summary:
    return summarize([r.get(key, math.nan) for r in rounds.get(system, [])])


def paired(rounds: Rounds, a: str, b: str, key: str, op: Callable[[float, float], float]) -> Summary:
    """`op(a, b)` round by round (both measured in the same round), then median/min/max."""
    values = []
    for ra, rb in zip(rounds.get(a, []), rounds.get(b, []), strict=False):
        x, y = ra.get(key, math.nan), rb.get(key, math.nan)
        values.append(op(x, y) if not (math.isnan(x) or math.isnan(y)) and y != 0 else math.nan)
    return summarize(values)


def ratio(x: float, y: float) -> float:
    return x / y


def diff(x: float, y: float) -> float:
    return x - y


def table(title: str, rows: Sequence[tuple[str, Sequence[str]]], headers: Sequence[str]) -> str:
    """A plain text table; the first column is the row name."""
    all_rows = [(title, list(headers)), *[(name, list(cells)) for name, cells in rows]]
    widths = [max(len(r[0]) for r in all_rows)]
    for col in range(len(headers)):
        widths.append(max(len(r[1][col]) for r in all_rows))
    lines = []
    for index, (name, cells) in enumerate(all_rows):
        parts = [name.ljust(widths[0])] + [c.rjust(w) for c, w in zip(cells, widths[1:], strict=True)]
        lines.append("  ".join(parts))
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def scenario_table(title: str, rounds: Rounds, columns: Sequence[tuple[str, str, int]]) -> str:
    """Rows: systems; columns: (header, metric key, digits), each `median [min-max]` over rounds."""
    rows = [(system, [metric(rounds, system, key).fmt(digits) for _, key, digits in columns]) for system in rounds]
    return table(title, rows, [header for header, _, _ in columns])


@dataclass(frozen=True)
class Target:
    name: str
    measured: Summary
    op: str
    """`>=` or `<=`, applied to the median."""
    threshold: float
    unit: str
    note: str = ""
    every_round: bool = False
    """Judge the worst round (min for `>=`, max for `<=`) instead of the median."""

    @property
    def status(self) -> str:
        if math.isnan(self.measured.median):
            return "N/A"
        if self.op == ">=":
            ok = (self.measured.low if self.every_round else self.measured.median) >= self.threshold
        else:
            ok = (self.measured.high if self.every_round else self.measured.median) <= self.threshold
        return "PASS" if ok else "MISS"

    def as_json(self) -> dict[str, Any]:
        return {
            "target": self.name,
            "measured": self.measured.as_json(),
            "op": self.op,
            "threshold": self.threshold,
            "unit": self.unit,
            "status": self.status,
            "note": self.note,
        }


def targets(results: dict[str, Any]) -> list[Target]:
    """Issue 5's targets, each from values measured in the same run (round-paired where it compares)."""
    out: list[Target] = []
    seq: Rounds = results.get("sequential", {})
    burst: Rounds = results.get("burst", {})
    p200: Rounds = results.get("paced200", {})
    p1000: Rounds = results.get("paced1000", {})
    mem: dict[str, Any] = results.get("memory", {})
    core = "hfbus-core"
    if core in burst and "lean" in burst:
        out.append(
            Target(
                "tokens/s @50, hfbus core / hand-rolled",
                paired(burst, core, "lean", "tokens_per_s", ratio),
                ">=",
                1.0,
                "x",
            )
        )
    if core in burst and "hfbus-durable" in burst:
        out.append(
            Target(
                "tokens/s @50, durable / core, every round",
                paired(burst, "hfbus-durable", core, "tokens_per_s", ratio),
                ">=",
                0.8,
                "x",
                "the worst round decides",
                every_round=True,
            )
        )
    if core in burst and "faststream" in burst:
        out.append(
            Target(
                "tokens/s @50, hfbus core / FastStream+hf_hub",
                paired(burst, core, "faststream", "tokens_per_s", ratio),
                ">=",
                16.0,
                "x",
            )
        )
    if core in burst:
        out.append(Target("consumer CPU per token, burst", metric(burst, core, "cpu_us_per_token"), "<=", 7.0, "us"))
    if core in p200:
        out.append(
            Target("consumer CPU per token, paced 100 tok/s", metric(p200, core, "cpu_us_per_token"), "<=", 22.0, "us")
        )
    if core in seq and "direct" in seq:
        out.append(
            Target(
                "TTFT p50 added over direct (sequential)",
                paired(seq, core, "direct", "ttft_p50_ms", diff),
                "<=",
                0.5,
                "ms",
            )
        )
    if core in p200 and "direct" in p200:
        out.append(
            Target(
                "200 paced streams: TTFT p50 / direct",
                paired(p200, core, "direct", "ttft_p50_ms", ratio),
                "<=",
                1.2,
                "x",
            )
        )
    if core in p1000:
        errors = summarize([sum(r.get("errors", 0.0) for r in p1000[core])])
        p99 = metric(p1000, core, "ttft_p99_ms").fmt()
        out.append(Target("1,000 paced streams in one process: errors", errors, "<=", 0, "", f"TTFT p99 {p99} ms"))
    for system in (core, "hfbus-durable"):
        if system in mem:
            growth = mem[system].get("growth_mib_per_1000", math.nan)
            out.append(Target(f"memory growth per 1,000 requests ({system})", summarize([growth]), "<=", 1.0, "MiB"))
    if core in seq and "hfbus-durable" in seq:
        out.append(
            Target(
                "TTFT p50 durable minus core (sequential)",
                paired(seq, "hfbus-durable", core, "ttft_p50_ms", diff),
                "<=",
                1.0,
                "ms",
            )
        )
    vec: dict[str, Any] = results.get("vectorize", {})
    vec_rounds: Rounds = vec.get("rounds", {})
    if "batching on" in vec_rounds and "batching off" in vec_rounds:
        check = vec.get("vectors", {})
        calls = " / ".join(
            f"{metric(vec_rounds, mode, 'texts_per_call').fmt()} texts per call {mode.split()[-1]}"
            for mode in ("batching on", "batching off")
        )
        out.append(
            Target(
                "vectorize @200: requests/s batching on / off",
                paired(vec_rounds, "batching on", "batching off", "requests_per_s", ratio),
                ">=",
                5.0,
                "x",
                calls,
            )
        )
        out.append(
            Target(
                "vectorize: sample vectors differing between runs",
                summarize([float(check.get("mismatches", math.nan))]),
                "<=",
                0,
                "",
                f"{check.get('texts', 0)} texts x {check.get('runs', 0)} runs (on and off), exact equality",
            )
        )
    return out


def targets_table(items: Sequence[Target]) -> str:
    rows = []
    for t in items:
        measured = f"{t.measured.fmt()} {t.unit}".strip()
        rows.append((t.name, [measured, f"{t.op} {_num(t.threshold, 3)} {t.unit}".strip(), t.status, t.note]))
    return table("target (issues 5, 15, 18)", rows, ["measured: median [min-max]", "target", "result", "note"])


def comparisons(results: dict[str, Any]) -> list[tuple[str, Summary, str]]:
    """Same-run ratios without a target, for context (and to check the bench against the issue's table)."""
    out: list[tuple[str, Summary, str]] = []
    seq: Rounds = results.get("sequential", {})
    burst: Rounds = results.get("burst", {})
    p200: Rounds = results.get("paced200", {})
    for system in ("hfbus-durable", "lean", "faststream"):
        if system in seq and "direct" in seq:
            out.append(
                (f"TTFT p50 added over direct: {system}", paired(seq, system, "direct", "ttft_p50_ms", diff), "ms")
            )
    for a, b in (
        ("hfbus-durable", "lean"),
        ("lean", "faststream"),
        ("direct", "hfbus-core"),
        ("hfbus-core-x2", "hfbus-core"),
        ("hfbus-core-b", "hfbus-core"),
        ("hfbus-durable-b", "hfbus-durable"),
    ):
        if a in burst and b in burst:
            out.append((f"tokens/s @50: {a} / {b}", paired(burst, a, b, "tokens_per_s", ratio), "x"))
    for a, b in (("hfbus-core-b", "hfbus-core"), ("hfbus-durable-b", "hfbus-durable")):
        for key, rounds in (("sequential", seq), ("paced200", p200), ("paced1000", results.get("paced1000", {}))):
            if a in rounds and b in rounds:
                out.append((f"{key}: TTFT p50 {a} / {b}", paired(rounds, a, b, "ttft_p50_ms", ratio), "x"))
    for system in ("lean", "faststream", "hfbus-durable"):
        if system in p200 and "direct" in p200:
            out.append(
                (f"200 paced: TTFT p50 {system} / direct", paired(p200, system, "direct", "ttft_p50_ms", ratio), "x")
            )
    return out


def comparisons_table(items: Sequence[tuple[str, Summary, str]], title: str = "same-run comparison") -> str:
    return table(title, [(name, [f"{s.fmt()} {unit}"]) for name, s, unit in items], ["median [min-max]"])


def _rounds_of(results: dict[str, Any], scenario: str) -> Rounds:
    """A scenario's rounds; vectorize keeps them beside its same-vectors check."""
    found: dict[str, Any] = results.get(scenario, {})
    rounds: Rounds = found.get("rounds", {}) if scenario == "vectorize" else found
    return rounds


def summary_json(results: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for scenario in ("sequential", "burst", "paced200", "paced1000", "vectorize"):
        rounds: Rounds = _rounds_of(results, scenario)
        out[scenario] = {
            system: {
                key: metric(rounds, system, key).as_json() for key in (rounds[system][0] if rounds[system] else {})
            }
            for system in rounds
        }
    return out


def background_load(results: dict[str, Any]) -> float:
    """Median `other_cores` over every measured round: how busy the machine was with work not ours."""
    values = [
        r["other_cores"]
        for scenario in ("sequential", "burst", "paced200", "paced1000", "vectorize")
        for rounds in _rounds_of(results, scenario).values()
        for r in rounds
        if not math.isnan(r.get("other_cores", math.nan))
    ]
    return statistics.median(values) if values else 0.0
