"""The NATS connection and the two intakes (core queue group, durable pull consumer) behind one shape."""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import anyio
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import AuthorizationError as NatsAuthorizationError
from nats.errors import Error as NatsError

from schemas import Subjects, Tag
from services.bus.handoff import Handoff, subscribe_inline
from services.bus.jetstream import ensure_consumer
from services.bus.publish import settle_nowait
from services.bus.pullfeed import PullFeed
from services.settings import Settings

logger = logging.getLogger(__name__)


def credential_options(settings: Settings) -> dict[str, Any]:
    """The NATS credentials and TLS context from settings, as nats-py `connect` keyword arguments."""
    auth = settings.nats_auth
    options: dict[str, Any] = {}
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
        context = ssl.create_default_context(cafile=auth.tls_ca)
        if auth.tls_cert:
            context.load_cert_chain(auth.tls_cert, auth.tls_key)
        options["tls"] = context
    return options


@dataclass
class ConnectionHooks:
    """What to call when the connection drops, and when it is back (after nats-py sent what it had buffered)."""

    on_disconnect: list[Callable[[], None]] = field(default_factory=list)
    on_reconnect: list[Callable[[], None]] = field(default_factory=list)

    async def disconnected(self) -> None:
        for hook in self.on_disconnect:
            hook()

    async def reconnected(self) -> None:
        for hook in self.on_reconnect:
            hook()


async def connect(settings: Settings, *, name: str = "hfbus", hooks: ConnectionHooks | None = None) -> NATS:
    """Connect with the configured credentials and TLS; once connected, reconnect forever (consumers are long-lived).

    The first connection must succeed within `connect_timeout_s`; unreachable servers are retried until then, but a
    refusal that retrying cannot cure fails at once. Error texts name the server and the kind of credential, never
    a secret.

    Raises:
        PermissionError: the server refused the credentials (or their absence).
        ConnectionError: TLS failed: the server's certificate is not trusted, or the server refused ours.
        TimeoutError: no server accepted a connection within `connect_timeout_s`.
    """
    auth = settings.nats_auth
    servers = [url.strip() for url in settings.nats_url.split(",") if url.strip()]
    options: dict[str, Any] = {
        "servers": servers,
        "name": name,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.5,
        "connect_timeout": settings.connect_timeout_s,
    }
    if hooks is not None:
        options |= {"disconnected_cb": hooks.disconnected, "reconnected_cb": hooks.reconnected}
    options |= credential_options(settings)

    def without_userinfo(url: str) -> str:
        parts = urlsplit(url)
        return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()

    # Error texts name the servers without any user:password part, and kinds of credential without their values.
    where = ", ".join(without_userinfo(url) for url in servers)
    kinds = [
        kind
        for kind, present in (
            ("user/password (NATS_USER, NATS_PASSWORD)", auth.user or auth.password),
            ("token (NATS_TOKEN)", auth.token),
            ("nkey (NATS_NKEY_SEED)", auth.nkey_seed_file),
            ("creds file (NATS_CREDS)", auth.creds_file),
        )
        if present
    ]
    offered = (
        f"offered {', '.join(kinds)}"
        if kinds
        else "no credentials configured (NATS_USER and NATS_PASSWORD, NATS_TOKEN, NATS_NKEY_SEED or NATS_CREDS)"
    )

    def describe(exc: BaseException) -> str:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

    def refusal(exc: Exception) -> Exception | None:
        """The error to raise when `exc` is a refusal no retry can cure, else None."""
        if isinstance(exc, ssl.SSLCertVerificationError):
            return ConnectionError(
                f"TLS to NATS at {where} failed: the server's certificate is not trusted ({exc.verify_message});"
                " set NATS_TLS_CA to the CA that signed it"
            )
        if isinstance(exc, ssl.SSLError) and "ALERT" in (exc.reason or ""):
            # TLS 1.3 reports a missing or untrusted client certificate as an alert after the handshake.
            return ConnectionError(
                f"TLS to NATS at {where} failed: the server ended it with {exc.reason}; it may require a client"
                " certificate signed by a CA it trusts (NATS_TLS_CERT, NATS_TLS_KEY)"
            )
        text = str(exc).lower()
        if isinstance(exc, NatsAuthorizationError) or (
            isinstance(exc, NatsError) and ("authorization" in text or "authentication" in text)
        ):
            return PermissionError(f"NATS at {where} refused the credentials ({exc}); {offered}")
        return None

    nc = NATS()
    deadline = time.monotonic() + settings.connect_timeout_s
    connected_once = False

    async def on_error(exc: Exception) -> None:
        if connected_once:
            if nc.is_reconnecting:
                logger.warning("lost NATS at %s (%s); reconnecting", where, describe(exc))
            else:
                logger.error("NATS error on %s: %s", where, describe(exc))
            return
        # nats-py awaits this callback inside its first-connection loop, so raising here ends `nc.connect()`.
        if (error := refusal(exc)) is not None:
            raise error from None
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"could not connect to NATS at {where} within {settings.connect_timeout_s:g}s; last error: "
                + describe(exc)
            ) from None
        logger.warning("cannot connect to NATS at %s yet (%s); retrying", where, describe(exc))

    try:
        # A backstop only: cancelling nats-py mid-connect can leave its socket open, so the callback's deadline rules.
        with anyio.fail_after(3 * settings.connect_timeout_s):
            await nc.connect(**options, error_cb=on_error)
    except BaseException:
        # Bounded: after a failed TLS handshake nats-py's close waits forever for a stream that never reports closed.
        with anyio.move_on_after(1.0, shield=True):
            await nc.close()
        raise
    connected_once = True
    return nc


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

    @property
    def stream_seq(self) -> int | None:
        """The request message's sequence in the work-queue stream; every delivery of it shares this."""
        return self.msg.metadata.sequence.stream if self.durable else None

    @property
    def queued_s(self) -> float:
        """Seconds since JetStream stored the request, by the server's clock (0 in core mode)."""
        return time.time() - self.msg.metadata.timestamp.timestamp() if self.durable else 0.0

    async def ack(self) -> None:
        """Settle for good: queued behind the final output on the same connection, with no round trip.

        An ack the server never takes (a consumer leader change, a crash) costs no second answer: the final is
        kept before the ack is sent, and a delivery of an answered request is settled without running
        (`KeptFinals.answered`). Waiting for a confirmation would cost every request a round trip to spare that
        rare one a lookup.
        """
        if self.durable:
            settle_nowait(self.msg, Msg.Ack.Ack)

    async def nak(self, delay: float | None = None) -> None:
        if self.durable:
            await self.msg.nak(delay=delay)

    async def term(self) -> None:
        if self.durable:
            await self.msg.term()

    async def in_progress(self) -> None:
        if self.durable:
            await self.msg.in_progress()


CORE_BACKLOG = 100_000
"""Core requests held waiting beyond one slot's worth each (the hand-off holds concurrency + this many), a bound
like the pending limit nats-py keeps for a slow subscription; past it a request goes to the intake's `overflow`."""


class Intake:
    """Where a tag's requests come from: a queue-group subscription or the shared durable consumer."""

    def __init__(self, nc: NATS, settings: Settings, tag: Tag) -> None:
        self._nc = nc
        self._settings = settings
        self._tag = tag
        self._waiting: Callable[[], int] = lambda: 0

    def waiting(self) -> int:
        """Requests received and not yet taken from the open intake."""
        return self._waiting()

    @asynccontextmanager
    async def open(
        self, free_slots: Callable[[], int], overflow: Callable[[Delivery], None]
    ) -> AsyncIterator[AsyncIterator[Delivery]]:
        """Subscribe (core) or create the durable consumer (durable); inside, intake is live.

        The iterator yields requests; its caller holds a free slot each time it asks for the next one. A core
        request that finds the slots and `CORE_BACKLOG` full goes to `overflow` instead, inside nats-py's read
        loop (it must not block). Durable intake pulls only for free slots, so it never overflows.
        """
        if self._settings.mode == "durable":
            await ensure_consumer(self._nc, self._settings, self._tag)
            feed = PullFeed(
                self._nc,
                self._settings.subjects.stream,
                Subjects.durable(self._tag),
                free_slots,
                capacity=self._settings.concurrency_for(self._tag),
            )
            self._waiting = feed.waiting
            async with aclosing(feed.messages()) as messages:
                yield (Delivery(msg, durable=True) async for msg in messages)
            return
        # Handed over inside nats-py's read loop (no task or loop pass per request). Past the slots, up to
        # CORE_BACKLOG requests wait here, as nats-py's own pending queue held them before; beyond that a request
        # is refused through `overflow` (an error its caller sees at once, where nats-py would drop it unseen).
        handoff: Handoff[Msg] = Handoff(self._settings.concurrency_for(self._tag) + CORE_BACKLOG)
        self._waiting = handoff.__len__

        def take(msg: Msg) -> None:
            if not handoff.put_nowait(msg):
                overflow(Delivery(msg, durable=False))

        subscription = await subscribe_inline(
            self._nc, self._settings.subjects.request(self._tag), take, queue=Subjects.queue_group(self._tag)
        )
        try:
            await self._nc.flush()
            yield _core_deliveries(handoff)
        finally:
            await subscription.unsubscribe()
            handoff.close()


async def _core_deliveries(handoff: Handoff[Msg]) -> AsyncIterator[Delivery]:
    while (msg := await handoff.get()) is not None:
        yield Delivery(msg, durable=False)
