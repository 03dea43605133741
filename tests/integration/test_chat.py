"""Chat and vision chat end to end: a real nats-server, the consumers, the fake router."""

from __future__ import annotations

import uuid
from dataclasses import replace

import anyio
import msgspec
import nats
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError

from schemas import ChatResult, Chunk, Error, ErrorCode, Tag, TokenUsage
from services.client import FINAL_RECHECK_S, HfBus
from services.client import stream as stream_module
from services.dev.fake_router import FakeRouter, Fault, expected_text
from services.settings import Settings
from tests.conftest import assert_well_formed, chat_payload, collect, eventually, running, send_raw

pytestmark = pytest.mark.integration


async def test_streamed_chat_arrives_in_order_and_the_result_joins_the_deltas(
    any_mode_settings: Settings, router: FakeRouter
) -> None:
    settings = any_mode_settings
    async with running(settings), HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
        assert bus.mode == settings.mode
        outputs = [o async for o in bus.chat("hello bus", model="org/model", max_tokens=40)]

    assert_well_formed(outputs)
    chunks = [o for o in outputs if isinstance(o, Chunk)]
    result = outputs[-1]
    assert isinstance(result, ChatResult)
    assert chunks, "a streamed answer arrives as chunks"
    assert result.text == "".join(c.delta for c in chunks)
    assert result.text == expected_text([{"role": "user", "content": "hello bus"}], 40)
    assert result.finish_reason == "length"
    assert result.usage.completion_tokens == 40
    assert result.model == "org/model"
    assert result.provider == "fake-provider"
    assert {o.attempt for o in outputs} == {1}


async def test_no_stream_sends_only_the_result(settings: Settings, router: FakeRouter) -> None:
    async with running(settings), HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
        outputs = [o async for o in bus.chat("hi", model="org/model:groq", stream=False)]

    assert len(outputs) == 1
    result = outputs[0]
    assert isinstance(result, ChatResult)
    assert result.text == expected_text([{"role": "user", "content": "hi"}], 16)
    assert result.provider == "groq"
    assert result.usage.total_tokens > 0
    assert router.requests[-1].json()["stream"] is False


async def test_the_router_gets_the_model_verbatim_first_and_vision_parts_untouched(
    settings: Settings, router: FakeRouter, nc: NATS
) -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is in this picture?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}},
                {"type": "image_url", "image_url": {"url": "https://example.org/cat.jpg"}},
            ],
        },
    ]
    async with running(settings):
        outputs = await send_raw(
            nc,
            f"{settings.prefix}.pic2text",
            chat_payload(model="Qwen/Qwen2.5-VL-7B-Instruct:fastest", messages=messages, temperature=0.2, seed=7),
        )

    assert isinstance(outputs[-1], ChatResult)
    sent = router.requests[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"].startswith("Bearer hf_")
    assert sent.body.startswith(b'{"model":"Qwen/Qwen2.5-VL-7B-Instruct:fastest"')
    body = sent.json()
    assert body["messages"] == messages
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["temperature"] == 0.2 and body["seed"] == 7
    assert "top_p" not in body  # absent fields are not sent as null


async def test_reasoning_deltas_pass_through(settings: Settings, router: FakeRouter) -> None:
    async with running(settings), HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
        outputs = [o async for o in bus.chat("think", model="deepseek-ai/DeepSeek-R1")]

    assert_well_formed(outputs)
    reasoning = "".join(o.reasoning or "" for o in outputs if isinstance(o, Chunk))
    assert reasoning.strip()
    result = outputs[-1]
    assert isinstance(result, ChatResult)
    assert result.reasoning == reasoning
    assert result.text == expected_text([{"role": "user", "content": "think"}], 16)


async def test_tool_call_fragments_pass_through_and_are_assembled_in_the_result(
    settings: Settings, router: FakeRouter
) -> None:
    tools = [{"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}]
    async with running(settings), HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
        outputs = [o async for o in bus.chat("look it up", model="org/model", tools=tools, tool_choice="auto")]

    assert_well_formed(outputs)
    fragments = [f for o in outputs if isinstance(o, Chunk) for f in (o.tool_calls or [])]
    assert len(fragments) == 3
    result = outputs[-1]
    assert isinstance(result, ChatResult)
    assert result.finish_reason == "tool_calls"
    assert result.tool_calls == [
        {"id": "call_1", "type": "function", "function": {"name": "search", "arguments": '{"q": "x"}'}}
    ]
    assert router.requests[-1].json()["tools"] == tools


@pytest.mark.parametrize(
    ("status", "code", "retryable", "calls"),
    [
        (401, ErrorCode.UNAUTHORIZED, False, 1),
        (402, ErrorCode.PAYMENT_REQUIRED, False, 1),
        (404, ErrorCode.UNKNOWN_MODEL, False, 1),
        (422, ErrorCode.INVALID_REQUEST, False, 1),
        (429, ErrorCode.RATE_LIMITED, True, 4),
        (500, ErrorCode.UPSTREAM_UNAVAILABLE, True, 4),
        (502, ErrorCode.UPSTREAM_UNAVAILABLE, True, 4),
        # The model-loading estimate (20 s) is longer than retry_max: fail at once, retryable, instead of waiting.
        (503, ErrorCode.UPSTREAM_UNAVAILABLE, True, 1),
    ],
)
async def test_an_upstream_failure_becomes_its_error_code_after_bounded_retries(
    settings: Settings, router: FakeRouter, status: int, code: ErrorCode, retryable: bool, calls: int
) -> None:
    router.faults.extend(Fault.status(status, retry_after=0 if status == 429 else None) for _ in range(5))
    settings = replace(settings, max_retries=3)
    async with running(settings), HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
        outputs = [o async for o in bus.chat("hi", model="org/model")]

    assert len(outputs) == 1
    error = outputs[0]
    assert isinstance(error, Error)
    assert error.code == code
    assert error.status == status
    assert error.retryable is retryable
    assert f"HTTP {status}" in error.message
    assert len(router.requests) == calls


async def test_a_transient_failure_is_retried_before_anything_was_published(
    settings: Settings, router: FakeRouter
) -> None:
    router.faults.extend([Fault.status(429, retry_after=0), Fault.status(502)])
    async with running(settings), HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
        outputs = [o async for o in bus.chat("hi", model="org/model")]

    assert isinstance(outputs[-1], ChatResult)
    assert len(router.requests) == 3


async def test_an_error_event_mid_stream_ends_the_stream_without_a_retry(
    settings: Settings, router: FakeRouter
) -> None:
    router.pace_s = 0.01  # so the tokens before the error event are published before it arrives
    router.faults.append(Fault.error_event(after_tokens=3, error_type="overloaded"))
    async with running(settings), HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
        outputs = [o async for o in bus.chat("hi", model="org/model")]

    assert_well_formed(outputs)
    assert (
        "".join(o.delta for o in outputs if isinstance(o, Chunk)).split()
        == expected_text([{"role": "user", "content": "hi"}], 3).split()
    )
    error = outputs[-1]
    assert isinstance(error, Error) and error.code == ErrorCode.UPSTREAM_UNAVAILABLE
    assert "overloaded" in error.message
    assert len(router.requests) == 1


async def test_a_dropped_connection_after_tokens_is_an_error_not_a_retry(
    settings: Settings, router: FakeRouter
) -> None:
    router.pace_s = 0.01
    router.faults.append(Fault.drop(after_tokens=2))
    async with running(settings), HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
        outputs = [o async for o in bus.chat("hi", model="org/model")]

    assert_well_formed(outputs)
    error = outputs[-1]
    assert isinstance(error, Error) and error.code == ErrorCode.UPSTREAM_UNAVAILABLE
    assert len(router.requests) == 1


@pytest.mark.parametrize("fault", [Fault.drop(after_tokens=0), Fault.error_event(after_tokens=0)])
async def test_a_failure_before_any_token_is_retried(settings: Settings, router: FakeRouter, fault: Fault) -> None:
    router.faults.append(fault)
    async with running(settings), HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
        outputs = [o async for o in bus.chat("hi", model="org/model")]

    assert isinstance(outputs[-1], ChatResult)
    assert len(router.requests) == 2


@pytest.mark.parametrize("after_tokens", [0, 3])
async def test_a_stalled_stream_ends_with_timeout_and_the_upstream_is_closed(
    settings: Settings, router: FakeRouter, after_tokens: int
) -> None:
    router.faults.append(Fault.stall(after_tokens=after_tokens, seconds=60))
    settings = replace(settings, first_token_timeout_s=0.5, idle_timeout_s=0.5, max_retries=0)
    async with running(settings), HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
        outputs = [o async for o in bus.chat("hi", model="org/model")]
        await eventually(lambda: router.disconnects >= 1)

    error = outputs[-1]
    assert isinstance(error, Error) and error.code == ErrorCode.TIMEOUT
    assert ("first token" if after_tokens == 0 else "between tokens") in error.message
    chunks = [o for o in outputs if isinstance(o, Chunk)]
    assert bool(chunks) is bool(after_tokens), "the tokens before the stall were published, and only those"
    assert error.usage == TokenUsage(completion_tokens=after_tokens, total_tokens=after_tokens)
    assert router.in_flight == 0


async def test_cancel_closes_the_upstream_stream_and_ends_with_cancelled(
    any_mode_settings: Settings, router: FakeRouter
) -> None:
    router.pace_s = 0.05
    settings = any_mode_settings
    async with running(settings), HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
        stream = bus.chat("a long answer please", model="qwen2.5-coder-32b", max_tokens=500)
        outputs = []
        async for output in stream:
            outputs.append(output)
            if len(outputs) == 2:
                await stream.cancel()
        await eventually(lambda: router.disconnects >= 1)

    assert_well_formed(outputs)
    error = outputs[-1]
    assert isinstance(error, Error) and error.code == ErrorCode.CANCELLED
    assert router.completed_streams == 0
    # The paced router streams one token per event and was cut off long before max_tokens.
    streamed = "".join(o.delta for o in outputs if isinstance(o, Chunk))
    assert error.usage is not None
    assert len(streamed.split()) <= error.usage.completion_tokens < 500, "the usage so far: what was read"
    assert error.cost_usd == round(error.usage.completion_tokens * 0.8 / 1e6, 8), "priced at the catalog's rate"


async def test_a_request_without_a_reply_subject_is_answered_on_the_out_subject(
    settings: Settings, router: FakeRouter, nc: NATS
) -> None:
    request_id = uuid.uuid4().hex
    listener = await nc.subscribe(f"{settings.prefix}.out.chat.{request_id}")
    async with running(settings):
        await nc.publish(f"{settings.prefix}.chat", chat_payload(request_id))
        outputs = await collect(listener)

    assert_well_formed(outputs)
    assert isinstance(outputs[-1], ChatResult)
    assert {o.id for o in outputs} == {request_id}


async def test_a_msgpack_request_gets_msgpack_replies(settings: Settings, router: FakeRouter, nc: NATS) -> None:
    payload = msgspec.msgpack.encode({"id": "mp-1", "messages": [{"role": "user", "content": "hi"}]})
    inbox = nc.new_inbox()
    subscription = await nc.subscribe(inbox)
    async with running(settings):
        await nc.publish(
            f"{settings.prefix}.chat", payload, reply=inbox, headers={"Content-Type": "application/msgpack"}
        )
        first = await subscription.next_msg(timeout=5)
        rest = await collect(subscription)

    assert first.headers == {"Content-Type": "application/msgpack"}
    assert msgspec.msgpack.decode(first.data)["id"] == "mp-1"
    assert isinstance(rest[-1], ChatResult)


async def test_two_consumer_instances_share_the_load(settings: Settings, router: FakeRouter) -> None:
    router.pace_s = 0.002
    async with running(settings) as first, running(settings) as second:
        async with HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
            results: list[object] = []

            async def one(i: int) -> None:
                outputs = [o async for o in bus.chat(f"request {i}", model="org/model")]
                results.append(outputs[-1])

            async with anyio.create_task_group() as tg:
                for i in range(40):
                    tg.start_soon(one, i)

    assert len(results) == 40 and all(isinstance(r, ChatResult) for r in results)
    served = [first.runners[Tag.CHAT].counters.handled, second.runners[Tag.CHAT].counters.handled]
    assert sum(served) == 40
    assert min(served) > 0, f"one instance served everything: {served}"


async def test_a_durable_request_waits_for_a_consumer_that_restarts(settings: Settings, router: FakeRouter) -> None:
    settings = replace(settings, mode="durable")
    async with running(settings), HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
        assert isinstance([o async for o in bus.chat("before")][-1], ChatResult)

    async with HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
        stream = bus.chat("while no consumer runs", model="org/model")
        outputs: list[object] = []

        async def read() -> None:
            outputs.extend([o async for o in stream])

        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            await anyio.sleep(0.3)  # the request is stored while nobody consumes it
            assert outputs == []
            async with running(settings):
                await eventually(lambda: bool(outputs) and isinstance(outputs[-1], ChatResult | Error), within=10)

    assert isinstance(outputs[-1], ChatResult)


async def test_a_durable_request_published_twice_runs_once(settings: Settings, router: FakeRouter, nc: NATS) -> None:
    settings = replace(settings, mode="durable")
    request_id = uuid.uuid4().hex
    listener = await nc.subscribe(f"{settings.prefix}.out.chat.{request_id}")
    async with running(settings):
        js = nc.jetstream()
        for _ in range(2):
            await js.publish(f"{settings.prefix}.chat", chat_payload(request_id), headers={"Nats-Msg-Id": request_id})
        outputs = await collect(listener)
        await anyio.sleep(0.3)
        extra = listener.pending_msgs

    assert isinstance(outputs[-1], ChatResult)
    assert extra == 0
    assert len(router.requests) == 1


async def test_an_id_reused_after_the_dedupe_window_is_a_new_request_with_its_own_answer(
    settings: Settings, router: FakeRouter
) -> None:
    # The kept final of the first request must neither silence the second nor be mistaken for its answer.
    settings = replace(settings, mode="durable", dedupe_window_s=0.2)
    request_id = uuid.uuid4().hex
    async with running(settings), HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
        first = await bus.chat("first question", request_id=request_id).result()
        await anyio.sleep(0.6)  # past the dedupe window, and past the purge of its ids that trails it
        with anyio.fail_after(10):
            second = await bus.chat("second question", request_id=request_id).result()
        kept = await bus.final(Tag.CHAT, request_id)

    assert len(router.requests) == 2
    assert "first question" in first.text and "second question" in second.text
    assert kept == second


async def test_a_slow_request_reusing_an_id_is_not_answered_with_its_predecessors_kept_final(
    settings: Settings, router: FakeRouter
) -> None:
    # The client looks at the kept finals after two seconds of silence; the one kept there answers another message.
    settings = replace(settings, mode="durable", dedupe_window_s=0.2, first_token_timeout_s=10.0)
    request_id = uuid.uuid4().hex
    async with running(settings), HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
        await bus.chat("first question", request_id=request_id).result()
        await anyio.sleep(0.6)  # past the dedupe window, and past the purge of its ids that trails it
        router.faults.append(Fault.stall(after_tokens=0, seconds=FINAL_RECHECK_S + 1))
        with anyio.fail_after(15):
            second = await bus.chat("second question", request_id=request_id).result()

    assert "second question" in second.text


async def test_a_client_connected_before_the_durable_consumers_started_still_gets_its_answer(
    settings: Settings, router: FakeRouter
) -> None:
    # The client chose core mode (no stream yet); the consumers then create the stream that captures `ai.chat`.
    settings = replace(settings, mode="durable")
    async with HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus, running(settings):
        assert bus.mode == "core"
        with anyio.fail_after(10):
            result = await bus.chat("hi").result()

    assert isinstance(result, ChatResult) and "hi" in result.text


async def test_a_durable_final_output_missed_by_its_subscriber_is_kept_for_it(
    settings: Settings, router: FakeRouter, nc: NATS
) -> None:
    settings = replace(settings, mode="durable")
    request_id = uuid.uuid4().hex
    async with running(settings) as app, HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
        # Outputs sent to an inbox nobody listens to, as while a subscriber is reconnecting.
        payload = chat_payload(request_id, reply_to="_INBOX.away")
        await nc.jetstream().publish(f"{settings.prefix}.chat", payload, headers={"Nats-Msg-Id": request_id})
        await eventually(lambda: app.runners[Tag.CHAT].counters.handled == 1)
        kept = await bus.final(Tag.CHAT, request_id)

    assert isinstance(kept, ChatResult) and kept.id == request_id
    assert kept.text == expected_text([{"role": "user", "content": "hi"}], 16)


async def test_a_kept_final_of_a_msgpack_request_is_read_back_in_msgpack(
    settings: Settings, router: FakeRouter, nc: NATS
) -> None:
    settings = replace(settings, mode="durable")
    request_id = uuid.uuid4().hex
    body = {"id": request_id, "messages": [{"role": "user", "content": "hi"}], "reply_to": "_INBOX.away"}
    headers = {"Nats-Msg-Id": request_id, "Content-Type": "application/msgpack"}
    async with running(settings) as app, HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
        await nc.jetstream().publish(f"{settings.prefix}.chat", msgspec.msgpack.encode(body), headers=headers)
        await eventually(lambda: app.runners[Tag.CHAT].counters.handled == 1)
        kept = await bus.final(Tag.CHAT, request_id)

    assert isinstance(kept, ChatResult) and kept.id == request_id


async def test_cancelling_an_unknown_or_finished_request_is_harmless(settings: Settings, router: FakeRouter) -> None:
    async with running(settings) as app, HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
        finished = bus.chat("done already")
        first = await finished.result()
        await finished.cancel()
        await bus.nc.publish(f"{settings.prefix}.cancel.never-seen-id", b"")
        again = await bus.chat("still serving").result()
        counters = app.runners[Tag.CHAT].counters

    assert isinstance(first, ChatResult) and isinstance(again, ChatResult)
    assert counters.handled == 2 and counters.failed == 0


async def test_a_stream_waiting_for_its_outputs_ends_when_its_connection_closes(settings: Settings) -> None:
    # A subscriber that takes the request and never answers: the stream waits on its inbox (first_timeout 120 s).
    nc = await nats.connect(settings.nats_url)
    taken = anyio.Event()

    async def take(_msg: Msg) -> None:
        taken.set()

    await nc.subscribe(settings.subjects.request(Tag.CHAT), cb=take)
    bus = HfBus(nc, settings.subjects, "core")
    failure: BaseException | None = None

    async def wait_for_answer() -> None:
        nonlocal failure
        try:
            await bus.chat("never answered", first_timeout=120.0).result()
        except Exception as exc:
            failure = exc

    with anyio.fail_after(10):  # far below first_timeout: the close, not a timeout, ends the wait
        async with anyio.create_task_group() as tg:
            tg.start_soon(wait_for_answer)
            await taken.wait()
            await nc.close()
    assert isinstance(failure, ConnectionClosedError)


async def test_a_durable_stream_that_fell_behind_its_inbox_still_ends_with_its_kept_final(
    settings: Settings, router: FakeRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A reader that stops reading while its answer streams in: past the inbox's capacity outputs are dropped (as
    # nats-py drops a slow subscription's), the final among them, and the stream fetches the kept final instead.
    monkeypatch.setattr(stream_module, "INBOX_CAPACITY", 4)
    router.pace_s = 0.005  # a token per read: one chunk output per token
    settings = replace(settings, mode="durable")
    prompt = "a reader that falls behind"
    async with running(settings) as app, HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
        keeping_up = [o async for o in bus.chat(prompt, model="org/model", max_tokens=30)]
        outputs = bus.chat(prompt, model="org/model", max_tokens=30)
        iterator = aiter(outputs)
        falling_behind = [await anext(iterator)]
        await eventually(lambda: app.runners[Tag.CHAT].counters.handled == 2)  # answered while nobody read
        falling_behind += [o async for o in iterator]

    # The same answer arrives as 30 chunks to a reader that keeps up ...
    assert sum(isinstance(o, Chunk) for o in keeping_up) == 30
    # ... and to one that fell behind, as the chunks its inbox held and then the kept final, whole.
    chunks = [o for o in falling_behind if isinstance(o, Chunk)]
    assert len(chunks) <= 1 + 4, f"{len(chunks)} chunks: the inbox held more than its capacity"
    assert all(a.seq < b.seq for a, b in zip(chunks, chunks[1:], strict=False))
    result, reference = falling_behind[-1], keeping_up[-1]
    assert isinstance(result, ChatResult) and isinstance(reference, ChatResult)
    assert result.usage.completion_tokens == 30
    assert result.text == reference.text == expected_text([{"role": "user", "content": prompt}], 30)
