"""Two tenants under docs/nats-permissions.conf: neither can read, cancel or forge the other's outputs or finals.

A nats-server runs the example file as it is; the consumers run as its `consumer` user with the reply-subject
setting the file's comment names. `alice` and `bob` each use an inbox prefix of their own. Every attempt one
makes on the other's work is refused by the server (a permissions violation) or by the consumer's reply-subject
policy, and the other's answer and kept final stay its own.
"""

from __future__ import annotations

import json
import secrets
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import anyio
import msgspec
import pytest
from nats.errors import TimeoutError as NatsTimeoutError

from schemas import ChatOutput, ChatResult, Error, ErrorCode, Tag
from schemas.subjects import MSG_ID
from services.bus import natsserver
from services.client import HfBus, RequestFailed
from services.dev.fake_router import FakeRouter, expected_text
from services.settings import Mode, NatsAuth, Secret, Settings
from tests.conftest import eventually, running

pytestmark = pytest.mark.integration

PERMISSIONS = Path(__file__).resolve().parents[2] / "docs" / "nats-permissions.conf"
USERS = ("publisher", "consumer", "gateway", "alice", "bob")


@dataclass
class Tenant:
    """A connected tenant and the server's refusals of what it tried."""

    name: str
    bus: HfBus
    refusals: list[str] = field(default_factory=list)

    async def refused(self, count: int) -> None:
        await self.bus.nc.flush(timeout=5)
        try:
            await eventually(lambda: len(self.refusals) >= count)
        except TimeoutError:
            raise AssertionError(self.refusals) from None


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[natsserver.NatsServer, dict[str, str]]]:
    passwords = {user: secrets.token_urlsafe(18) for user in USERS}
    for user, password in passwords.items():
        monkeypatch.setenv(f"HFBUS_{user.upper()}_PASSWORD", json.dumps(password))
    store = tmp_path / "server"
    store.mkdir()
    shutil.copyfile(PERMISSIONS, store / PERMISSIONS.name)
    started = natsserver.start(store, config=f"include {json.dumps(PERMISSIONS.name)}\n")
    try:
        yield started, passwords
    finally:
        started.stop()


@asynccontextmanager
async def tenant(url: str, name: str, password: str) -> AsyncIterator[Tenant]:
    refusals: list[str] = []

    async def on_error(exc: Exception) -> None:
        refusals.append(str(exc).lower())  # nats-py lowercases the server's -ERR text

    options = {"user": name, "password": password, "inbox_prefix": f"_INBOX_{name}", "error_cb": on_error}
    async with HfBus.connect(url, prefix="ai", allow_reconnect=False, **options) as bus:
        yield Tenant(name, bus, refusals)


@pytest.mark.parametrize("mode", ["durable", "core"])
async def test_two_tenants_can_neither_read_cancel_nor_forge_each_others_work(
    server: tuple[natsserver.NatsServer, dict[str, str]], settings: Settings, router: FakeRouter, mode: Mode
) -> None:
    nats, passwords = server
    settings = replace(
        settings,
        nats_url=nats.url,
        nats_auth=NatsAuth(user="consumer", password=Secret(passwords["consumer"])),
        mode=mode,
        prefix="ai",
        tags=(Tag.CHAT,),
        reply_subjects=("_INBOX.>", "_INBOX_alice.>", "_INBOX_bob.>"),
    )
    bob_id = f"bob-{uuid.uuid4().hex}"
    async with (
        running(settings),
        tenant(nats.url, "alice", passwords["alice"]) as alice,
        tenant(nats.url, "bob", passwords["bob"]) as bob,
    ):
        assert alice.bus.mode == bob.bus.mode == mode
        nc = alice.bus.nc

        # Read: bob's inbox, the shared inbox and output trees, the kept finals.
        for tree in ("_INBOX_bob.>", "_INBOX.>", "ai.out.>", "ai.final.>", "ai.chat"):
            await nc.subscribe(tree)
        await alice.refused(5)
        with pytest.raises(NatsTimeoutError):
            await nc.jsm(timeout=1).get_last_msg("HFBUS_FINALS", f"ai.final.chat.{bob_id}")
        # Cancel: a cancel for bob's id, sent before bob's request, would be remembered and end it at once.
        await nc.publish(f"ai.cancel.{bob_id}", b"")
        # Forge: outputs, kept finals and dead letters straight onto the subjects bob's answers use.
        forged = msgspec.json.encode(Error(id=bob_id, seq=0, code=ErrorCode.CANCELLED, message="forged"))
        for subject in (f"ai.out.chat.{bob_id}", f"ai.final.chat.{bob_id}", "_INBOX_bob.x", "ai.dead.chat"):
            await nc.publish(subject, forged)
        await alice.refused(11)

        with anyio.fail_after(20):
            answer = await bob.bus.chat("bob's question", model="org/model", max_tokens=8, request_id=bob_id).result()
            async with HfBus.connect(nats.url, user="publisher", password=passwords["publisher"]) as trusted:
                # Forge through the consumer: a request of alice's whose outputs would land on bob's kept final.
                # Its refusal goes to ai.out.chat.<alice's id>, which only the trusted publisher may read.
                alice_id = f"alice-{uuid.uuid4().hex}"
                refusal = await trusted.nc.subscribe(f"ai.out.chat.{alice_id}")
                body = {"id": alice_id, "messages": [{"role": "user", "content": "x"}]}
                hostile = msgspec.json.encode(body | {"reply_to": f"ai.final.chat.{bob_id}"})
                if mode == "durable":
                    await nc.jetstream().publish("ai.chat", hostile, headers={MSG_ID: alice_id})
                else:
                    await nc.publish("ai.chat", hostile)
                refused = msgspec.json.decode((await refusal.next_msg(timeout=10)).data, type=ChatOutput)
                kept = await trusted.final(Tag.CHAT, bob_id)

                # Who can cancel whom: the trusted publisher cancels any id it knows.
                cancelled = trusted.chat("never runs", model="org/model", request_id=f"c-{uuid.uuid4().hex}")
                await trusted.nc.publish(f"ai.cancel.{cancelled.id}", b"")
                await trusted.nc.flush()
                with pytest.raises(RequestFailed) as stopped:
                    await cancelled.result()

    violations = "\n".join(alice.refusals)
    for subject in ("_inbox_bob.>", "_inbox.>", "ai.out.>", "ai.final.>"):
        assert f'permissions violation for subscription to "{subject}"' in violations
    for subject in ("$js.api.stream.msg.get.hfbus_finals", f"ai.cancel.{bob_id}", f"ai.out.chat.{bob_id}"):
        assert f'permissions violation for publish to "{subject}' in violations
    assert f'permissions violation for publish to "ai.final.chat.{bob_id}"' in violations
    assert 'permissions violation for publish to "_inbox_bob.x"' in violations
    assert isinstance(answer, ChatResult) and answer.id == bob_id
    assert answer.text == expected_text([{"role": "user", "content": "bob's question"}], 8)
    assert not bob.refusals, bob.refusals
    assert isinstance(refused, Error) and refused.code == ErrorCode.INVALID_REQUEST and "reply_to" in refused.message
    if mode == "durable":
        assert isinstance(kept, ChatResult) and kept.id == bob_id and kept.text == answer.text
    assert stopped.value.error.code == ErrorCode.CANCELLED
