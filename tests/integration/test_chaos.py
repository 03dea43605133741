"""Chaos: consumers killed with SIGKILL at random moments lose no request and duplicate no final output.

The short run is part of `make test`; `make chaos` runs it longer (HFBUS_CHAOS_REQUESTS, HFBUS_CHAOS_KILLS).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

import anyio
import msgspec
import pytest
from anyio.abc import Process
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from schemas import ChatOutput, ChatResult, Error
from services.dev.fake_router import FakeRouter
from services.settings import Settings
from tests.conftest import HF_TOKEN, chat_payload, eventually

pytestmark = pytest.mark.integration

REQUESTS = int(os.environ.get("HFBUS_CHAOS_REQUESTS", "80"))
KILLS = int(os.environ.get("HFBUS_CHAOS_KILLS", "3"))


@dataclass
class Ledger:
    """Every output seen, per request id: (attempt, seq, type)."""

    outputs: dict[str, list[tuple[int, int, str]]] = field(default_factory=lambda: defaultdict(list))
    finals: dict[str, list[object]] = field(default_factory=lambda: defaultdict(list))

    async def record(self, msg: Msg) -> None:
        output = msgspec.json.decode(msg.data, type=ChatOutput)
        self.outputs[output.id].append((output.attempt, output.seq, type(output).__name__))
        if isinstance(output, ChatResult | Error):
            self.finals[output.id].append(output)


class Consumers:
    """Consumer processes started with `python -m services run`, killed and restarted at will."""

    def __init__(self, settings: Settings, rng: random.Random) -> None:
        self.rng = rng
        self.env = {
            **os.environ,
            "NATS_URL": settings.nats_url,
            "HF_ROUTER_URL": settings.router_url,
            "HUGGINGFACE_API_KEY": HF_TOKEN,
            "HFBUS_MODE": "durable",
            "HFBUS_PREFIX": settings.prefix,
            "HFBUS_TAGS": "chat",
            "HFBUS_ACK_WAIT": "2",
            "HFBUS_MAX_DELIVER": "20",
            # Few slots per process keep a backlog, so every kill lands on requests in flight.
            "HFBUS_CONCURRENCY": "8",
            "HFBUS_HTTP_ADDR": "127.0.0.1:0",
            "HFBUS_LOG_LEVEL": "WARNING",
        }
        self.processes: list[Process] = []

    async def start(self) -> Process:
        process = await anyio.open_process(
            [sys.executable, "-m", "services", "run"], env=self.env, stdout=subprocess.DEVNULL, stderr=None
        )
        self.processes.append(process)
        return process

    async def kill_one(self) -> None:
        alive = [p for p in self.processes if p.returncode is None]
        victim = self.rng.choice(alive)
        victim.send_signal(signal.SIGKILL)
        await victim.aclose()
        self.processes.remove(victim)

    async def stop(self) -> None:
        for process in self.processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        with anyio.move_on_after(30):
            for process in self.processes:
                await process.wait()
        for process in self.processes:
            if process.returncode is None:
                process.kill()
            await process.aclose()


async def test_sigkilled_consumers_lose_nothing_and_duplicate_no_final(
    settings: Settings, router: FakeRouter, nc: NATS
) -> None:
    router.pace_s = 0.02  # 30 tokens: 0.6 s a stream, so kills land mid-stream
    ledger = Ledger()
    monitor = await nc.subscribe(f"{settings.prefix}.out.chat.*", cb=ledger.record)
    rng = random.Random(int(os.environ.get("HFBUS_CHAOS_SEED", "7")))
    consumers = Consumers(settings, rng)
    ids = [uuid.uuid4().hex for _ in range(REQUESTS)]
    try:
        for _ in range(2):
            await consumers.start()
        js = nc.jetstream()
        # The first consumer to start creates the stream; publish once it exists.
        with anyio.fail_after(30):
            while True:
                try:
                    await js.stream_info(settings.subjects.stream)
                    break
                except Exception:
                    await anyio.sleep(0.1)
        for request_id in ids:
            payload = chat_payload(request_id, model="org/model", max_tokens=30)
            await js.publish(f"{settings.prefix}.chat", payload, headers={"Nats-Msg-Id": request_id})
        await eventually(lambda: len(ledger.outputs) > 0, within=30)
        for _ in range(KILLS):
            await anyio.sleep(rng.uniform(0.2, 0.8))
            await consumers.kill_one()
            await consumers.start()
        await eventually(lambda: len(ledger.finals) == REQUESTS, within=120)
        await anyio.sleep(3)  # a late duplicate from a redelivery would land in this window
    finally:
        await consumers.stop()
        await monitor.unsubscribe()

    lost = [i for i in ids if not ledger.finals.get(i)]
    duplicated = [i for i in ids if len(ledger.finals.get(i, [])) > 1]
    restarted = [i for i in ids if max(a for a, _, _ in ledger.outputs[i]) > 1]
    not_last_attempt = [
        i
        for i in ids
        if ledger.finals.get(i) and ledger.finals[i][-1].attempt != max(a for a, _, _ in ledger.outputs[i])  # type: ignore[attr-defined]
    ]
    errors = [i for i in ids if any(isinstance(f, Error) for f in ledger.finals.get(i, []))]
    print(
        f"\nchaos: {REQUESTS} requests, {KILLS} SIGKILLs, lost {len(lost)}, duplicated finals {len(duplicated)}, "
        f"restarted streams {len(restarted)}, errors {len(errors)}"
    )
    assert restarted, "no kill landed on a request in flight: the run proved nothing"
    assert lost == []
    assert duplicated == []
    assert not_last_attempt == []
    assert errors == []
    for request_id in restarted:
        attempts = [a for a, _, _ in ledger.outputs[request_id]]
        assert attempts == sorted(attempts), "outputs of a new attempt never precede an older one's"


def _attempt(output: object) -> int:
    assert isinstance(output, ChatResult | Error)
    return output.attempt
