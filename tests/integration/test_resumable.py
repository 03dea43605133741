"""Resumable outputs: a subscriber whose connection drops mid-stream gets every token exactly once when it is back."""

from __future__ import annotations

from dataclasses import replace

import anyio
import msgspec
import nats
import pytest

from schemas import ChatResult, Chunk, Error, ErrorCode, Tag
from services.bus.finals import KeptFinals
from services.bus.jetstream import ensure_finals_stream
from services.client import HfBus
from services.dev.fake_router import FakeRouter, expected_text
from services.settings import Mode, Settings
from tests.conftest import chat_payload, collect, running
from tests.integration.link import link_to

pytestmark = pytest.mark.integration


def port_of(settings: Settings) -> int:
    return int(settings.nats_url.rsplit(":", 1)[1])


# nats-py drops the cut connection's StreamWriter without closing it; the warning is about its socket, not ours.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("mode", ["core", "durable"])
async def test_a_subscriber_cut_off_mid_stream_gets_every_token_exactly_once(
    settings: Settings, router: FakeRouter, mode: Mode
) -> None:
    router.pace_s = 0.03  # 40 tokens over 1.2 s: the cut lands mid-stream
    settings = replace(settings, mode=mode)
    async with running(settings), link_to(port_of(settings)) as link:
        async with HfBus.connect(link.url, prefix=settings.prefix, mode=mode) as bus:
            stream = bus.chat("hello", model="org/model", max_tokens=40, resumable=True)
            deltas: list[str] = []
            seqs: list[int] = []
            with anyio.fail_after(30):
                async for output in stream:
                    if isinstance(output, Chunk):
                        deltas.append(output.delta)
                        seqs.append(output.seq)
                        if len(deltas) == 5:
                            await link.cut()
                            await anyio.sleep(0.5)  # tokens go on being published while it is away
                            link.mend()

    assert link.cuts == 1
    assert stream.result_value is not None and stream.error is None
    assert seqs == list(range(len(seqs))) and len(seqs) == 40
    assert "".join(deltas) == stream.result_value.text == expected_text([{"role": "user", "content": "hello"}], 40)


async def test_the_outputs_stay_in_the_stream_for_a_subscriber_that_comes_after_the_end(
    any_mode_settings: Settings, nc: nats.NATS
) -> None:
    settings = any_mode_settings
    async with running(settings):
        subject = settings.subjects.out(Tag.CHAT, "late-reader")
        live = await nc.subscribe(subject)
        await nc.publish(settings.subjects.request(Tag.CHAT), chat_payload("late-reader", resumable=True, max_tokens=3))
        outputs = await collect(live)
        # Someone who was not there at all reads the whole stream afterwards.
        kept = await nc.jetstream().subscribe(subject, stream=settings.subjects.out_stream, ordered_consumer=True)
        replayed = [await kept.next_msg(timeout=5) for _ in outputs]

    assert isinstance(outputs[0], Chunk) and isinstance(outputs[-1], ChatResult)
    assert [m.data for m in replayed] == [msgspec.json.encode(o) for o in outputs]


async def test_a_resumable_request_with_a_reply_subject_is_answered_there_and_kept_too(
    settings: Settings, nc: nats.NATS
) -> None:
    async with running(settings):
        inbox = nc.new_inbox()
        replies = await nc.subscribe(inbox)
        kept = await nc.jetstream().subscribe(
            settings.subjects.out(Tag.CHAT, "both"), stream=settings.subjects.out_stream, ordered_consumer=True
        )
        payload = chat_payload("both", resumable=True, max_tokens=2, reply_to=inbox)
        await nc.publish(settings.subjects.request(Tag.CHAT), payload)
        direct = await collect(replies)
        stored = [await kept.next_msg(timeout=5) for _ in direct]

    assert isinstance(direct[-1], ChatResult)
    assert [msgspec.json.decode(m.data) for m in stored] == [
        msgspec.json.decode(msgspec.json.encode(o)) for o in direct
    ]


async def test_a_deployment_that_keeps_no_outputs_refuses_a_resumable_request_by_name(
    settings: Settings, nc: nats.NATS, router: FakeRouter
) -> None:
    settings = replace(settings, resumable="off")
    async with running(settings):
        out = await nc.subscribe(settings.subjects.out(Tag.CHAT, "nope"))
        await nc.publish(settings.subjects.request(Tag.CHAT), chat_payload("nope", resumable=True))
        outputs = await collect(out)

    assert len(outputs) == 1 and isinstance(outputs[0], Error)
    assert outputs[0].code == ErrorCode.INVALID_REQUEST and "resumable" in outputs[0].message
    assert router.requests == []


async def test_runs_of_one_request_are_numbered_by_the_stream_not_by_delivery_counts(
    settings: Settings, nc: nats.NATS
) -> None:
    # The counter lives in the finals stream, so it survives what a crashed server forgets about deliveries.
    settings = replace(settings, mode="durable")
    await ensure_finals_stream(nc, settings)
    finals = KeptFinals(nc, settings)
    runs = [await finals.next_run(Tag.CHAT, "numbered") for _ in range(3)]
    async with anyio.create_task_group() as tg:
        concurrent: list[int] = []

        async def claim() -> None:
            concurrent.append(await finals.next_run(Tag.CHAT, "numbered"))

        for _ in range(4):
            tg.start_soon(claim)

    assert runs == [1, 2, 3]
    assert sorted(concurrent) == [4, 5, 6, 7]
