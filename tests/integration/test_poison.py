"""Poison requests: one error to the caller after max_deliver, a copy in the dead letters, no endless loop."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import anyio
import msgspec
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from schemas import ChatOutput, ChatRequest, ChatResult, Error, ErrorCode, Tag
from schemas.codec import JSON_CODEC
from schemas.subjects import DEAD_DELIVERIES, DEAD_REASON
from services.bus.connection import Delivery
from services.client import HfBus
from services.consumer import runner
from services.consumer.runner import TagRunner
from services.dev.fake_router import FakeRouter
from services.handlers import HANDLERS, HandlerSpec, chat
from services.settings import Settings
from tests.conftest import chat_payload, collect, eventually, running

pytestmark = pytest.mark.integration


async def drained_backlog(bus: HfBus, settings: Settings) -> int:
    """Requests left in the work queue, once the runtime's last settle (term/ack, not awaited) has landed."""
    with anyio.move_on_after(5):
        while backlog := (await bus.nc.jsm().stream_info(settings.subjects.stream)).state.messages:  # noqa: ASYNC110
            await anyio.sleep(0.05)
    return backlog


async def crash(request: ChatRequest, ctx: Any) -> None:
    raise RuntimeError("a bug that hits this request every time")


async def hang(request: ChatRequest, ctx: Any) -> None:
    await anyio.sleep_forever()


async def no_heartbeat(self: TagRunner) -> None:
    await anyio.sleep_forever()


async def test_a_request_that_crashes_every_delivery_ends_with_one_error_and_is_dead_lettered(
    settings: Settings, router: FakeRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(HANDLERS, Tag.CHAT, HandlerSpec(ChatRequest, crash))
    settings = replace(settings, mode="durable", max_deliver=3)
    async with running(settings) as app, HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
        with anyio.fail_after(20):
            outputs = [o async for o in bus.chat("poison")]
        counters = app.runners[Tag.CHAT].counters
        dead = await bus.nc.jsm().get_last_msg(settings.subjects.dead_stream, settings.subjects.dead(Tag.CHAT))
        backlog = await drained_backlog(bus, settings)

    assert len(outputs) == 1
    error = outputs[0]
    assert isinstance(error, Error) and error.code == ErrorCode.INTERNAL
    assert error.attempt == 3 and "gave up after 3 deliveries" in error.message
    assert counters.dead_lettered == 1 and counters.redelivered == 2
    assert dead.headers is not None and dead.headers[DEAD_DELIVERIES] == "3"
    assert "crashed" in dead.headers[DEAD_REASON]
    assert b'"poison"' in (dead.data or b"")
    assert backlog == 0, "the poison request left the work queue"


async def test_a_request_whose_consumers_never_finish_is_answered_when_jetstream_gives_up(
    settings: Settings, router: FakeRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Consumers that die mid-request look like this to JetStream: no ack, no heartbeat, redelivery after ack_wait.
    monkeypatch.setitem(HANDLERS, Tag.CHAT, HandlerSpec(ChatRequest, hang))
    monkeypatch.setattr(TagRunner, "_heartbeat", no_heartbeat)
    settings = replace(settings, mode="durable", max_deliver=2, ack_wait_s=1.0, shutdown_grace_s=0.5)
    async with running(settings) as app, HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
        with anyio.fail_after(20):
            outputs = [o async for o in bus.chat("never finishes")]
        await eventually(lambda: app.runners[Tag.CHAT].counters.dead_lettered == 1)
        dead = await bus.nc.jsm().get_last_msg(settings.subjects.dead_stream, settings.subjects.dead(Tag.CHAT))
        backlog = await drained_backlog(bus, settings)

    assert len(outputs) == 1
    error = outputs[0]
    assert isinstance(error, Error) and error.code == ErrorCode.INTERNAL
    assert "gave up after 2 deliveries" in error.message
    assert dead.headers is not None and "never finished" in dead.headers[DEAD_REASON]
    assert backlog == 0


def lose_the_first_ack(monkeypatch: pytest.MonkeyPatch) -> None:
    """As when a consumer dies between publishing the final output and acking, or the ack is lost."""
    acks: list[Delivery] = []
    real_ack = Delivery.ack

    async def ack(self: Delivery) -> None:
        acks.append(self)
        if len(acks) > 1:
            await real_ack(self)

    monkeypatch.setattr(Delivery, "ack", ack)


async def test_a_redelivery_of_a_request_already_answered_is_settled_without_running_it(
    settings: Settings, router: FakeRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    lose_the_first_ack(monkeypatch)
    settings = replace(settings, mode="durable", ack_wait_s=1.0)
    async with running(settings) as app, HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
        outputs = [o async for o in bus.chat("answer me once")]
        await eventually(lambda: app.runners[Tag.CHAT].counters.already_answered == 1, within=10)
        backlog = await drained_backlog(bus, settings)

    assert [type(o).__name__ for o in outputs][-1] == "ChatResult"
    assert len(router.requests) == 1, "the redelivery did not call the router again"
    assert backlog == 0


async def test_a_request_the_server_forgot_it_had_answered_is_settled_without_running_it(
    settings: Settings, router: FakeRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A SIGKILLed nats-server can lose recent consumer state: acks and delivery counts alike. The answered
    # request then comes back as a *first* delivery, only late; that lateness is what the runtime checks.
    lose_the_first_ack(monkeypatch)
    monkeypatch.setattr(Delivery, "attempt", property(lambda self: 1))
    monkeypatch.setattr(runner, "LATE_FIRST_DELIVERY_S", 0.5)
    settings = replace(settings, mode="durable", ack_wait_s=1.0)
    async with running(settings) as app, HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
        outputs = [o async for o in bus.chat("answer me once")]
        await eventually(lambda: app.runners[Tag.CHAT].counters.already_answered == 1, within=10)
        backlog = await drained_backlog(bus, settings)

    assert isinstance(outputs[-1], ChatResult)
    assert len(router.requests) == 1, "the late first delivery did not call the router again"
    assert backlog == 0


async def test_two_deliveries_running_at_once_answer_the_request_once(
    settings: Settings, router: FakeRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    second_started, first_answered = anyio.Event(), anyio.Event()

    async def overlapping(request: ChatRequest, ctx: Any) -> None:
        # Without heartbeats JetStream redelivers after the ack wait, while attempt 1 still runs.
        if ctx.attempt == 1:
            await second_started.wait()
            await chat.handle(request, ctx)
            first_answered.set()
        else:
            await ctx.chunk("attempt 2 started")
            second_started.set()
            await first_answered.wait()
            await chat.handle(request, ctx)

    monkeypatch.setitem(HANDLERS, Tag.CHAT, HandlerSpec(ChatRequest, overlapping))
    monkeypatch.setattr(TagRunner, "_heartbeat", no_heartbeat)
    inboxes = "_INBOX_SPIED"
    # A custom inbox prefix is a reply subject only once the operator allows it.
    settings = replace(settings, mode="durable", ack_wait_s=1.0, reply_subjects=(f"{inboxes}.>",))
    seen: list[Any] = []

    async def spy(msg: Msg) -> None:
        try:
            seen.append(JSON_CODEC.decode(msg.data, ChatOutput))
        except (msgspec.DecodeError, msgspec.ValidationError):
            pass  # a JetStream publish ack

    async with (
        running(settings) as app,
        HfBus.connect(settings.nats_url, prefix=settings.prefix, inbox_prefix=inboxes) as bus,
    ):
        await bus.nc.subscribe(f"{inboxes}.>", cb=spy)
        with anyio.fail_after(10):
            result = await bus.chat("answer me once").result()
        counters = app.runners[Tag.CHAT].counters
        await eventually(lambda: counters.requests == 2, within=10)  # the second delivery finished too
        await bus.nc.flush()
        kept = await bus.final(Tag.CHAT, result.id)

    finals = [o for o in seen if isinstance(o, ChatResult | Error)]
    assert len(router.requests) == 2, "both deliveries ran"
    assert [(type(f).__name__, f.attempt) for f in finals] == [("ChatResult", 1)], "one answer, by the first to finish"
    assert any(o.attempt == 2 for o in seen), "the second delivery had started streaming"
    assert result.attempt == 1, "the client takes the final of an earlier attempt after chunks of a later one"
    assert kept == result


async def test_giving_up_on_a_request_that_was_answered_leaves_no_dead_letter_and_no_second_answer(
    settings: Settings, router: FakeRouter, nc: NATS
) -> None:
    # JetStream's max-deliveries advisory can name a request whose answer went out but whose ack never held.
    settings = replace(settings, mode="durable")
    request_id = uuid.uuid4().hex
    listener = await nc.subscribe(settings.subjects.out(Tag.CHAT, request_id))
    async with running(settings) as app:
        ack = await nc.jetstream().publish(
            settings.subjects.request(Tag.CHAT), chat_payload(request_id), headers={"Nats-Msg-Id": request_id}
        )
        outputs = await collect(listener)
        runner = app.runners[Tag.CHAT]
        await runner.refusals.give_up(chat_payload(request_id), None, 3, "its consumer never finished it", ack.seq)
        await anyio.sleep(0.3)
        extra = listener.pending_msgs
        dead = (await nc.jsm().stream_info(settings.subjects.dead_stream)).state.messages

    assert isinstance(outputs[-1], ChatResult)
    assert extra == 0, "no second final output"
    assert dead == 0 and runner.counters.dead_lettered == 0
