"""Durable intake across pull expiries: an idle consumer keeps a pull waiting on the server, so a request that
lands at any moment is delivered at once instead of waiting for the consumer to pull again."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import anyio
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import ConsumerInfo
from nats.js.manager import JetStreamManager

from schemas import ChatResult, Subjects, Tag
from services.client import HfBus
from services.settings import Settings
from tests.conftest import assert_well_formed, eventually, running

pytestmark = pytest.mark.integration

EXPIRIES = 3
"""Pull expiries the idle consumer goes through before the request: each one is a moment it could be left
with nothing waiting."""


async def test_an_idle_durable_consumer_keeps_a_pull_waiting_across_expiries(settings: Settings, nc: NATS) -> None:
    settings = replace(settings, mode="durable", tags=(Tag.CHAT,))
    stream, durable = settings.subjects.stream, Subjects.durable(Tag.CHAT)
    # Every pull the consumer sends passes this subject; its reply inbox then carries the pull's 408 expiries.
    pulls = await nc.subscribe(f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}")
    async with running(settings):
        first_pull = await pulls.next_msg(timeout=10)
        statuses = await nc.subscribe(first_pull.reply)
        jsm = nc.jsm()
        for _ in range(EXPIRIES):
            expired = await _next_expiry(statuses)
            # The moment a pull expires is the moment the old feed had nothing waiting: one must be there still.
            info = await jsm.consumer_info(stream, durable)
            assert info.num_waiting >= 1, f"no pull waiting after a pull expired ({expired.headers})"
        # Bridging an expiry costs a pull or two, never a loop of them.
        assert pulls.pending_msgs <= 3 * EXPIRIES, f"{pulls.pending_msgs} pulls over {EXPIRIES} expiries"

        async with HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
            outputs = [o async for o in bus.chat("after a long idle", model="org/model", max_tokens=4)]

    assert_well_formed(outputs)
    assert isinstance(outputs[-1], ChatResult)
    assert outputs[-1].usage.completion_tokens == 4


async def _next_expiry(statuses: Subscription) -> Msg:
    """The next 408 on the feed's inbox (heartbeats and other statuses are passed over)."""
    with anyio.fail_after(15):
        while True:
            msg = await statuses.next_msg(timeout=15)
            if msg.headers and msg.headers.get("Status") == "408":
                return msg


BACKLOG = 120
"""Requests stored before the consumer starts: many times the 16 a slice starts with, so the intake slices them."""


async def test_a_backlog_is_started_in_slices_and_each_request_is_answered_and_acked_once(
    settings: Settings, nc: NATS
) -> None:
    settings = replace(settings, mode="durable", tags=(Tag.CHAT,))
    stream, durable = settings.subjects.stream, Subjects.durable(Tag.CHAT)
    jsm = nc.jsm()
    async with running(settings):
        pass  # creates the stream and the durable consumer, then stops: the backlog is stored with nobody pulling
    async with HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
        answers: list[list[object]] = []

        async def ask(i: int) -> None:
            answers.append([o async for o in bus.chat(f"backlog {i}", model="org/model", max_tokens=3)])

        async with anyio.create_task_group() as tg:
            for i in range(BACKLOG):
                tg.start_soon(ask, i)
            info = await _consumer_info(jsm, stream, durable, until=lambda i: i.num_pending == BACKLOG)
            async with running(settings) as app:
                await eventually(lambda: len(answers) == BACKLOG, within=30)
                counters = app.runners[Tag.CHAT].counters
                assert counters.handled == BACKLOG and counters.redelivered == 0
                # Acks go out without waiting for a confirmation: all of them still land.
                info = await _consumer_info(jsm, stream, durable, until=lambda i: i.num_ack_pending == 0)
    assert info.num_pending == 0 and info.num_redelivered == 0
    for outputs in answers:
        assert_well_formed(outputs)
        assert isinstance(outputs[-1], ChatResult)


async def _consumer_info(
    jsm: JetStreamManager, stream: str, durable: str, *, until: Callable[[ConsumerInfo], bool]
) -> ConsumerInfo:
    for _ in range(200):
        info: ConsumerInfo = await jsm.consumer_info(stream, durable)
        if until(info):
            return info
        await anyio.sleep(0.05)
    raise AssertionError(f"the consumer never got there: {info}")
