"""The systems under test and the harness that starts their processes: nats-servers, routers, consumers.

Each bus system gets a nats-server of its own. They all listen on `ai.chat`, and a durable-mode stream captures
every `ai.*` request subject, so sharing one server would hand each request to several systems; an idle
nats-server costs nothing measurable, and every system still runs the same server binary.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import aiohttp
from nats.aio.client import Client as NATS

from bench import loader
from bench.anchor_runner import anchors_dir
from bench.drive import Load, drive
from bench.loader import BusTarget, DirectTarget, GatewayTarget, Target, VectorizeTarget, now
from bench.procs import Child, cpu_seconds, free_port, spawn, wait_for_port
from bench.router import COUNTERS_PATH
from services.bus import natsserver

Kind = Literal["direct", "hfbus", "gateway", "lean", "faststream", "floor"]
B_COMMAND = "BENCH_HFBUS_B_COMMAND"
REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class SystemSpec:
    name: str
    description: str
    kind: Kind
    durable: bool = False
    resumable: bool = False
    """Requests carry `"resumable": true` (durable mode): outputs kept by HFBUS_OUT (see `loader.BusTarget`)."""
    processes: int = 1
    command_env: str = "BENCH_HFBUS_COMMAND"
    """Environment variable that may replace the `hfbus` command line (see `hfbus_command`)."""


SYSTEMS: dict[str, SystemSpec] = {
    spec.name: spec
    for spec in (
        SystemSpec("direct", "aiohttp straight to the router, no bus (the limit)", "direct"),
        SystemSpec("hfbus-core", "hfbus, core mode (queue group)", "hfbus"),
        SystemSpec("hfbus-durable", "hfbus, durable mode (JetStream work queue)", "hfbus", durable=True),
        SystemSpec(
            "hfbus-resumable",
            "hfbus, durable mode, every request resumable (outputs kept by HFBUS_OUT)",
            "hfbus",
            durable=True,
            resumable=True,
        ),
        # `hfbus gateway` (a process of its own) in front of one `hfbus run` process; the loader is an SSE client.
        SystemSpec("gateway-core", "hfbus gateway (OpenAI SSE) over hfbus core", "gateway"),
        SystemSpec("gateway-durable", "hfbus gateway (OpenAI SSE) over hfbus durable", "gateway", durable=True),
        SystemSpec("lean", "hand-rolled nats-py + aiohttp + msgspec (shared anchor)", "lean"),
        SystemSpec("faststream", "FastStream + huggingface_hub", "faststream"),
        # Not a competitor: the least any Python consumer pays per paced token on this loop (bench/floor.py).
        SystemSpec("floor", "asyncio Protocol reader, PUBs appended to nats-py's buffer (the floor)", "floor"),
        SystemSpec("hfbus-core-x2", "hfbus, core mode, two consumer processes", "hfbus", processes=2),
        # The B side of an interleaved A/B run: BENCH_HFBUS_B_COMMAND names another build (a patched copy, a
        # branch checkout), measured in the same rounds as hfbus-core, so the ratio between them is fair.
        SystemSpec("hfbus-core-b", "hfbus, core mode, from BENCH_HFBUS_B_COMMAND", "hfbus", command_env=B_COMMAND),
        SystemSpec(
            "hfbus-durable-b",
            "hfbus, durable mode, from BENCH_HFBUS_B_COMMAND",
            "hfbus",
            durable=True,
            command_env=B_COMMAND,
        ),
        SystemSpec(
            "hfbus-resumable-b",
            "hfbus, durable mode, every request resumable, from BENCH_HFBUS_B_COMMAND",
            "hfbus",
            durable=True,
            resumable=True,
            command_env=B_COMMAND,
        ),
    )
}


def child_env(extra: dict[str, str]) -> dict[str, str]:
    # Nothing from the caller's hfbus/NATS/HF settings may leak into a consumer under test.
    prefixes = ("HFBUS_", "NATS_", "HF_", "HUGGINGFACE_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(extra)
    return env


def hfbus_command(variable: str) -> list[str]:
    # `variable` (BENCH_HFBUS_COMMAND, or BENCH_HFBUS_B_COMMAND for the B side) may swap in another build.
    if override := os.environ.get(variable):
        return shlex.split(override)
    script = Path(sys.executable).with_name("hfbus")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from services.cli import main; main()"]


class Harness:
    """Owns every child process of a run; `close()` (always called, also on Ctrl-C) stops them all."""

    def __init__(self, work_dir: Path, log_dir: Path) -> None:
        self.work_dir = work_dir
        self.log_dir = log_dir
        self.routers: dict[str, Child] = {}
        self.router_urls: dict[str, str] = {}
        self.servers: dict[str, natsserver.NatsServer] = {}
        self.connections: dict[str, NATS] = {}
        self.consumers: dict[str, list[Child]] = {}
        self.targets: dict[str, Target] = {}
        self.metrics_urls: dict[str, str] = {}
        """hfbus systems' consumer /metrics (one-process systems only), for the stage table (bench.stages)."""
        self.gateways: dict[str, Child] = {}
        self.gateway_keys: dict[str, str] = {}
        """Gateway systems' `hfbus gateway` process (also counted in their consumer CPU: gateway + consumer)."""
        self._direct: list[DirectTarget | GatewayTarget] = []
        self._generation = 0

    # -- infrastructure ---------------------------------------------------------------------------------------

    def start_router(self, key: str, pace_s: float, *, embed_latency_s: float = 0.0) -> str:
        port = free_port()
        argv = [sys.executable, "-m", "bench.router", "--port", str(port), "--pace", str(pace_s)]
        argv += ["--embed-latency", str(embed_latency_s)]
        child = spawn(f"router-{key}", argv, env=child_env({}), log_dir=self.log_dir, cwd=REPO)
        self.routers[key] = child
        wait_for_port(port, child)
        url = f"http://127.0.0.1:{port}"
        self.router_urls[key] = url
        return url

    async def embed_calls(self, key: str) -> int:
        """Feature-extraction calls router `key` has served since it started (`bench.router`'s counter)."""
        async with aiohttp.ClientSession() as session:
            async with session.get(self.router_urls[key] + COUNTERS_PATH) as response:
                response.raise_for_status()
                return int((await response.json())["embed_calls"])

    def stop_router(self, key: str) -> None:
        child = self.routers.pop(key, None)
        if child is not None:
            child.stop()

    async def start_nats(self, system: str) -> None:
        server = natsserver.start(self.work_dir / f"nats-{system}")
        self.servers[system] = server
        self.connections[system] = await loader.connect(server.url)

    def infra_groups(self, system: str) -> dict[str, list[int]]:
        """The router(s) and the system's own nats-server, for the CPU columns."""
        groups = {"router": [c.pid for c in self.routers.values() if c.alive]}
        if system in self.servers:
            groups["nats"] = [self.servers[system].process.pid]
        if system in self.gateways:
            groups["gateway"] = [self.gateways[system].pid]
        return groups

    def infra_pids(self) -> list[int]:
        pids = [c.pid for c in self.routers.values()]
        pids += [s.process.pid for s in self.servers.values()]
        return pids

    def all_pids(self) -> list[int]:
        return self.infra_pids() + [c.pid for group in self.consumers.values() for c in group]

    # -- consumers ----------------------------------------------------------------------------------------------

    def _consumer_argv(self, spec: SystemSpec, router: str, concurrency: int) -> tuple[list[str], dict[str, str]]:
        url = self.servers[spec.name].url
        if spec.kind in ("hfbus", "gateway"):
            http_addr = f"127.0.0.1:{free_port()}"
            if spec.processes == 1:
                self.metrics_urls[spec.name] = f"http://{http_addr}/metrics"
            argv = [
                *hfbus_command(spec.command_env),
                "run",
                "--tags",
                "chat",
                "--mode",
                "durable" if spec.durable else "core",
            ]
            env = {
                "NATS_URL": url,
                "HF_ROUTER_URL": router,
                "HUGGINGFACE_API_KEY": loader.TOKEN,
                # No HFBUS_CONCURRENCY: hfbus is measured as it ships; `concurrency` sizes the baselines.
                "HFBUS_LOG_LEVEL": "WARNING",
                # Each process its own health port, in case the app serves one: two must not collide.
                "HFBUS_HTTP_ADDR": http_addr,
            }
            return argv, env
        if spec.kind == "lean":
            argv = [sys.executable, "-m", "bench.anchor_runner", "--nats", url, "--router", f"{router}/v1"]
            argv += ["--token", loader.TOKEN, "--max-inflight", str(concurrency), "--loop", "uvloop"]
            return argv, {"BENCH_ANCHORS_DIR": str(anchors_dir())}
        if spec.kind == "floor":
            argv = [sys.executable, "-m", "bench.floor", "--nats", url, "--router", f"{router}/v1"]
            return argv + ["--token", loader.TOKEN], {}
        if spec.kind == "faststream":
            argv = [sys.executable, "-m", "bench.baselines.faststream_app", "--nats", url, "--router", router]
            argv += ["--token", loader.TOKEN, "--workers", str(concurrency)]
            return argv, {}
        raise ValueError(f"{spec.name} has no consumer process")

    async def start_consumers(self, spec: SystemSpec, router: str, concurrency: int) -> None:
        """Start the system's consumer process(es) and return once they answer; raises with the log on failure."""
        self._generation += 1
        if spec.kind == "direct":
            target = DirectTarget(spec.name, router)
            await target.start()
            self._direct.append(target)
            self.targets[spec.name] = target
            self.consumers[spec.name] = []
            return
        if spec.name not in self.servers:
            await self.start_nats(spec.name)
        if spec.kind == "gateway":
            await self._start_gateway(spec, router, concurrency)
            return
        bus_target = self.targets.get(spec.name)
        if not isinstance(bus_target, BusTarget):
            bus_target = BusTarget(
                spec.name,
                self.connections[spec.name],
                "hfbus" if spec.kind == "hfbus" else "faststream" if spec.kind == "faststream" else "lean",
                durable=spec.durable,
                resumable=spec.resumable,
            )
            await bus_target.start()
            self.targets[spec.name] = bus_target
        children = []
        for index in range(spec.processes):
            argv, env = self._consumer_argv(spec, router, concurrency)
            name = f"{spec.name}-{index}-g{self._generation}"
            children.append(spawn(name, argv, env=child_env(env), log_dir=self.log_dir, cwd=REPO))
        self.consumers[spec.name] = children
        await _wait_ready(bus_target, children)
        await _warm_up(bus_target, children)

    async def _start_gateway(self, spec: SystemSpec, router: str, concurrency: int) -> None:
        """`hfbus run` (core or durable), then `hfbus gateway` in front of it once the consumer answers on the bus
        (the gateway picks its delivery mode at connect, from the stream the durable consumer makes), and a key."""
        url = self.servers[spec.name].url
        argv, env = self._consumer_argv(spec, router, concurrency)
        consumer = spawn(
            f"{spec.name}-consumer-g{self._generation}", argv, env=child_env(env), log_dir=self.log_dir, cwd=REPO
        )
        self.consumers[spec.name] = [consumer]
        probe = BusTarget(f"{spec.name}-bus", self.connections[spec.name], "hfbus", durable=spec.durable)
        await probe.start()
        await _wait_ready(probe, [consumer])
        key = self.gateway_keys.get(spec.name)
        if key is None:
            key = self.gateway_keys[spec.name] = await asyncio.to_thread(_create_key, url)
        port = free_port()
        gateway_env = {"NATS_URL": url, "HFBUS_GATEWAY_ADDR": f"127.0.0.1:{port}", "HFBUS_LOG_LEVEL": "WARNING"}
        gateway = spawn(
            f"{spec.name}-gateway-g{self._generation}",
            [*hfbus_command(spec.command_env), "gateway"],
            env=child_env(gateway_env),
            log_dir=self.log_dir,
            cwd=REPO,
        )
        self.gateways[spec.name] = gateway
        self.consumers[spec.name] = [consumer, gateway]
        await asyncio.to_thread(wait_for_port, port, gateway)
        target = GatewayTarget(spec.name, f"http://127.0.0.1:{port}", key)
        await target.start()
        self._direct.append(target)
        self.targets[spec.name] = target
        await _wait_ready(target, [consumer, gateway])
        await _warm_up(target, [consumer])

    async def start_vectorize(
        self, name: str, router: str, concurrency: int, settings: dict[str, str], texts: list[str]
    ) -> VectorizeTarget:
        """One `hfbus run --tags vectorize --mode core` process with the extra `settings` (HFBUS_EMBED_BATCH_*).

        Every vectorize consumer shares one nats-server (`vectorize`): the scenario runs one at a time, each
        stopped before the next starts, and one loader target whose `texts` (what it sends, in turn) the first
        call fixes. Returns once the consumer answers; raises with its log on failure.
        """
        self._generation += 1
        if "vectorize" not in self.servers:
            await self.start_nats("vectorize")
        target = self.targets.get("vectorize")
        if not isinstance(target, VectorizeTarget):
            target = VectorizeTarget("vectorize", self.connections["vectorize"], texts)
            await target.start()
            self.targets["vectorize"] = target
        argv = [*hfbus_command("BENCH_HFBUS_COMMAND"), "run", "--tags", "vectorize", "--mode", "core"]
        env = {
            "NATS_URL": self.servers["vectorize"].url,
            "HF_ROUTER_URL": router,
            "HF_HUB_URL": router,  # the fake router serves the Hub's provider mapping too
            "HUGGINGFACE_API_KEY": loader.TOKEN,
            "HFBUS_CONCURRENCY": str(concurrency),
            "HFBUS_LOG_LEVEL": "WARNING",
            "HFBUS_HTTP_ADDR": f"127.0.0.1:{free_port()}",
            **settings,
        }
        child = spawn(f"{name}-g{self._generation}", argv, env=child_env(env), log_dir=self.log_dir, cwd=REPO)
        self.consumers[name] = [child]
        await _wait_ready(target, [child])
        return target

    def stop_consumer(self, name: str) -> None:
        for child in self.consumers.pop(name, []):
            child.stop()

    def stop_consumers(self) -> None:
        # Gateways first: they hold requests open on the consumers behind them.
        for gateway in self.gateways.values():
            gateway.stop()
        self.gateways.clear()
        for children in self.consumers.values():
            for child in children:
                child.stop()
        self.consumers.clear()

    async def close_targets(self) -> None:
        for target in self._direct:
            await target.close()
        self._direct.clear()
        for nc in self.connections.values():
            if not nc.is_closed:
                await nc.close()

    def close(self) -> None:
        """Stop every child: consumers first (they drain into NATS), then routers and servers."""
        self.stop_consumers()
        for child in self.routers.values():
            child.stop()
        for server in self.servers.values():
            server.stop()
        shutil.rmtree(self.work_dir, ignore_errors=True)


def _create_key(nats_url: str) -> str:
    """A virtual key for the bench, made as a person would: `hfbus keys create` prints it as its last line."""
    argv = [*hfbus_command("BENCH_HFBUS_COMMAND"), "keys", "create", "--name", "bench"]
    done = subprocess.run(
        argv, env=child_env({"NATS_URL": nats_url}), cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"hfbus keys create failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return lines[-1].strip()


async def _wait_ready(target: Target, children: list[Child], timeout_s: float = 45.0) -> None:
    deadline = now() + timeout_s
    last = "no answer"
    while now() < deadline:
        for child in children:
            if not child.alive:
                raise RuntimeError(f"{child.name} exited with {child.process.returncode}:\n{child.log_tail()}")
        sample = await target.request(4, min(deadline, now() + 1.0))
        if sample.error is None:
            return
        last = sample.error
        await asyncio.sleep(0.1)
    tails = "\n".join(f"--- {c.name}\n{c.log_tail()}" for c in children)
    raise RuntimeError(f"{target.name} not ready within {timeout_s:g}s (last: {last})\n{tails}")


async def _warm_up(target: Target, children: list[Child]) -> None:
    # Warm connection pools and code paths; with several processes, repeat until each has served requests
    # (a queue group spreads requests at random, and a process may subscribe a little later than another).
    # CPU counts from the first pass: on a quiet machine 150 short requests can cost a process under 50 ms, and
    # judging each pass alone then failed a warm-up in which both processes were serving.
    before = [cpu_seconds(c.pid) for c in children]
    for _ in range(10):
        # Few tokens: against the paced router a warm-up of long answers would cost seconds per system.
        await drive(target, Load(clients=20, max_tokens=4, duration_s=10.0, max_requests=300), [])
        used = [cpu_seconds(c.pid) - b for c, b in zip(children, before, strict=True)]
        if len(children) == 1 or min(used) >= 0.05:
            return
        await asyncio.sleep(0.3)
    raise RuntimeError(f"{target.name}: not every consumer process took requests during warm-up")
