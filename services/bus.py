"""The NATS connection and the two intakes (core queue group, durable pull consumer) behind one shape."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from schemas import Subjects, Tag
from services.jetstream import PullFeed, ensure_consumer
from services.settings import Settings

logger = logging.getLogger(__name__)


async def connect(settings: Settings, *, name: str = "hfbus") -> NATS:
    """Connect with the configured credentials and TLS; reconnect forever, since consumers are long-lived."""
    auth = settings.nats_auth
    options: dict[str, Any] = {
        "servers": [url.strip() for url in settings.nats_url.split(",") if url.strip()],
        "name": name,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.5,
        "connect_timeout": settings.connect_timeout_s,
    }
    if auth.user:
        options["user"] = auth.user
    if auth.password:
        options["password"] = auth.password.reveal()
    if auth.token:
        options["token"] = auth.token.reveal()
    if auth.creds_file:
        options["user_credentials"] = auth.creds_file
    if auth.nkey_seed_file:
        options["nkeys_seed"] = auth.nkey_seed_file
    if auth.tls_ca or auth.tls_cert:
        import ssl

        context = ssl.create_default_context(cafile=auth.tls_ca)
        if auth.tls_cert:
            context.load_cert_chain(auth.tls_cert, auth.tls_key)
        options["tls"] = context
    return await nats.connect(**options)


@dataclass(slots=True)
class Delivery:
    """One request message and how to settle it; settling is a no-op in core mode."""

    msg: Msg
    durable: bool

    @property
    def data(self) -> bytes:
        return self.msg.data

    @property
    def headers(self) -> dict[str, str] | None:
        return self.msg.headers

    @property
    def reply(self) -> str | None:
        """The core request's reply subject; in durable mode the message's reply is JetStream's ack subject."""
        return None if self.durable else (self.msg.reply or None)

    @property
    def attempt(self) -> int:
        return self.msg.metadata.num_delivered if self.durable else 1

    async def ack(self) -> None:
        if self.durable:
            await self.msg.ack()

    async def nak(self, delay: float | None = None) -> None:
        if self.durable:
            await self.msg.nak(delay=delay)

    async def term(self) -> None:
        if self.durable:
            await self.msg.term()

    async def in_progress(self) -> None:
        if self.durable:
            await self.msg.in_progress()


class Intake:
    """Where a tag's requests come from: a queue-group subscription or the shared durable consumer."""

    def __init__(self, nc: NATS, settings: Settings, tag: Tag) -> None:
        self._nc = nc
        self._settings = settings
        self._tag = tag

    @asynccontextmanager
    async def open(self, free_slots: Callable[[], int]) -> AsyncIterator[AsyncIterator[Delivery]]:
        """Subscribe (core) or create the durable consumer (durable); inside, intake is live.

        The iterator yields requests; its caller holds a free slot each time it asks for the next one.
        """
        if self._settings.mode == "durable":
            await ensure_consumer(self._nc, self._settings, self._tag)
            feed = PullFeed(
                self._nc,
                self._settings.subjects.stream,
                Subjects.durable(self._tag),
                free_slots,
                capacity=self._settings.concurrency,
            )
            async with aclosing(feed.messages()) as messages:
                yield (Delivery(msg, durable=True) async for msg in messages)
            return
        subscription = await self._nc.subscribe(
            self._settings.subjects.request(self._tag),
            queue=Subjects.queue_group(self._tag),
            pending_msgs_limit=100_000,
        )
        await self._nc.flush()
        try:
            yield (Delivery(msg, durable=False) async for msg in subscription.messages)
        finally:
            await subscription.unsubscribe()
