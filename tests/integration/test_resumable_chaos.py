"""Chaos for resumable streams: every stream read through `HfBus` with `resumable=True` ends complete, contiguous
and answered once, across SIGKILLed consumers, server restarts (graceful and SIGKILL) and leader changes in a
three-node cluster.

Counting, per request (see `ResumableLedger`):

- lost: the publisher's stream ended without a final output (it timed out, or failed after its request was sent).
- gaps: what the subscriber iterated does not add up: its final output's attempt must be the newest attempt it saw,
  that attempt's chunks must carry `seq` 0..n-1 exactly once each, the final `seq` n, and the chunks' text must be
  the result's text.
- answered twice: the kept stream `HFBUS_OUT` holds two different final outputs for the request, or two different
  outputs under one `(attempt, seq)`, or more runs of it reached the router than the run counter in the finals
  stream numbered (two runs under one attempt number: their chunks would mix, even where their texts agree).
  Identical copies of an output are not counted there: a consumer publishes what the stream had not confirmed
  again after a reconnect, and subscribers take each `(attempt, seq)` once (`copies` in the summary).

Where the server restarts, `HFBUS_OUT` is file storage: a memory stream is empty after a restart (see README,
Reliability). `make chaos` runs the long versions (the `chaos` marker); `make test` the short ones.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import random
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import anyio
import msgspec
import nats.errors
import pytest
from nats.aio.client import Client as NATS
from nats.js.api import DeliverPolicy
from nats.js.errors import NotFoundError

from schemas import ChatOutput, ChatResult, Chunk, Error, Tag
from schemas.codec import codec_for
from services.bus import natsserver
from services.client import BusTimeout, HfBus
from services.dev.fake_router import FakeRouter
from services.settings import Settings
from tests.conftest import eventually, running
from tests.integration.test_chaos import KILLS, REQUESTS, Consumers
from tests.integration.test_server_restart import NATS_PY_LEAK, durable_settings, work_queue_drained

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings(NATS_PY_LEAK)]

logger = logging.getLogger(__name__)

SEND_TRIES = 5
"""How often a stream whose subscribe or publish failed (server away) is started again, same id: JetStream dedupes
the request, and the new subscription reads the kept outputs from the start."""

Send = Callable[[HfBus, str, float], Awaitable[None]]


@dataclass
class ResumableLedger:
    """What each publisher's stream iterated, and what `HFBUS_OUT` kept, by request id."""

    sent: list[str] = field(default_factory=list)
    yielded: dict[str, list[ChatOutput]] = field(default_factory=dict)
    """Every output the request's `HfBus` stream yielded, in order (the last try's, when it was started again)."""
    kept: defaultdict[str, list[ChatOutput]] = field(default_factory=lambda: defaultdict(list))
    """Every output of the request in `HFBUS_OUT` after the run, in stream order."""
    outcomes: Counter[str] = field(default_factory=Counter)
    """How each stream ended: `result`, an error code, `timeout`, or `failed` (an exception after sending)."""
    retries: Counter[str] = field(default_factory=Counter)
    """Streams started again because subscribing or publishing failed, by exception name."""
    router_runs: Counter[str] = field(default_factory=Counter)
    """Chat calls the router received per request id: one per run that got as far as upstream."""
    numbered_runs: dict[str, int] = field(default_factory=dict)
    """The run counter per request id in the finals stream (durable mode): how many runs were numbered."""

    async def send(self, bus: HfBus, request_id: str, wait_s: float) -> None:
        """One resumable chat, iterated to its final output and recorded."""
        self.sent.append(request_id)
        for _ in range(SEND_TRIES):
            stream = bus.chat(
                f"request {request_id}",
                model="org/model",
                max_tokens=30,
                request_id=request_id,
                first_timeout=wait_s,
                idle_timeout=wait_s,
                resumable=True,
            )
            seen = self.yielded[request_id] = []
            try:
                async for output in stream:
                    seen.append(output)
            except BusTimeout:
                self.outcomes["timeout"] += 1
                return
            except (nats.errors.Error, TimeoutError) as exc:
                if seen:
                    # Not a failure to start: the stream broke after outputs came, which resuming should prevent.
                    logger.warning("stream %s failed after %d outputs: %r", request_id, len(seen), exc)
                    self.outcomes["failed"] += 1
                    return
                self.retries[type(exc).__name__] += 1
                continue
            final = seen[-1]
            self.outcomes["result" if isinstance(final, ChatResult) else str(getattr(final, "code", "?"))] += 1
            return
        self.outcomes["failed"] += 1

    @property
    def lost(self) -> list[str]:
        return [r for r in self.sent if not self.yielded.get(r) or not _is_final(self.yielded[r][-1])]

    @property
    def gaps(self) -> list[str]:
        return [r for r in self.sent if r not in self.lost and _gap(self.yielded[r]) is not None]

    @property
    def answered_twice(self) -> list[str]:
        return [r for r in self.sent if self._twice(r) is not None]

    def _twice(self, request_id: str) -> str | None:
        """Why the request shows answered twice (or two runs mixed under one number), or None."""
        if (why := _twice(self.kept.get(request_id, []))) is not None:
            return why
        numbered = self.numbered_runs.get(request_id)
        if numbered is not None and self.router_runs[request_id] > numbered:
            return f"{self.router_runs[request_id]} runs reached the router, {numbered} were numbered"
        return None

    @property
    def copies(self) -> int:
        """Outputs the kept stream holds more than once, identical (published again after a reconnect)."""
        return sum(len(kept) - len({_encoded(o) for o in kept}) for kept in self.kept.values())

    @property
    def restarted(self) -> list[str]:
        """Requests that ran more than once (their kept outputs carry more than one attempt)."""
        return [r for r in self.sent if len({o.attempt for o in self.kept.get(r, [])}) > 1]

    @property
    def not_kept(self) -> list[str]:
        """Requests whose final output is missing from `HFBUS_OUT`."""
        return [r for r in self.sent if not any(_is_final(o) for o in self.kept.get(r, []))]

    def summary(self) -> str:
        text = (
            f"requests={len(self.sent)} lost={len(self.lost)} gaps={len(self.gaps)} "
            f"answered_twice={len(self.answered_twice)} restarted={len(self.restarted)} copies={self.copies} "
            f"not_kept={len(self.not_kept)} runs={sum(self.router_runs[r] for r in self.sent)} "
            f"outcomes={dict(self.outcomes)} retries={dict(self.retries)}"
        )
        for name, ids, why in (
            ("lost", self.lost, lambda r: _shape(self.yielded.get(r, []))),
            ("gap", self.gaps, lambda r: f"{_gap(self.yielded[r])}; kept {_shape(self.kept.get(r, []))}"),
            ("answered twice", self.answered_twice, lambda r: f"{self._twice(r)}; {_shape(self.kept[r])}"),
        ):
            if ids:
                text += f"; e.g. {name} {ids[0]}: {why(ids[0])}"
        return text


def _is_final(output: ChatOutput) -> bool:
    return isinstance(output, ChatResult | Error)


def _gap(outputs: list[ChatOutput]) -> str | None:
    """Why what a subscriber iterated is not one whole answer, or None when it is."""
    final = outputs[-1]
    assert isinstance(final, ChatResult | Error)
    newest = max(o.attempt for o in outputs)
    if final.attempt != newest:
        return f"the final output is attempt {final.attempt}'s, but attempt {newest} had started"
    streamed = [o.attempt for o in outputs[:-1]]
    if streamed != sorted(streamed):
        return "an older attempt's output came after a newer one's"
    chunks = [o for o in outputs if isinstance(o, Chunk) and o.attempt == final.attempt]
    if [c.seq for c in chunks] != list(range(len(chunks))) or final.seq != len(chunks):
        return f"attempt {final.attempt}: chunk seqs {[c.seq for c in chunks]}, final seq {final.seq}"
    if isinstance(final, ChatResult) and "".join(c.delta for c in chunks) != final.text:
        return f"attempt {final.attempt}: the chunks' text is not the result's"
    return None


def _encoded(output: ChatOutput) -> bytes:
    return msgspec.json.encode(output)


def _twice(kept: list[ChatOutput]) -> str | None:
    """Why the kept outputs of one request show it answered twice (or two runs mixed), or None."""
    finals = {_encoded(o): o for o in kept if _is_final(o)}
    if len(finals) > 1:
        return f"{len(finals)} different final outputs, attempts {[f.attempt for f in finals.values()]}"
    variants: defaultdict[tuple[int, int], set[bytes]] = defaultdict(set)
    for o in kept:
        variants[(o.attempt, o.seq)].add(_encoded(o))
    if mixed := sorted(key for key, payloads in variants.items() if len(payloads) > 1):
        return f"different outputs under one (attempt, seq): {mixed[:5]}"
    return None


def _shape(outputs: list[ChatOutput]) -> str:
    """A compact picture of a stream: per attempt, the seqs in order and F for the final."""
    by_attempt: defaultdict[int, list[str]] = defaultdict(list)
    for o in outputs:
        by_attempt[o.attempt].append(f"{o.seq}{'F' if _is_final(o) else ''}")
    return "; ".join(f"attempt {a}: {' '.join(s)}" for a, s in sorted(by_attempt.items())) or "nothing"


async def read_kept(nc: NATS, settings: Settings, ledger: ResumableLedger, *, within: float = 30.0) -> None:
    """Every output `HFBUS_OUT` holds, into `ledger.kept`."""
    subjects = settings.subjects
    info = await nc.jsm().stream_info(subjects.out_stream)
    if info.state.messages == 0:
        return
    last = info.state.last_seq
    subscription = await nc.jetstream().subscribe(
        subjects.out_all, stream=subjects.out_stream, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
    )
    try:
        with anyio.fail_after(within):
            while True:
                msg = await subscription.next_msg(timeout=within)
                output = codec_for(msg.headers).decode(msg.data, ChatOutput)
                ledger.kept[output.id].append(output)
                if msg.metadata.sequence.stream >= last:
                    return
    finally:
        await subscription.unsubscribe()


async def read_runs(nc: NATS, settings: Settings, router: FakeRouter, ledger: ResumableLedger) -> None:
    """How many runs of each request reached the router, and how many the finals stream numbered."""
    for recorded in router.requests:
        if recorded.path.endswith("/chat/completions"):
            content = recorded.json()["messages"][0]["content"]
            ledger.router_runs[content.removeprefix("request ")] += 1
    subjects = settings.subjects
    for request_id in ledger.sent:
        try:
            last = await nc.jsm().get_last_msg(subjects.finals_stream, subjects.run(Tag.CHAT, request_id))
        except NotFoundError:
            continue
        ledger.numbered_runs[request_id] = int(last.data or b"0")


async def drained(nc: NATS, settings: Settings, *, within: float) -> None:
    """Wait (bounded) until the work queue is empty, so no run can start again and the kept stream is final."""
    with anyio.move_on_after(within):
        while not await work_queue_drained(nc, settings.subjects):  # noqa: ASYNC110
            await anyio.sleep(0.05)  # polling: JetStream sends no event when a consumer's last ack lands


def assert_clean(ledger: ResumableLedger) -> None:
    assert not ledger.lost, ledger.summary()
    assert not ledger.gaps, ledger.summary()
    assert not ledger.answered_twice, ledger.summary()
    assert ledger.outcomes["result"] == len(ledger.sent), ledger.summary()


# (a) SIGKILLed consumer processes ----------------------------------------------------------------------------------


async def sigkilled_consumers_run(
    settings: Settings, router: FakeRouter, *, requests: int, kills: int
) -> ResumableLedger:
    router.pace_s = 0.02  # 30 tokens: 0.6 s a stream, so kills land mid-stream
    ledger = ResumableLedger()
    rng = random.Random(int(os.environ.get("HFBUS_CHAOS_SEED", "7")))
    consumers = Consumers(settings, rng)
    try:
        for _ in range(2):
            await consumers.start()
        async with HfBus.connect(settings.nats_url, prefix=settings.prefix, mode="durable") as bus:
            # The first consumer to start creates the streams; publish once both exist.
            with anyio.fail_after(30):
                while True:
                    try:
                        await bus.nc.jsm().stream_info(settings.subjects.out_stream)
                        await bus.nc.jsm().stream_info(settings.subjects.stream)
                        break
                    except Exception:
                        await anyio.sleep(0.1)  # polling: no event announces a stream's creation
            async with anyio.create_task_group() as tg:
                for _ in range(requests):
                    # A backlog at 16 slots, and kills that leave requests waiting: wait long for a first output.
                    tg.start_soon(ledger.send, bus, uuid.uuid4().hex, 120.0)
                await eventually(lambda: router.in_flight >= 5, within=30)
                for _ in range(kills):
                    await anyio.sleep(rng.uniform(0.2, 0.8))
                    await consumers.kill_one()
                    await consumers.start()
            await drained(bus.nc, settings, within=30)
            await read_kept(bus.nc, settings, ledger)
            await read_runs(bus.nc, settings, router, ledger)
    finally:
        await consumers.stop()
    return ledger


async def test_resumable_streams_survive_sigkilled_consumers(settings: Settings, router: FakeRouter) -> None:
    ledger = await sigkilled_consumers_run(settings, router, requests=REQUESTS // 2, kills=KILLS)

    print(f"\nresumable, {KILLS} consumer SIGKILLs: {ledger.summary()}")
    assert ledger.restarted, f"no kill landed on a request in flight: the run proved nothing. {ledger.summary()}"
    assert_clean(ledger)


@pytest.mark.chaos
async def test_chaos_resumable_streams_survive_many_sigkilled_consumers(settings: Settings, router: FakeRouter) -> None:
    ledger = await sigkilled_consumers_run(settings, router, requests=max(REQUESTS, 400), kills=max(KILLS, 12))

    print(f"\nchaos resumable, consumer SIGKILLs: {ledger.summary()}")
    assert ledger.restarted, ledger.summary()
    assert_clean(ledger)


# (b), (c) server restarts, graceful and SIGKILL ----------------------------------------------------------------------


def resumable_settings(settings: Settings, url: str, *, replicas: int = 1) -> Settings:
    # File storage: a memory stream comes back empty after the server restarts, and what it kept is gone.
    return replace(durable_settings(settings, url, replicas=replicas), out_storage="file")


async def server_restart_run(
    node: natsserver.Node, settings: Settings, router: FakeRouter, *, requests: int, restarts: int, kill: bool
) -> ResumableLedger:
    """`requests` resumable chats in `restarts + 1` waves; after each wave but the last, the server restarts
    mid-stream (stopped or SIGKILLed) with at least 5 streams open, and the next wave is sent while it is down."""
    router.pace_s = 0.01  # 30 tokens: about 0.3 s per stream
    ledger = ResumableLedger()
    waves = [requests // (restarts + 1) + (1 if i < requests % (restarts + 1) else 0) for i in range(restarts + 1)]
    ids = (f"r{i:04d}" for i in range(1, requests + 1))
    async with (
        running(settings),
        HfBus.connect(node.url, prefix=settings.prefix, mode="durable", reconnect_time_wait=0.05) as bus,
    ):
        async with anyio.create_task_group() as tg:

            def launch(count: int) -> None:
                for request_id in itertools.islice(ids, count):
                    tg.start_soon(ledger.send, bus, request_id, 15.0)

            launch(waves[0])
            for wave in waves[1:]:
                await eventually(lambda: router.in_flight >= 5, within=15.0)
                await anyio.to_thread.run_sync(node.kill if kill else node.stop)
                launch(wave)
                await anyio.to_thread.run_sync(node.start)
        await drained(bus.nc, settings, within=15.0)
        await read_kept(bus.nc, settings, ledger)
        await read_runs(bus.nc, settings, router, ledger)
    return ledger


@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "sigkill"])
@pytest.mark.parametrize(("requests", "restarts"), [(30, 1), pytest.param(400, 8, marks=pytest.mark.chaos, id="chaos")])
async def test_resumable_streams_survive_server_restarts(
    tmp_path: Path, settings: Settings, router: FakeRouter, kill: bool, requests: int, restarts: int
) -> None:
    node = natsserver.start_node(tmp_path / "nats")
    try:
        ledger = await server_restart_run(
            node, resumable_settings(settings, node.url), router, requests=requests, restarts=restarts, kill=kill
        )
    finally:
        node.stop()

    print(f"\nresumable, {restarts} server {'SIGKILL' if kill else 'restart'}(s): {ledger.summary()}")
    assert node.starts == restarts + 1
    assert_clean(ledger)


# (d) leaders moving in a three-node cluster ------------------------------------------------------------------------


async def step_down(nc: NATS, stream: str) -> bool:
    """Ask the stream's leader to step down; True once JetStream said it did (a few tries: right after a change
    the new leader may not answer yet)."""
    for _ in range(5):
        with contextlib.suppress(nats.errors.TimeoutError):
            reply = await nc.request(f"$JS.API.STREAM.LEADER.STEPDOWN.{stream}", b"", timeout=2.0)
            if msgspec.json.decode(reply.data).get("success"):
                return True
        await anyio.sleep(0.2)
    return False


async def leader_moves_run(
    cluster: natsserver.Cluster, settings: Settings, router: FakeRouter, *, requests: int, moves: int
) -> tuple[ResumableLedger, int]:
    """`requests` resumable chats against R3 streams; meanwhile the leaders of the out stream, the finals stream
    and the work queue step down `moves` times each, with streams in flight every time. Returns the ledger and
    how many step-downs JetStream confirmed."""
    router.pace_s = 0.02  # 30 tokens: 0.6 s a stream
    ledger = ResumableLedger()
    subjects = settings.subjects
    moved = 0
    async with (
        running(settings),
        HfBus.connect(cluster.nodes[0].url, prefix=settings.prefix, mode="durable") as bus,
    ):
        async with anyio.create_task_group() as tg:
            ids = (f"m{i:04d}" for i in itertools.count(1))
            per_wave = max(1, requests // (moves + 1))

            def launch() -> None:
                for request_id in itertools.islice(ids, per_wave):
                    tg.start_soon(ledger.send, bus, request_id, 30.0)

            launch()
            for _ in range(moves):
                await eventually(lambda: router.in_flight >= 5, within=15.0)
                for stream in (subjects.out_stream, subjects.finals_stream, subjects.stream):
                    moved += await step_down(bus.nc, stream)
                launch()
        await drained(bus.nc, settings, within=30.0)
        await read_kept(bus.nc, settings, ledger)
        await read_runs(bus.nc, settings, router, ledger)
    return ledger, moved


async def test_resumable_streams_survive_leaders_moving_in_a_cluster(
    tmp_path: Path, settings: Settings, router: FakeRouter
) -> None:
    cluster = natsserver.start_cluster(3, tmp_path / "cluster")
    try:
        cluster.wait_healthy(timeout=20.0)
        ledger, moved = await leader_moves_run(
            cluster, resumable_settings(settings, cluster.url, replicas=3), router, requests=60, moves=3
        )
    finally:
        cluster.stop()

    print(f"\nresumable, {moved} leader changes in a cluster: {ledger.summary()}")
    assert moved == 3 * 3, f"only {moved} of 9 step-downs took place: the run proved less than it says"
    assert_clean(ledger)
