"""`python -m bench`: start everything, run the scenarios interleaved, print the tables, write the JSON."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from bench import paths, report, scenarios, stages, stallfree, targets18
from bench.anchor_runner import anchors_dir
from bench.deps import ensure_baseline_deps
from bench.profile import Profiler, ensure_py_spy, render
from bench.scenarios import EMBED_LATENCY_S, PACE_S, Plan
from bench.systems import B_COMMAND, REPO, SYSTEMS, Harness

SCENARIOS = ("sequential", "burst", "scale", "memory", "paced200", "paced1000", "stallfree", "vectorize")
ZERO_DELAY = ("sequential", "burst", "scale", "memory")
DEFAULT_SYSTEMS = (
    "direct",
    "hfbus-core",
    "hfbus-durable",
    "hfbus-resumable",
    "gateway-core",
    "gateway-durable",
    "lean",
    "faststream",
)
EXTRA_PATHS = ("hfbus-resumable", "gateway-core", "gateway-durable")
"""Measured against hfbus alone in sequential, burst and paced200 only (issues 13 and 15), not in the
scenarios that compare consumers with each other (memory, 1,000 paced streams, stall-free)."""
RESULTS = REPO / "bench" / "results"


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="hfbus beside the hand-rolled consumer, FastStream + huggingface_hub and direct aiohttp.",
        epilog=(
            "environment: BENCH_HFBUS_COMMAND replaces the `hfbus` command line; BENCH_HFBUS_B_COMMAND adds "
            "system hfbus-core-b (another build, measured in the same rounds as hfbus-core: an A/B run); "
            "BENCH_ANCHORS_DIR locates lean_consumer.py (default /work/shared/anchors)."
        ),
    )
    parser.add_argument("--quick", action="store_true", help="about 2 minutes: fewer rounds, shorter runs")
    parser.add_argument("--only", help=f"comma-separated scenarios: {', '.join(SCENARIOS)}")
    parser.add_argument("--systems", help=f"comma-separated systems: {', '.join(SYSTEMS)}")
    parser.add_argument("--rounds", type=int, help="rounds per scenario (default 5, quick 2)")
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    parser.add_argument(
        "--profile",
        help="comma-separated systems to profile with py-spy in one extra, unscored round per scenario",
    )
    args = parser.parse_args(argv)
    args.scenarios = _pick(args.only, SCENARIOS, "scenario", parser)
    args.system_names = _pick(args.systems, tuple(SYSTEMS), "system", parser) if args.systems else None
    args.profile_names = _pick(args.profile, tuple(SYSTEMS), "system", parser) if args.profile else []
    return args


def _pick(raw: str | None, known: Sequence[str], what: str, parser: argparse.ArgumentParser) -> list[str]:
    if not raw:
        return list(known)
    names = [n.strip() for n in raw.split(",") if n.strip()]
    for name in names:
        if name not in known:
            parser.error(f"unknown {what} {name!r}; known: {', '.join(known)}")
    return names


class _Clock:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, line: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {line}", flush=True)


def _systems_for(scenario: str, chosen: list[str]) -> list[str]:
    base = [s for s in chosen if s != "hfbus-core-x2"]
    if scenario == "scale":
        return [s for s in ("hfbus-core", "hfbus-core-x2") if s in chosen or s == "hfbus-core"]
    if scenario in ("memory", "paced1000", "stallfree"):
        base = [s for s in base if s not in EXTRA_PATHS]
    if scenario == "memory":
        return [s for s in base if s != "direct"]
    return base


async def _start_all(
    harness: Harness, names: list[str], router: str, concurrency: int, unavailable: dict[str, str], log: _Clock
) -> None:
    for name in names:
        if name in unavailable:
            continue
        try:
            await harness.start_consumers(SYSTEMS[name], router, concurrency)
        except Exception as exc:  # one broken system must not cost the other rows
            unavailable[name] = f"did not start: {str(exc).splitlines()[0]}"
            log(f"{name} unavailable: {exc}")
            for child in harness.consumers.pop(name, []):
                child.stop()
            harness.targets.pop(name, None)


async def _run(
    harness: Harness,
    plan: Plan,
    chosen_scenarios: list[str],
    systems: list[str],
    unavailable: dict[str, str],
    profiler: Profiler | None,
) -> dict[str, Any]:
    log = _Clock()
    results: dict[str, Any] = {}
    # Ctrl-C / SIGTERM cancel the whole run at its current await; a KeyboardInterrupt raised inside a protocol
    # callback instead could be swallowed by a library as one failed request, and the run would go on.
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    assert main_task is not None
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, main_task.cancel)

    def live(names: list[str]) -> list[str]:
        return [n for n in names if n not in unavailable and n in harness.targets]

    zero = [s for s in chosen_scenarios if s in ZERO_DELAY]
    if zero:
        router = harness.start_router("zero", 0.0)
        needed = sorted({n for s in zero for n in _systems_for(s, systems)}, key=list(SYSTEMS).index)
        log(f"zero-delay phase: router {router}; starting {', '.join(needed)}")
        await _start_all(harness, needed, router, plan.zero_concurrency, unavailable, log)
        if "sequential" in zero:
            results["sequential"] = await scenarios.sequential(
                harness, live(_systems_for("sequential", systems)), plan, log, profiler
            )
        if "burst" in zero or "scale" in zero:
            names = _systems_for("burst", systems) if "burst" in zero else []
            if "scale" in zero:
                names += [n for n in _systems_for("scale", systems) if n not in names]
            results["burst"] = await scenarios.burst(harness, live(names), plan, log, profiler)
        if "memory" in zero:
            results["memory"] = await scenarios.memory(
                harness, live(_systems_for("memory", systems)), plan, log, {"faststream": plan.mem_total_baseline}
            )
        harness.stop_consumers()
        harness.stop_router("zero")

    paced = [s for s in chosen_scenarios if s in ("paced200", "paced1000")]
    if paced:
        router = harness.start_router("paced", PACE_S)
        needed = _systems_for("paced200", systems)
        log(f"paced phase: router {router} ({1 / PACE_S:g} tok/s per stream); starting {', '.join(needed)}")
        await _start_all(harness, needed, router, plan.paced_concurrency, unavailable, log)
        if "paced200" in paced:
            results["paced200"] = await scenarios.paced(
                harness,
                live(needed),
                plan,
                log,
                streams=200,
                seconds=plan.paced_s,
                rounds=plan.paced_rounds,
                profiler=profiler,
            )
        if "paced1000" in paced:
            # FastStream + huggingface_hub is already saturated at 200 streams; at 1,000 one round would take
            # minutes and measure only its queue, so this scenario is for the consumers that keep up.
            names = [n for n in live(needed) if n != "faststream" and n not in EXTRA_PATHS]
            results["paced1000"] = await scenarios.paced(
                harness,
                names,
                plan,
                log,
                streams=1000,
                seconds=plan.paced1000_s,
                rounds=plan.paced1000_rounds,
                profiler=profiler,
            )
        harness.stop_consumers()
        harness.stop_router("paced")
    if "stallfree" in chosen_scenarios:
        # FastStream + huggingface_hub stalls beyond a handful of streams; the issue compares the other four.
        needed = [n for n in _systems_for("stallfree", systems) if n != "faststream"]
        router = harness.start_router("stallfree", stallfree.PACE_S)
        log(f"stall-free phase: router {router} ({stallfree.PACE_S * 1e3:g} ms a token); starting {', '.join(needed)}")
        await _start_all(harness, needed, router, plan.paced_concurrency, unavailable, log)
        results["stallfree"] = await stallfree.stallfree(
            harness, live(needed), plan.stall_levels, plan.stall_rounds, log
        )
        harness.stop_consumers()
        harness.stop_router("stallfree")
    if "vectorize" in chosen_scenarios:
        # One hfbus core consumer, batching on vs off: the scenario compares hfbus with itself, not the systems.
        if "hfbus-core" not in systems:
            log("vectorize skipped: it measures hfbus core, which --systems leaves out")
        else:
            router = harness.start_router("vectorize", 0.0, embed_latency_s=EMBED_LATENCY_S)
            log(f"vectorize phase: router {router} ({EMBED_LATENCY_S * 1e3:g} ms per feature-extraction call)")
            try:
                results["vectorize"] = await scenarios.vectorize(harness, "vectorize", plan, log, profiler)
            except Exception as exc:  # a broken vectorize consumer must not cost the rows already measured
                unavailable["vectorize"] = f"failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                log(f"vectorize failed: {exc}")
            harness.stop_router("vectorize")
    await harness.close_targets()
    return results


def _run_loop(coro: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


# CPU per token beside the consumer's: the nats-server's, and (gateway systems, whose `CPU us/token` is gateway +
# consumer) the gateway's share.
_PER_TOKEN = [("nats us/token", "nats_cpu_us_per_token", 3), ("gateway us/token", "gateway_cpu_us_per_token", 3)]

# Where the two cores went during each measuring window, process group by process group.
_CORES = [
    ("consumer cores", "consumer_cores", 2),
    ("consumer preempted", "consumer_preempted", 2),
    ("router cores", "router_cores", 2),
    ("nats cores", "nats_cores", 2),
    ("loader cores", "loader_cores", 2),
    ("other cores", "other_cores", 2),
]


def _print_report(
    results: dict[str, Any], unavailable: dict[str, str], profiler: Profiler | None, plan: Plan
) -> dict[str, Any]:
    sections: list[str] = []
    paced_tokens = plan.paced_tokens
    if "sequential" in results:
        cols = [("TTFT p50 ms", "ttft_p50_ms", 3), ("TTFT p99 ms", "ttft_p99_ms", 3)]
        cols += [
            ("answer p50 ms", "latency_p50_ms", 3),
            ("CPU us/request", "cpu_us_per_request", 3),
            ("msgs/req", "messages_per_request", 3),
            ("other cores", "other_cores", 2),
            ("errors", "errors", 3),
        ]
        sections.append(report.scenario_table(f"sequential ({plan.seq_tokens} tok)", results["sequential"], cols))
    if "burst" in results:
        cols = [("tokens/s", "tokens_per_s", 3), ("CPU us/token", "cpu_us_per_token", 3), *_PER_TOKEN, *_CORES]
        cols += [("msgs/req", "messages_per_request", 3), ("errors", "errors", 3)]
        title = f"{plan.burst_clients} clients, zero delay ({plan.burst_tokens} tok)"
        sections.append(report.scenario_table(title, results["burst"], cols))
    for key, title in (("paced200", "200 paced streams"), ("paced1000", "1,000 paced streams")):
        if key in results:
            cols = [("TTFT p50 ms", "ttft_p50_ms", 3), ("TTFT p99 ms", "ttft_p99_ms", 3)]
            cols += [("tok/s/stream", "tokens_per_s_per_stream", 3), ("CPU us/token", "cpu_us_per_token", 3)]
            cols += _PER_TOKEN
            cols += [*_CORES, ("errors", "errors", 3)]
            sections.append(report.scenario_table(f"{title} (100 tok/s, {paced_tokens} tok)", results[key], cols))
    if "memory" in results:
        rows = []
        for system, entry in results["memory"].items():
            if not entry["requests"]:
                continue
            last = f"{entry.get('rss_last_mib', float('nan')):.1f} @{entry['requests'][-1]}"
            cells = [f"{entry['rss_first_mib']:.1f} @{entry['requests'][0]}", last]
            cells += [
                f"{entry['growth_mib_per_1000']:.2f}",
                f"{entry.get('growth_endpoints_mib_per_1000', float('nan')):.2f}",
            ]
            cells += [str(entry["errors"])]
            rows.append((system, cells))
        headers = ["RSS MiB first", "RSS MiB last", "MiB/1k (slope)", "MiB/1k (ends)", "errors"]
        sections.append(report.table("consumer memory (RSS) by requests served", rows, headers))
    if "vectorize" in results:
        cols = [
            ("requests/s", "requests_per_s", 3),
            ("latency p50 ms", "latency_p50_ms", 3),
            ("latency p99 ms", "latency_p99_ms", 3),
            ("upstream calls/run", "upstream_calls", 3),
            ("texts/call", "texts_per_call", 3),
            ("CPU us/request", "cpu_us_per_request", 3),
            *_CORES,
            ("errors", "errors", 3),
        ]
        title = (
            f"vectorize: {plan.vec_clients} clients, one text each, {EMBED_LATENCY_S * 1e3:g} ms per upstream call "
            f"({plan.vec_s:g} s)"
        )
        sections.append(report.scenario_table(title, results["vectorize"]["rounds"], cols))
    if "stallfree" in results:
        sections.append(stallfree.render(results["stallfree"], plan.stall_levels))
    for key in ("sequential", "burst", "paced200", "paced1000"):
        if key in results and (stage_table := stages.render(key, results[key])) is not None:
            sections.append(stage_table)
    comparisons = report.comparisons(results)
    if comparisons:
        sections.append(report.comparisons_table(comparisons))
    path_rows = paths.rows(results)
    if path_rows:
        sections.append(report.comparisons_table(path_rows, "gateway and resumable, against hfbus alone"))
    targets = report.targets(results) + targets18.targets(results) + stallfree.targets(results.get("stallfree", {}))
    targets += paths.targets(results)
    if targets:
        sections.append(report.targets_table(targets))
    if profiler is not None:
        sections += [render(name, summary) for name, summary in profiler.summaries.items()]
    if (busy := report.background_load(results)) > 0.3:
        sections.append(
            f"WARNING: other work kept {busy:.2f} cores busy (median over measuring windows) on this "
            f"{os.cpu_count()}-core machine during the run; absolute figures are disturbed, same-round ratios less so."
        )
    for name, reason in unavailable.items():
        sections.append(f"UNAVAILABLE {name}: {reason}")
    print("\n\n" + "\n\n".join(sections), flush=True)
    return {
        "summary": report.summary_json(results),
        "comparisons": [{"name": n, "value": s.as_json(), "unit": u} for n, s, u in comparisons + path_rows],
        "targets": [t.as_json() for t in targets],
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    plan = Plan.quick() if args.quick else Plan.full()
    if args.rounds:
        plan = replace(
            plan,
            rounds=args.rounds,
            paced_rounds=min(args.rounds, plan.paced_rounds),
            paced1000_rounds=min(args.rounds, plan.paced1000_rounds),
            stall_rounds=min(args.rounds, plan.stall_rounds),
            vec_rounds=args.rounds,
        )
    systems = list(args.system_names or DEFAULT_SYSTEMS)
    if "scale" in args.scenarios and "hfbus-core-x2" not in systems:
        systems.append("hfbus-core-x2")
    if os.environ.get(B_COMMAND) and "hfbus-core-b" not in systems:
        systems.insert(systems.index("hfbus-core") + 1 if "hfbus-core" in systems else 0, "hfbus-core-b")
    unavailable: dict[str, str] = {}
    if "faststream" in systems and (reason := ensure_baseline_deps()) is not None:
        unavailable["faststream"] = reason
    if "lean" in systems and not (anchors_dir() / "lean_consumer.py").is_file():
        unavailable["lean"] = f"anchor consumer not found in {anchors_dir()} (set BENCH_ANCHORS_DIR)"

    profiler = None
    if args.profile_names:
        binary = ensure_py_spy()
        if binary is None:
            print("bench: py-spy unavailable; running without --profile", file=sys.stderr)
        else:
            profiler = Profiler(binary, frozenset(args.profile_names), RESULTS / "profiles", {})
            shutil.rmtree(profiler.directory, ignore_errors=True)

    log_dir = RESULTS / "logs"
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    harness = Harness(Path(tempfile.mkdtemp(prefix="hfbus-bench-")), log_dir)
    # Outside the event loop, SIGTERM takes the same way out as Ctrl-C, so the finally below stops every child;
    # SIGINT is reset too, as a shell starts background jobs with it ignored.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    gc.freeze()  # the loader's long-lived objects need not be traversed by every collection
    started = time.monotonic()
    try:
        results = _run_loop(_run(harness, plan, args.scenarios, systems, unavailable, profiler))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\nbench: interrupted; stopping every child process", file=sys.stderr)
        return 130
    finally:
        harness.close()
    elapsed = time.monotonic() - started
    derived = _print_report(results, unavailable, profiler, plan)
    document = {
        "meta": {
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "elapsed_s": elapsed,
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "machine": platform.machine(),
            "quick": args.quick,
            "scenarios": args.scenarios,
            "systems": systems,
            "pace_s": PACE_S,
            "embed_latency_s": EMBED_LATENCY_S,
            "logs": str(log_dir),
        },
        "plan": asdict(plan),
        "unavailable": unavailable,
        "results": results,
        "profiles": profiler.summaries if profiler else {},
        **derived,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report.clean(document), indent=1))
    print(f"\nbench: {elapsed:.0f}s; JSON in {args.output}; process logs in {log_dir}", flush=True)
    return 0
