"""Durable mode's JetStream side: the work-queue stream, one durable pull consumer per tag, a pull feed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable
from typing import TypeVar

import anyio
import msgspec
import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import api
from nats.js.errors import BadRequestError, KeyNotFoundError
from nats.js.kv import KeyValue

from schemas import Subjects, Tag
from services.bus.handoff import Handoff, subscribe_inline
from services.bus.publish import settle_nowait
from services.settings import Settings

logger = logging.getLogger(__name__)
T = TypeVar("T")

_STREAM_IN_USE = 10058  # "stream name already in use with a different configuration"


async def ensure_stream(nc: NATS, settings: Settings) -> None:
    """Create the work-queue stream, or bring an existing one to this configuration (idempotent)."""
    subjects = settings.subjects
    config = api.StreamConfig(
        name=subjects.stream,
        # Every tag, not only the ones this process serves: a request must be kept even before its consumer runs.
        subjects=[subjects.request(tag) for tag in Tag],
        retention=api.RetentionPolicy.WORK_QUEUE,
        storage=api.StorageType.FILE,
        duplicate_window=settings.dedupe_window_s,
        max_msg_size=settings.max_request_bytes,
        num_replicas=settings.replicas,
    )
    await create_or_update_stream(nc, config)


DEAD_LETTER_MAX_AGE_S = 7 * 24 * 3600.0


async def ensure_dead_letter_stream(nc: NATS, settings: Settings) -> None:
    """A plain (limits) stream keeping dead-lettered requests for a week, for inspection and replay."""
    subjects = settings.subjects
    config = api.StreamConfig(
        name=subjects.dead_stream,
        subjects=[subjects.dead_all],
        retention=api.RetentionPolicy.LIMITS,
        storage=api.StorageType.FILE,
        max_age=DEAD_LETTER_MAX_AGE_S,
        num_replicas=settings.replicas,
    )
    await create_or_update_stream(nc, config)


async def ensure_finals_stream(nc: NATS, settings: Settings) -> None:
    """Keeps the last final output of every request for `finals_ttl_s`: outputs are plain NATS messages, so a
    subscriber that was away when its final went out fetches it from here instead of losing it."""
    subjects = settings.subjects
    await create_or_update_stream(
        nc,
        api.StreamConfig(
            name=subjects.finals_stream,
            subjects=[f"{subjects.prefix}.final.>"],
            retention=api.RetentionPolicy.LIMITS,
            storage=api.StorageType.FILE,
            max_age=settings.finals_ttl_s,
            max_msgs_per_subject=1,
            max_msg_size=-1,
            num_replicas=settings.replicas,
            allow_direct=True,
        ),
    )


async def ensure_out_stream(nc: NATS, settings: Settings) -> None:
    """Keeps every output published on `<prefix>.out.>` for `out_ttl_s`: resumable requests publish there, and a
    subscriber that reconnects reads the rest of its stream from here (nothing waits for an ack per chunk)."""
    subjects = settings.subjects
    await create_or_update_stream(
        nc,
        api.StreamConfig(
            name=subjects.out_stream,
            subjects=[subjects.out_all],
            retention=api.RetentionPolicy.LIMITS,
            storage=api.StorageType.MEMORY if settings.out_storage == "memory" else api.StorageType.FILE,
            max_age=settings.out_ttl_s,
            max_msg_size=-1,
            num_replicas=settings.replicas,
            allow_direct=True,
        ),
    )


async def create_or_update_stream(nc: NATS, config: api.StreamConfig) -> None:
    """Create the stream, or bring an existing one to `config` (idempotent: every instance does it at start)."""
    js = nc.jsm()
    try:
        await js.add_stream(config)
    except BadRequestError as err:
        if err.err_code != _STREAM_IN_USE:
            raise
        await js.update_stream(config)


async def ensure_consumer(nc: NATS, settings: Settings, tag: Tag) -> None:
    """Create (or update) the tag's durable pull consumer shared by every instance."""
    subjects = settings.subjects
    await nc.jsm().add_consumer(
        subjects.stream,
        api.ConsumerConfig(
            durable_name=Subjects.durable(tag),
            filter_subject=subjects.request(tag),
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=settings.ack_wait_s,
            max_deliver=settings.max_deliver,
            max_waiting=512,
            # Unlimited: each instance's pulls already bound what it holds to its own concurrency. The server's
            # default (1,000) would cap the whole fleet below one process's default chat concurrency, and a
            # figure derived from one instance's settings would be rewritten by every instance that starts.
            max_ack_pending=-1,
            num_replicas=settings.replicas,
        ),
    )


class PullFeed:
    """Keeps as many pull requests outstanding as there are free slots, and yields messages as they land.

    nats-py's `fetch(batch=n)` waits for all n messages (or its timeout) before returning any, which would
    hold a ready request back; this feed hands each message over the moment it arrives.

    A pull is waiting on the server at all times, also across expiries: shortly before the newest pull
    expires a bridging pull of one goes out, and the 408 of an expired pull wakes the loop to pull again at
    once. Without that, an expired pull left the consumer with nothing waiting until the loop next looked,
    and a request landing then sat in the stream for up to a second.
    """

    def __init__(
        self,
        nc: NATS,
        stream: str,
        durable: str,
        free_slots: Callable[[], int],
        *,
        capacity: int,
        expires_s: float = 2.0,
        heartbeat_s: float = 0.5,
    ) -> None:
        self._nc = nc
        self._next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._free_slots = free_slots
        self._capacity = capacity
        self._expires_ns = int(expires_s * 1e9)
        self._heartbeat_ns = int(heartbeat_s * 1e9)
        self._silence_s = 2 * heartbeat_s + 0.5
        self._expires_s = expires_s
        # A quarter of the expiry ahead: the bridging pull must reach the server before the old one expires,
        # even when a busy event loop runs late.
        self._renew_after_s = 0.75 * expires_s
        self._inbox = nc.new_inbox()
        self._handoff: Handoff[Msg | None] | None = None
        self._outstanding = 0
        self._last_pull_at = 0.0

    def waiting(self) -> int:
        """Request messages delivered and not yet taken (a wake-up counts too: it is gone in a moment)."""
        return len(self._handoff) if self._handoff is not None else 0

    async def messages(self) -> AsyncGenerator[Msg, None]:
        """Yield request messages; the caller holds a free slot each time it asks for the next one."""
        loop_time = asyncio.get_running_loop().time
        # None in the stream is a wake-up: a pull ended, so the loop must look at what is outstanding now.
        # Room for every slot, a bridging pull's one message and a few wake-ups (which are dropped when full:
        # a full buffer wakes the loop anyway).
        handoff: Handoff[Msg | None] = Handoff(self._capacity + 4)
        self._handoff = handoff
        last_heard = loop_time()
        closing = False
        settled = anyio.Event()

        def on_message(msg: Msg) -> None:
            # Inside nats-py's read loop (`subscribe_inline`): status messages (expired pulls) are settled here;
            # only requests reach the stream, with no task or loop pass between.
            nonlocal last_heard
            last_heard = loop_time()
            if not self._is_request(msg):
                if not closing and _expired(msg):
                    handoff.put_nowait(None)
            elif closing or not handoff.put_nowait(msg):
                # Pulls cannot be withdrawn: what still arrives after intake stopped goes back at once, so another
                # instance runs it now instead of after ack_wait. (The hand-off holds every slot's pull: full
                # cannot happen, and would be handed back the same way.)
                self._outstanding -= 1
                settle_nowait(msg, Msg.Ack.Nak)
            if closing and self._outstanding <= 0:
                settled.set()

        subscription = await subscribe_inline(self._nc, self._inbox, on_message)
        try:
            while True:
                # The caller already holds one slot, hence the +1.
                wanted = self._free_slots() + 1 - self._outstanding
                now = loop_time()
                if wanted > 0 and (self._outstanding == 0 or wanted >= self._capacity // 2):
                    await self._pull(wanted, now)
                elif now - self._last_pull_at >= self._renew_after_s:
                    # Every pull held expires soon: one more keeps a pull waiting across the expiry (at worst one
                    # message beyond the free slots, held until a slot frees); the 408s then bring the full pull.
                    await self._pull(max(1, wanted), now)
                msg: Msg | None = None
                try:
                    msg = handoff.get_nowait()
                except anyio.WouldBlock:
                    wait_s = min(self._silence_s, self._last_pull_at + self._renew_after_s - now)
                    with anyio.move_on_after(max(0.0, wait_s)):
                        msg = await handoff.get()
                    if msg is None and loop_time() - last_heard >= self._silence_s:
                        # Neither a message nor a heartbeat: the pulls died with a reconnect or a server restart.
                        self._outstanding = 0
                if msg is None:
                    continue
                self._outstanding -= 1
                yield msg
        finally:
            closing = True
            with anyio.CancelScope(shield=True):
                while True:  # handed to us but not taken: back at once
                    try:
                        buffered = handoff.get_nowait()
                    except anyio.WouldBlock:
                        break
                    if buffered is None:
                        continue
                    self._outstanding -= 1
                    settle_nowait(buffered, Msg.Ack.Nak)
                if self._outstanding > 0 and not self._nc.is_closed:
                    with anyio.move_on_after(self._expires_s + 0.5):
                        await settled.wait()
                await subscription.unsubscribe()
            handoff.close()

    async def _pull(self, batch: int, now: float) -> None:
        request = {"batch": batch, "expires": self._expires_ns, "idle_heartbeat": self._heartbeat_ns}
        await self._nc.publish(self._next_subject, orjson.dumps(request), reply=self._inbox)
        self._outstanding += batch
        self._last_pull_at = now

    def _is_request(self, msg: Msg) -> bool:
        status = msg.headers.get("Status") if msg.headers else None
        if status is None:
            return True
        if status != "100":  # 408 expired / 409 conflicts: the unfilled part of a pull is gone
            pending = int(msg.headers.get("Nats-Pending-Messages", "0")) if msg.headers else 0
            self._outstanding = max(0, self._outstanding - pending)
        return False


def _expired(msg: Msg) -> bool:
    """A pull's 408: it expired. Only this wakes the loop at once: expiries come at most once per pull and
    expiry, while a 409 (leadership change, a limit the server enforces) could answer every new pull at once
    and turn the loop into a spin; those wait for the next regular look."""
    return msg.headers is not None and msg.headers.get("Status") == "408"


async def open_key_value(
    nc: NATS, bucket: str, *, ttl_s: float | None = None, replicas: int = 1, direct: bool = False
) -> KeyValue:
    """The KV bucket, created on first use by whichever instance starts first (entries expire after `ttl_s`).

    Create first, open on "already in use": two instances starting at once both succeed, and a bucket made by
    another version or by hand is used as it is.
    """
    js = nc.jetstream()
    try:
        return await js.create_key_value(bucket=bucket, ttl=ttl_s, history=1, replicas=replicas, direct=direct)
    except BadRequestError as err:
        if err.err_code != _STREAM_IN_USE:
            raise
        return await js.key_value(bucket)


async def get_struct(kv: KeyValue, key: str, type_: type[T]) -> T | None:
    """The JSON value kept under `key`, decoded as `type_`; None when there is none."""
    try:
        entry = await kv.get(key)
    except KeyNotFoundError:
        return None
    return msgspec.json.decode(entry.value or b"", type=type_)
