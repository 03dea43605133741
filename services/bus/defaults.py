"""The per-tag defaults (model, routing strategy) in a NATS KV bucket: written by the console, watched by consumers.

One key per tag holds a `schemas.operations.TagDefaults`; a deleted key means "the catalog's own". KV revisions
are the bucket stream's sequence, so they rise across keys: a consumer that has applied revision N has applied
every change up to N, and reports N in its `$SRV.INFO` metadata (`defaults_revision`), which is how the console
(and the tests) know a change has reached every consumer.
"""

from __future__ import annotations

import logging
import time

import anyio
import msgspec
from anyio.abc import TaskStatus
from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError
from nats.js.errors import KeyNotFoundError, NoKeysError
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from schemas import Tag
from schemas.operations import TagDefaults
from services.bus.jetstream import open_key_value
from services.settings import Settings

logger = logging.getLogger(__name__)

_decoder = msgspec.json.Decoder(TagDefaults)
_TAGS = frozenset(tag.value for tag in Tag)


async def open_bucket(nc: NATS, settings: Settings) -> KeyValue:
    """The defaults bucket of `settings`' prefix, created on first use by whichever side starts first."""
    return await open_key_value(nc, settings.subjects.defaults_bucket, replicas=settings.replicas)


class DefaultsBucket:
    """Reads and writes of the bucket, for the console's admin API."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    @classmethod
    async def open(cls, nc: NATS, settings: Settings) -> DefaultsBucket:
        return cls(await open_bucket(nc, settings))

    async def all(self) -> dict[Tag, tuple[TagDefaults, int]]:
        """Every tag with defaults set, and the revision of each."""
        try:
            keys = await self._kv.keys()
        except NoKeysError:
            return {}
        found: dict[Tag, tuple[TagDefaults, int]] = {}
        for key in keys:
            if key not in _TAGS:
                continue
            try:
                entry = await self._kv.get(key)
            except KeyNotFoundError:
                continue
            found[Tag(key)] = (_decoder.decode(entry.value or b"{}"), entry.revision or 0)
        return found

    async def put(self, tag: Tag, defaults: TagDefaults) -> int:
        """Store the tag's defaults; returns the revision consumers report once they apply it."""
        stamped = msgspec.structs.replace(defaults, updated_at=time.time())
        return int(await self._kv.put(str(tag), msgspec.json.encode(stamped)))

    async def clear(self, tag: Tag) -> int:
        """Back to the catalog's defaults for the tag; returns the revision of the deletion."""
        await self._kv.delete(str(tag))
        status = await self._kv.status()
        return int(status.stream_info.state.last_seq)


class LiveDefaults:
    """A consumer process's copy of the bucket, kept current by `watch`."""

    def __init__(self) -> None:
        self._by_tag: dict[Tag, TagDefaults] = {}
        self.revision = 0
        """The highest bucket revision applied: every change up to it is in effect."""
        self.available = False
        """False until the bucket could be watched (no JetStream: the catalog's defaults only)."""

    def get(self, tag: Tag) -> TagDefaults | None:
        return self._by_tag.get(tag)

    async def watch(
        self, nc: NATS, settings: Settings, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Follow the bucket until cancelled; `task_status.started()` once the stored defaults are applied, so the
        first request a consumer takes already sees them."""
        try:
            kv = await open_bucket(nc, settings)
            watcher = await kv.watchall()
        except NatsError as exc:
            logger.warning("live defaults are off (%s): requests get the catalog's defaults", type(exc).__name__)
            task_status.started()
            return
        self.available = True
        started = False
        try:
            async for entry in watcher:
                if entry is None:  # the end of what was stored when the watch began
                    if not started:
                        started = True
                        task_status.started()
                    continue
                self._apply(entry)
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                await watcher.stop()  # type: ignore[no-untyped-call]  # nats-py leaves it unannotated

    def _apply(self, entry: KeyValue.Entry) -> None:
        self.revision = max(self.revision, entry.revision or 0)
        try:
            tag = Tag(entry.key)
        except ValueError:
            return
        if entry.operation in (KV_DEL, KV_PURGE):
            self._by_tag.pop(tag, None)
            logger.info("%s defaults: back to the catalog's (revision %s)", tag, entry.revision)
            return
        try:
            defaults = _decoder.decode(entry.value or b"")
        except msgspec.DecodeError as exc:
            logger.warning(
                "%s defaults at revision %s are unreadable, kept the previous ones: %s", tag, entry.revision, exc
            )
            return
        self._by_tag[tag] = defaults
        logger.info(
            "%s defaults: model %s, strategy %s (revision %s)",
            tag,
            defaults.model or "(catalog)",
            defaults.strategy or "(catalog)",
            entry.revision,
        )
