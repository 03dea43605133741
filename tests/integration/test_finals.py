"""The kept finals (durable mode): one answer per request message, whatever happens around its claim."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

import anyio
import msgspec
import pytest
from nats.aio.client import Client as NATS

from schemas import ChatResult, Chunk, Error, ErrorCode, Tag
from schemas.subjects import REQUEST_SEQ
from services.bus.finals import KeptFinals
from services.bus.jetstream import ensure_finals_stream
from services.client import HfBus
from services.dev.fake_router import FakeRouter, Fault
from services.settings import Settings
from tests.conftest import eventually, running

pytestmark = pytest.mark.integration


@pytest.fixture
async def finals(settings: Settings, nc: NATS) -> KeptFinals:
    durable = replace(settings, mode="durable")
    await ensure_finals_stream(nc, durable)
    return KeptFinals(nc, durable)


async def kept_for(nc: NATS, settings: Settings, request_id: str) -> tuple[bytes, str | None]:
    kept = await nc.jsm().get_last_msg(settings.subjects.finals_stream, settings.subjects.final(Tag.CHAT, request_id))
    return kept.data or b"", (kept.headers or {}).get(REQUEST_SEQ)


async def test_the_first_claim_of_a_request_message_wins_and_a_second_delivery_stays_silent(
    finals: KeptFinals, nc: NATS, settings: Settings
) -> None:
    first = await finals.claim(Tag.CHAT, "r1", 7, b"first answer", None)
    second = await finals.claim(Tag.CHAT, "r1", 7, b"second answer", None)

    assert (first, second) == (True, False)
    assert await kept_for(nc, settings, "r1") == (b"first answer", "7")
    assert await finals.answered(Tag.CHAT, "r1", 7)


async def test_an_id_reused_by_a_newer_message_replaces_the_kept_final_but_an_older_one_does_not(
    finals: KeptFinals, nc: NATS, settings: Settings
) -> None:
    assert await finals.claim(Tag.CHAT, "r2", 3, b"old request", None)
    assert await finals.claim(Tag.CHAT, "r2", 9, b"new request", None), "a newer message answers"
    assert await kept_for(nc, settings, "r2") == (b"new request", "9")

    # The older message finishing late (a slow job whose client resent) is answered, but unkept.
    assert await finals.claim(Tag.CHAT, "r2", 5, b"late old request", None)
    assert await kept_for(nc, settings, "r2") == (b"new request", "9")
    assert await finals.answered(Tag.CHAT, "r2", 9)
    assert not await finals.answered(Tag.CHAT, "r2", 5)


def slow_claims(monkeypatch: pytest.MonkeyPatch, seconds: float) -> anyio.Event:
    """Every store of a final output takes `seconds` longer, as while JetStream elects a leader; the event is set
    when the first one starts."""
    claiming = anyio.Event()
    real_claim = KeptFinals.claim

    async def claim(self: KeptFinals, *args: Any) -> bool:
        claiming.set()
        await anyio.sleep(seconds)
        return await real_claim(self, *args)

    monkeypatch.setattr(KeptFinals, "claim", claim)
    return claiming


@pytest.mark.parametrize("cut", ["cancel", "shutdown"])
async def test_a_cancel_or_shutdown_while_the_final_output_is_being_kept_does_not_lose_it(
    settings: Settings, router: FakeRouter, monkeypatch: pytest.MonkeyPatch, cut: Literal["cancel", "shutdown"]
) -> None:
    claiming = slow_claims(monkeypatch, 1.0)
    settings = replace(settings, mode="durable", shutdown_grace_s=0.2)
    async with running(settings) as app, HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
        stream = bus.chat("answer me")

        async def cut_it() -> None:
            await claiming.wait()
            if cut == "cancel":
                await stream.cancel()
            else:
                app.stop()

        async with anyio.create_task_group() as tg:
            tg.start_soon(cut_it)
            with anyio.fail_after(10):
                result = await stream.result()
        kept = await bus.final(Tag.CHAT, result.id)
        await eventually(lambda: app.runners[Tag.CHAT].counters.requests == 1)

    assert isinstance(result, ChatResult) and "answer me" in result.text
    assert kept == result


async def test_a_request_ending_in_an_error_stays_ours_while_its_error_is_being_kept(
    settings: Settings, router: FakeRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow_claims(monkeypatch, 2.0)  # twice the ack wait: only heartbeats keep JetStream from redelivering meanwhile
    router.faults.append(Fault.status(402))
    settings = replace(settings, mode="durable", ack_wait_s=1.0)
    async with running(settings) as app, HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
        with anyio.fail_after(10):
            outputs = [o async for o in bus.chat("answer me")]
        await anyio.sleep(1.5)  # a redelivery would have started by now
        counters = app.runners[Tag.CHAT].counters

    assert [type(o).__name__ for o in outputs] == ["Error"]
    assert len(router.requests) == 1 and counters.redelivered == 0


async def test_without_jetstream_for_the_ack_wait_a_final_output_is_published_unkept(
    settings: Settings, nc: NATS, caplog: pytest.LogCaptureFixture
) -> None:
    # No finals stream at all: every store fails as during a long outage; answering beats staying silent.
    finals = KeptFinals(nc, replace(settings, mode="durable", ack_wait_s=0.5))
    with anyio.fail_after(5):
        publish = await finals.claim(Tag.CHAT, "r3", 1, b"answer", None)

    assert publish is True
    assert any("publishing it unkept" in r.getMessage() for r in caplog.records)


async def test_the_client_takes_a_kept_final_only_for_the_id_and_request_message_it_asked_about(
    finals: KeptFinals, nc: NATS, settings: Settings
) -> None:
    def result_for(request_id: str) -> bytes:
        return msgspec.json.encode(
            ChatResult(id=request_id, seq=0, text=f"answer of {request_id}", finish_reason="stop", model="m")
        )

    # Kept under r3's subject, but another request's answer (as a hostile reply subject once could write it).
    assert await finals.claim(Tag.CHAT, "r3", 4, result_for("someone-else"), None)
    assert await finals.claim(Tag.CHAT, "r4", 4, result_for("r4"), None)

    async with HfBus.connect(settings.nats_url, prefix=settings.prefix, mode="durable") as bus:
        forged = await bus.final(Tag.CHAT, "r3", request_seq=4)
        own = await bus.final(Tag.CHAT, "r4", request_seq=4)
        older = await bus.final(Tag.CHAT, "r4", request_seq=5)
        unpinned = await bus.final(Tag.CHAT, "r4")

    assert forged is None
    assert isinstance(own, ChatResult) and own.text == "answer of r4"
    assert older is None, "the final of another message with the same id is not this request's answer"
    assert isinstance(unpinned, ChatResult) and unpinned.id == "r4"


async def test_a_live_output_of_another_request_on_the_inbox_neither_feeds_nor_ends_the_stream(
    settings: Settings, nc: NATS, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with HfBus.connect(settings.nats_url, prefix=settings.prefix, mode="core") as bus:
        inbox = bus.nc.new_inbox()
        monkeypatch.setattr(bus.nc, "new_inbox", lambda: inbox)
        stream = bus.chat("hi", request_id="mine")
        # On the client's own connection: the server then takes this SUB before the request's PUB, so the
        # request always has a responder (another connection's SUB may not be in place yet under load).
        request = await bus.nc.subscribe(settings.subjects.request(Tag.CHAT))
        await bus.nc.flush()
        async with anyio.create_task_group() as tg:
            tg.start_soon(stream.result)
            await request.next_msg(timeout=10)  # the client is listening on its inbox now
            forged = Error(id="theirs", seq=0, code=ErrorCode.CANCELLED, message="forged", retryable=False)
            await nc.publish(inbox, msgspec.json.encode(forged))
            await nc.publish(inbox, msgspec.json.encode(Chunk(id="theirs", seq=0, delta="forged ")))
            await nc.publish(inbox, msgspec.json.encode(Chunk(id="mine", seq=0, delta="real")))
            await nc.publish(
                inbox, msgspec.json.encode(ChatResult(id="mine", seq=1, text="real", finish_reason="stop", model="m"))
            )

    assert stream.error is None
    assert stream.result_value is not None and stream.result_value.text == "real"
