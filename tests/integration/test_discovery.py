"""`nats micro`-style discovery: PING, INFO and STATS answered by every consumer process, in both modes."""

from __future__ import annotations

import orjson
import pytest
from nats.aio.client import Client as NATS

from services import __version__
from services.client import HfBus
from services.dev.fake_router import FakeRouter
from services.settings import Settings
from tests.conftest import running, send_raw

pytestmark = pytest.mark.integration


async def gather(nc: NATS, subject: str, count: int) -> list[dict[str, object]]:
    """Every answer to one discovery request (several instances answer the same one)."""
    inbox = nc.new_inbox()
    subscription = await nc.subscribe(inbox)
    await nc.publish(subject, b"", reply=inbox)
    answers = [orjson.loads((await subscription.next_msg(timeout=5)).data) for _ in range(count)]
    await subscription.unsubscribe()
    return answers


async def test_every_instance_answers_ping_info_and_stats_with_per_endpoint_counts(
    any_mode_settings: Settings, router: FakeRouter, nc: NATS
) -> None:
    settings = any_mode_settings
    async with running(settings), running(settings):
        async with HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
            for _ in range(3):
                await bus.chat("hi").result()
        if settings.mode == "core":
            await send_raw(nc, f"{settings.prefix}.chat", b"not json")
        pings = await gather(nc, "$SRV.PING", 2)
        infos = await gather(nc, "$SRV.INFO.hfbus", 2)
        stats = await gather(nc, "$SRV.STATS.hfbus", 2)
        one = await gather(nc, f"$SRV.PING.hfbus.{pings[0]['id']}", 1)

    assert {p["type"] for p in pings} == {"io.nats.micro.v1.ping_response"}
    assert {p["name"] for p in pings} == {"hfbus"} and {p["version"] for p in pings} == {__version__}
    assert len({p["id"] for p in pings}) == 2, "each instance has its own id"
    assert one[0]["id"] == pings[0]["id"], "an instance answers on its own id"
    for info in infos:
        endpoints = {e["name"]: e for e in info["endpoints"]}  # type: ignore[union-attr]
        assert endpoints["chat"]["subject"] == f"{settings.prefix}.chat"
        assert endpoints["chat"]["metadata"]["mode"] == settings.mode
        assert set(endpoints) >= {"chat", "pic2text", "vectorize", "text2vid"}
    chat = [next(e for e in s["endpoints"] if e["name"] == "chat") for s in stats]  # type: ignore[union-attr]
    assert sum(e["num_requests"] for e in chat) == (4 if settings.mode == "core" else 3)
    assert sum(e["num_errors"] for e in chat) == (1 if settings.mode == "core" else 0)
    assert all(e["average_processing_time"] >= 0 for e in chat)
    assert any(e["average_processing_time"] > 0 for e in chat)
