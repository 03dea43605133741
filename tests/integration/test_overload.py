"""A core consumer past its slots and backlog refuses a request at once with a retryable error, instead of
dropping it unseen (where nats-py would) and leaving its caller to time out."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from nats.aio.client import Client as NATS

from schemas import ChatResult, Error, ErrorCode, Tag
from services.bus import connection
from services.consumer import refusals
from services.consumer.records import Counters
from services.dev.fake_router import FakeRouter
from services.settings import Settings
from tests.conftest import chat_payload, collect, eventually, running

pytestmark = pytest.mark.integration

BACKLOG = 3
LATE = 4
"""Requests sent while the one slot is busy and the backlog is full."""


async def test_requests_past_the_backlog_get_a_retryable_rate_limited_error_and_the_rest_are_answered(
    settings: Settings, router: FakeRouter, nc: NATS, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    ids, finals, counters = await _overload(settings, router, nc, monkeypatch)

    answered, refused = finals[: 1 + BACKLOG], finals[1 + BACKLOG :]
    assert all(isinstance(f, ChatResult) for f in answered), answered
    for request_id, final in zip(ids[1 + BACKLOG :], refused, strict=True):
        assert isinstance(final, Error) and final.id == request_id
        assert final.code == ErrorCode.RATE_LIMITED and final.retryable
        assert "at capacity" in final.message and f"{BACKLOG} requests wait for a slot" in final.message
    assert counters.rejected == LATE and counters.handled == 1 + BACKLOG
    # What `$SRV.STATS` reports: every request, and as errors only the refused ones.
    assert counters.requests == len(ids) and counters.errors == LATE
    # One line for the burst of refusals, not one per request.
    overload_lines = [r for r in caplog.records if "past the backlog" in r.getMessage()]
    assert len(overload_lines) == 1, [r.getMessage() for r in overload_lines]


async def test_past_the_refusals_under_way_a_request_is_dropped_unanswered_and_counted(
    settings: Settings, router: FakeRouter, nc: NATS, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(refusals, "REFUSING_AT_MOST", 0)  # every refusal is one too many
    ids, finals, counters = await _overload(settings, router, nc, monkeypatch)

    assert all(isinstance(f, ChatResult) for f in finals[: 1 + BACKLOG]), finals
    # Refusals go out at once, long before the held requests are answered: by now they would have come.
    assert finals[1 + BACKLOG :] == [None] * LATE
    assert counters.rejected == 0 and counters.handled == 1 + BACKLOG
    assert counters.requests == len(ids) and counters.errors == LATE
    assert any("1 of them dropped unanswered" in r.getMessage() for r in caplog.records)


async def _overload(
    settings: Settings, router: FakeRouter, nc: NATS, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[str], list[Any], Counters]:
    """One slot, a backlog of 2: one request holds the slot, then `BACKLOG + LATE` more arrive at once. The final
    output of each (None for one that got nothing by the time the held ones were answered), and the counters."""
    monkeypatch.setattr(connection, "CORE_BACKLOG", BACKLOG - 1)  # the hand-off holds slots + backlog: 1 + 2
    router.first_token_s = 1.0  # the first request holds the one slot while the others arrive
    settings = replace(settings, mode="core", tags=(Tag.CHAT,), concurrency=1, first_token_timeout_s=5.0)
    subject = settings.subjects.request(Tag.CHAT)
    ids = [f"overload-{i}" for i in range(1 + BACKLOG + LATE)]
    async with running(settings) as app:
        inboxes = [await nc.subscribe(nc.new_inbox()) for _ in ids]
        await nc.publish(subject, chat_payload(ids[0], model="org/model", max_tokens=2), reply=inboxes[0].subject)
        await eventually(lambda: router.in_flight == 1)
        for request_id, inbox in zip(ids[1:], inboxes[1:], strict=True):
            await nc.publish(subject, chat_payload(request_id, model="org/model", max_tokens=2), reply=inbox.subject)
        held = [(await collect(inbox, within=15))[-1] for inbox in inboxes[: 1 + BACKLOG]]
        await nc.flush()
        late = [(await collect(inbox))[-1] if inbox.pending_msgs else None for inbox in inboxes[1 + BACKLOG :]]
        counters = app.runners[Tag.CHAT].counters
    return ids, held + late, counters
