"""Resumable outputs that reach the out stream even across a reconnect of the consumer's connection.

A resumable request's outputs are plain publishes that `HFBUS_OUT` stores; nothing waits for an ack per chunk.
When the connection drops, what was written to the dead socket is gone (the server never read it), while what
nats-py still held is sent after the reconnect: the stream would keep the run with a hole in the middle, and a
subscriber could never read those chunks. So each run keeps what it published until the stream confirms it, and
after a reconnect publishes everything unconfirmed again, in order. The stream may then hold a copy of an output
twice, identical; a subscriber takes each `(attempt, seq)` once, and in order.

Confirmation is sparse: one output in `ACK_EVERY` (and every final one) is published with a reply subject, and
JetStream's ack of it confirms it and every earlier output of the run sent on the same connection (a stream
stores one connection's messages in order). Outputs sent before a disconnect are never confirmed by an ack
that comes after it: those are published again whatever comes back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from itertools import count

import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from services.bus.publish import Publisher

logger = logging.getLogger(__name__)

ACK_EVERY = 16
"""One output in this many asks the stream for an ack; the acks bound what a run holds for a replay."""

KEEP_FINISHED_S = 60.0
"""How long a finished run whose final output was never confirmed is kept for a replay."""


class OutLog:
    """One connection's resumable runs and what each has published that the out stream has not confirmed."""

    def __init__(self, nc: NATS) -> None:
        self._nc = nc
        self._inbox = nc.new_inbox()
        self._runs: dict[int, RunLog] = {}
        self._keys = count(1)
        self._epoch = 0
        """Bumped on every disconnect: an ack only confirms outputs sent on the connection it came back on."""
        self._subscription: Subscription | None = None

    async def open(self) -> None:
        self._subscription = await self._nc.subscribe(f"{self._inbox}.>", cb=self._on_ack)

    async def close(self) -> None:
        if self._subscription is not None:
            await self._subscription.unsubscribe()

    def run(self, subject: str, headers: Mapping[str, str] | None) -> RunLog:
        """Where one run publishes its outputs to its out subject."""
        self._sweep()
        key = next(self._keys)
        run = self._runs[key] = RunLog(self, key, subject, headers)
        return run

    @property
    def runs(self) -> int:
        """Runs holding outputs for a replay (metrics, tests)."""
        return len(self._runs)

    def disconnected(self) -> None:
        self._epoch += 1

    def reconnected(self) -> None:
        for run in list(self._runs.values()):
            try:
                run.replay(self._epoch)
            except Exception as exc:  # closed or draining again already: the next reconnect replays it
                logger.warning("could not publish the outputs of %s again: %r", run.subject, exc)

    def _ack_subject(self, key: int, seq: int) -> bytes:
        return f"{self._inbox}.{key}.{self._epoch}.{seq}".encode()

    async def _on_ack(self, msg: Msg) -> None:
        try:
            _, key, epoch, seq = msg.subject.rsplit(".", 3)
            reply = orjson.loads(msg.data)
        except (ValueError, orjson.JSONDecodeError):
            return  # a 503 "no responders" (no out stream): nothing was stored, nothing is confirmed
        if not isinstance(reply, dict) or "error" in reply or int(epoch) != self._epoch:
            return
        run = self._runs.get(int(key))
        if run is not None:
            run.confirm(int(seq), self._epoch)

    def _forget(self, key: int) -> None:
        self._runs.pop(key, None)

    def _sweep(self) -> None:
        """Forget finished runs whose final output was never confirmed (no out stream, a long outage)."""
        cutoff = time.monotonic() - KEEP_FINISHED_S
        for key, run in list(self._runs.items()):
            if run.finished_at is not None and run.finished_at < cutoff:
                del self._runs[key]


class RunLog:
    """One run's outputs on its out subject, held from publish until the stream confirms them."""

    __slots__ = ("_key", "_log", "_publisher", "_subject", "_unconfirmed", "finished_at")

    def __init__(self, log: OutLog, key: int, subject: str, headers: Mapping[str, str] | None) -> None:
        self._log = log
        self._key = key
        self._subject = subject
        self._publisher = Publisher(log._nc, subject, headers)
        self._unconfirmed: list[tuple[int, bytes, Publisher, int]] = []
        """(seq, payload, publisher, epoch sent in), in the order published."""
        self.finished_at: float | None = None

    def publish(
        self, seq: int, payload: bytes, headers: Mapping[str, str] | None = None, *, final: bool = False
    ) -> bool:
        """Queue output `seq` (see `Publisher.publish`); `headers` only when they differ from the run's."""
        publisher = self._publisher if headers is None else Publisher(self._log._nc, self._subject, headers)
        self._unconfirmed.append((seq, payload, publisher, self._log._epoch))
        if final:
            self.finished_at = time.monotonic()
        if final or seq % ACK_EVERY == ACK_EVERY - 1:
            return publisher.publish(payload, self._log._ack_subject(self._key, seq))
        return publisher.publish(payload)

    @property
    def subject(self) -> str:
        return self._subject

    def confirm(self, seq: int, epoch: int) -> None:
        """The stream stored output `seq`, and with it every earlier one sent on the same connection (`epoch`).

        Only a leading run of this connection's outputs is let go: one sent on an earlier connection may have
        been lost with it, and then everything after it must be published again behind it, in order.
        """
        unconfirmed = self._unconfirmed
        done = 0
        while done < len(unconfirmed) and unconfirmed[done][3] == epoch and unconfirmed[done][0] <= seq:
            done += 1
        del unconfirmed[:done]
        if not unconfirmed and self.finished_at is not None:
            self._log._forget(self._key)

    def replay(self, epoch: int) -> None:
        """After a reconnect: publish every unconfirmed output again, in order, asking for an ack of the last.

        In order and all of them, also those sent after the hole: the subscriber takes each output only after
        the one before it, so the stream must hold the run's rest in order after the hole's outputs.
        """
        unconfirmed = self._unconfirmed
        if not unconfirmed:
            return
        logger.info("publishing %d outputs again to %s after a reconnect", len(unconfirmed), self._subject)
        last = len(unconfirmed) - 1
        for i, (seq, payload, publisher, _) in enumerate(unconfirmed):
            publisher.publish(payload, self._log._ack_subject(self._key, seq) if i == last else b"")
        self._unconfirmed = [(seq, payload, publisher, epoch) for seq, payload, publisher, _ in unconfirmed]
