"""Durable mode's JetStream side: the work-queue stream, one durable pull consumer per tag, KV helpers."""

from __future__ import annotations

import logging
from typing import TypeVar

import msgspec
from nats.aio.client import Client as NATS
from nats.js import api
from nats.js.errors import BadRequestError, KeyNotFoundError
from nats.js.kv import KeyValue

from schemas import Subjects, Tag
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
