"""Hostile reply subjects: the consumer publishes nowhere a request's sender could not, in both modes.

Each case sends one chat whose reply subject (the NATS reply in core mode, `reply_to` in either) names a
JetStream, KV, object-store or system subject, one of the deployment's own internal subjects, or a malformed
one. Around it sit a KV bucket, a stream, an object-store bucket and (durable mode) another request's kept
final. The case passes when exactly one `invalid_request` naming the reply subject came back on
`<prefix>.out.chat.<id>`, nothing was published on the hostile subject, the router was never called, and
every piece of JetStream state is as it was.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Literal

import anyio
import msgspec
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from schemas import ChatOutput, ChatResult, Error, ErrorCode, Subjects, Tag
from schemas.subjects import MSG_ID
from services.dev.fake_router import FakeRouter
from services.handlers import HANDLERS
from services.settings import Settings
from tests.conftest import chat_payload, running
from tests.fuzz.strategies import base_request

pytestmark = pytest.mark.integration

Carrier = Literal["reply_to", "nats reply"]
WITHIN = 10.0


@dataclass(frozen=True)
class Victims:
    """Names of the JetStream state a hostile reply subject aims at."""

    prefix: str
    kv: str
    stream: str
    objects: str
    request_id: str
    """Another request, answered before the hostile one (durable mode keeps its final)."""


HOSTILE: dict[str, Callable[[Victims], str]] = {
    "js-stream-info": lambda v: f"$JS.API.STREAM.INFO.{v.stream}",
    "js-stream-purge": lambda v: f"$JS.API.STREAM.PURGE.{v.stream}",
    "js-stream-delete": lambda v: f"$JS.API.STREAM.DELETE.{v.stream}",
    "js-msg-delete": lambda v: f"$JS.API.STREAM.MSG.DELETE.{v.stream}",
    "js-pull-work-queue": lambda v: f"$JS.API.CONSUMER.MSG.NEXT.{Subjects(v.prefix).stream}.hfbus-chat",
    "kv-key": lambda v: f"$KV.{v.kv}.key",
    "object-meta": lambda v: f"$O.{v.objects}.M.{base64.urlsafe_b64encode(b'doc').decode()}",
    "object-chunk": lambda v: f"$O.{v.objects}.C.chunk",
    "sys": lambda v: "$SYS.REQ.SERVER.PING",
    "micro": lambda v: "$SRV.PING",
    "request-chat": lambda v: f"{v.prefix}.chat",
    "request-vectorize": lambda v: f"{v.prefix}.vectorize",
    "models": lambda v: f"{v.prefix}.models",
    "cancel-other": lambda v: f"{v.prefix}.cancel.{v.request_id}",
    "final-other": lambda v: f"{v.prefix}.final.chat.{v.request_id}",
    "dead": lambda v: f"{v.prefix}.dead.chat",
    "out-other": lambda v: f"{v.prefix}.out.chat.{v.request_id}",
    "victim-stream-subject": lambda v: f"{v.prefix}.victim.x",
}
MALFORMED = {
    "empty-token": "_INBOX..x",
    "trailing-dot": "_INBOX.x.",
    "space": "_INBOX.a b",
    "tab": "_INBOX.a\tb",
    "newline": "_INBOX.a\r\nPUB x 1",
    "star": "_INBOX.*",
    "gt": "_INBOX.>",
    "dot": ".",
}
CASES: list[tuple[str, str, Carrier]] = [
    *(("core", name, carrier) for name in HOSTILE for carrier in ("reply_to", "nats reply")),
    # A message stored by JetStream keeps no NATS reply subject: durable requests carry only `reply_to`.
    *(("durable", name, "reply_to") for name in HOSTILE),
    *((mode, name, "reply_to") for name in MALFORMED for mode in ("core", "durable")),
]


def hostile_subject(name: str, victims: Victims) -> str:
    return HOSTILE[name](victims) if name in HOSTILE else MALFORMED[name]


@dataclass
class Snapshot:
    kv: tuple[bytes | None, int | None]
    stream: tuple[int, int]
    document: bytes
    finals: dict[str, int]
    dead: int


@pytest.fixture
async def victims(nc: NATS, prefix: str) -> AsyncIterator[Victims]:
    """A KV key, a stream with two messages and an object, created for the test and removed after it."""
    js = nc.jetstream()
    made = Victims(prefix, f"victim_{prefix}", f"VICTIM_{prefix}", f"victim-{prefix}", f"victim-{uuid.uuid4().hex}")
    kv = await js.create_key_value(bucket=made.kv)
    await kv.put("key", b"original")
    await js.add_stream(name=made.stream, subjects=[f"{prefix}.victim.>"])
    for n in range(2):
        await js.publish(f"{prefix}.victim.{n}", b"kept")
    objects = await js.create_object_store(made.objects)
    await objects.put("doc", b"original document")
    try:
        yield made
    finally:
        for name in (made.stream, f"KV_{made.kv}", f"OBJ_{made.objects}"):
            await nc.jsm().delete_stream(name)


async def snapshot(nc: NATS, settings: Settings, victims: Victims) -> Snapshot:
    js, jsm, subjects = nc.jetstream(), nc.jsm(), settings.subjects
    entry = await (await js.key_value(victims.kv)).get("key")
    info = await jsm.stream_info(victims.stream)
    document = (await (await js.object_store(victims.objects)).get("doc")).data or b""
    finals: dict[str, int] = {}
    dead = 0
    if settings.mode == "durable":
        finals_info = await jsm.stream_info(subjects.finals_stream, subjects_filter=">")
        finals = dict(finals_info.state.subjects or {})
        dead = (await jsm.stream_info(subjects.dead_stream)).state.messages
    return Snapshot((entry.value, entry.revision), (info.state.messages, info.state.last_seq), document, finals, dead)


class Watch:
    """Everything published while the test runs, on every subject (`>` and the `$` trees), but the test's own."""

    def __init__(self) -> None:
        self.seen: list[Msg] = []
        self.ours: set[bytes] = set()

    async def cb(self, msg: Msg) -> None:
        if msg.data not in self.ours:
            self.seen.append(msg)

    async def start(self, nc: NATS) -> None:
        for tree in (">", "$JS.>", "$KV.>", "$O.>", "$SYS.>", "$SRV.>"):
            await nc.subscribe(tree, cb=self.cb)

    async def send(self, nc: NATS, settings: Settings, payload: bytes, request_id: str, reply: str = "") -> None:
        """Publish a chat request as the mode expects: into the stream (durable) or as a core request."""
        self.ours.add(payload)
        subject = settings.subjects.request(Tag.CHAT)
        if settings.mode == "durable":
            await nc.jetstream().publish(subject, payload, headers={MSG_ID: request_id})
        else:
            await nc.publish(subject, payload, reply=reply)


async def answered(nc: NATS, settings: Settings, watch: Watch, request_id: str) -> ChatResult:
    """A good chat and its result."""
    inbox = nc.new_inbox()
    subscription = await nc.subscribe(inbox)
    try:
        await watch.send(nc, settings, chat_payload(request_id, reply_to=inbox, max_tokens=4), request_id, inbox)
        with anyio.fail_after(WITHIN):
            while True:
                msg = await subscription.next_msg(timeout=WITHIN)
                if b'"type"' not in msg.data:
                    continue  # JetStream's publish ack
                output = msgspec.json.decode(msg.data, type=ChatOutput)
                assert not isinstance(output, Error), output
                if isinstance(output, ChatResult):
                    return output
    finally:
        await subscription.unsubscribe()


@pytest.mark.parametrize(
    ("mode", "name", "carrier"), CASES, ids=[f"{m}-{n}-{c.replace(' ', '-')}" for m, n, c in CASES]
)
async def test_a_hostile_reply_subject_gets_one_invalid_request_and_changes_nothing(
    settings: Settings, router: FakeRouter, nc: NATS, victims: Victims, mode: str, name: str, carrier: Carrier
) -> None:
    settings = replace(settings, mode=mode, tags=(Tag.CHAT, Tag.VECTORIZE))
    subject = hostile_subject(name, victims)
    request_id, later_id = f"hostile-{uuid.uuid4().hex}", f"later-{uuid.uuid4().hex}"
    watch = Watch()
    await watch.start(nc)
    out = await nc.subscribe(settings.subjects.out(Tag.CHAT, request_id))

    async with running(settings):
        await answered(nc, settings, watch, victims.request_id)
        before = await snapshot(nc, settings, victims)
        calls = len(router.requests)

        if carrier == "reply_to":
            await watch.send(nc, settings, chat_payload(request_id, reply_to=subject), request_id)
        else:
            await watch.send(nc, settings, chat_payload(request_id), request_id, reply=subject)
        error_msg = await out.next_msg(timeout=WITHIN)
        # A good request after it: the consumer keeps serving, and anything the hostile one might still have
        # published would have been sent before this one's result.
        await answered(nc, settings, watch, later_id)
        after = await snapshot(nc, settings, victims)
        await nc.flush(timeout=WITHIN)
        upstream_calls = len(router.requests) - calls

    error = msgspec.json.decode(error_msg.data, type=ChatOutput)
    assert isinstance(error, Error) and error.code == ErrorCode.INVALID_REQUEST, error
    assert error.id == request_id and not error.retryable
    assert ("reply_to" if carrier == "reply_to" else "reply subject") in error.message
    assert out.pending_msgs == 0, "exactly one output on the request's own output subject"
    assert upstream_calls == 1, "only the later request went upstream: a refused one is never sent (no cost)"
    # Every output of a request carries its id; JetStream's own API traffic on these subjects does not.
    published_there = [m for m in watch.seen if m.subject == subject and request_id.encode() in m.data]
    assert not published_there, f"{len(published_there)} messages were published on {subject!r}"
    assert (after.kv, after.stream, after.document, after.dead) == (before.kv, before.stream, before.document, 0)
    if mode == "durable":
        subjects = settings.subjects
        new_finals = set(after.finals) - set(before.finals)
        assert new_finals <= {subjects.final(Tag.CHAT, request_id), subjects.final(Tag.CHAT, later_id)}
        victim = subjects.final(Tag.CHAT, victims.request_id)
        assert after.finals[victim] == before.finals[victim] == 1, "the other request's kept final is untouched"
        kept = await nc.jsm().get_last_msg(subjects.finals_stream, victim)
        assert msgspec.json.decode(kept.data or b"", type=ChatOutput).id == victims.request_id


@pytest.mark.parametrize("mode", ["core", "durable"])
async def test_every_tag_refuses_a_hostile_reply_to_before_calling_the_router(
    settings: Settings, router: FakeRouter, nc: NATS, victims: Victims, mode: str
) -> None:
    settings = replace(settings, mode=mode)
    outs = {}
    for tag in HANDLERS:
        outs[tag] = await nc.subscribe(settings.subjects.out(tag, f"every-{tag}"))
    async with running(settings):
        before = await snapshot(nc, settings, victims)
        for tag in HANDLERS:
            body = base_request(tag, f"every-{tag}") | {"reply_to": f"$KV.{victims.kv}.key"}
            payload = msgspec.json.encode(body)
            if mode == "durable":
                await nc.jetstream().publish(settings.subjects.request(tag), payload, headers={MSG_ID: body["id"]})
            else:
                await nc.publish(settings.subjects.request(tag), payload)
        errors = {tag: await outs[tag].next_msg(timeout=WITHIN) for tag in HANDLERS}
        after = await snapshot(nc, settings, victims)

    for tag, msg in errors.items():
        output = msgspec.json.decode(msg.data)
        assert output["type"] == "error" and output["code"] == "invalid_request", (tag, output)
        assert "reply_to" in output["message"]
    assert router.requests == []
    assert after.kv == before.kv
