"""Resumable outputs that reach the out stream even when the stream or the connection drops some.

A resumable request's outputs are plain publishes that `HFBUS_OUT` stores. Two things lose one without anyone
being told: a connection that drops (what was written to the dead socket is gone, while what nats-py still held
is sent after the reconnect) and, in a cluster, the out stream changing leader (what arrives while it has none
is not stored). Either leaves the run with a hole, and a subscriber, which takes each output only after the one
before it, could never read past it. So every output asks for the stream's ack, a run keeps what it published
until its ack comes, and publishes again, in order, everything from the first output that was not confirmed:
at once after a reconnect, and after `ACK_WAIT_S` without its ack otherwise. The stream may then hold an output
twice, identical; a subscriber takes each `(attempt, seq)` once, and in order.

Nothing waits for an ack: they are read inside nats-py's read loop (`subscribe_inline`) and only let go of
what the run holds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import count

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from services.bus.handoff import subscribe_inline
from services.bus.publish import Publisher

logger = logging.getLogger(__name__)

ACK_WAIT_S = 1.0
"""An output whose ack has not come this long after it was sent is taken as lost, and the run's outputs from it on
are published again; a run that keeps losing them waits twice as long each time, up to `REPLAY_BACKOFF_MAX_S`."""

REPLAY_BACKOFF_MAX_S = 8.0

KEEP_IDLE_S = 60.0
"""How long a run that published nothing new is kept for a replay: a finished run whose outputs were not all
confirmed (a long outage, no out stream), or one that never finished (its delivery was handed back)."""


class OutLog:
    """One connection's resumable runs and what each has published that the out stream has not confirmed."""

    def __init__(self, nc: NATS) -> None:
        self._nc = nc
        self._inbox = nc.new_inbox()
        self._runs: dict[int, RunLog] = {}
        self._keys = count(1)
        self._epoch = 0
        """Bumped on every disconnect and every replay: an ack confirms an output only for the send it answers."""
        self._subscription: Subscription | None = None
        self._timer: asyncio.TimerHandle | None = None

    async def open(self) -> None:
        self._subscription = await subscribe_inline(self._nc, f"{self._inbox}.>", self._on_ack)
        self._schedule()

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._subscription is not None:
            await self._subscription.unsubscribe()

    def run(self, subject: str, headers: Mapping[str, str] | None) -> RunLog:
        """Where one run publishes its outputs to its out subject."""
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
            self._replay(run, "a reconnect")

    def _replay(self, run: RunLog, why: str) -> None:
        self._epoch += 1
        try:
            run.replay(self._epoch, why)
        except Exception as exc:  # closed or draining again already: the next reconnect replays it
            logger.warning("could not publish the outputs of %s again: %r", run.subject, exc)

    def _ack_subject(self, key: int, seq: int) -> bytes:
        return f"{self._inbox}.{key}.{self._epoch}.{seq}".encode()

    def _on_ack(self, msg: Msg) -> None:
        data = msg.data
        # A PubAck is `{"stream":…,"seq":…}`; an error reply, or a 503 "no responders" with no body (the stream had
        # no leader, or does not exist), confirms nothing: the output is published again after `ACK_WAIT_S`.
        if data[:1] != b"{" or b'"error"' in data:
            return
        try:
            _, key, epoch, seq = msg.subject.rsplit(".", 3)
            run = self._runs.get(int(key))
            if run is not None:
                run.confirm(int(seq), int(epoch))
        except ValueError:
            return

    def _schedule(self) -> None:
        self._timer = asyncio.get_running_loop().call_later(ACK_WAIT_S / 2, self._check)

    def _check(self) -> None:
        """Publish again what waited too long for its ack; forget runs idle past `KEEP_IDLE_S`."""
        self._schedule()
        if not self._nc.is_connected:
            return  # the reconnect replays everything
        now = time.monotonic()
        cutoff = now - KEEP_IDLE_S
        for key, run in list(self._runs.items()):
            if run.last_at < cutoff:
                del self._runs[key]
            elif run.overdue(now):
                self._replay(run, "outputs the stream did not confirm")

    def _forget(self, key: int) -> None:
        self._runs.pop(key, None)


@dataclass(slots=True)
class _Sent:
    """One output as last published: held until it and every output before it are confirmed."""

    seq: int
    payload: bytes
    publisher: Publisher
    epoch: int
    """The send the next ack must answer (an ack of an earlier send of it confirms nothing)."""
    sent_at: float
    confirmed: bool = False


class RunLog:
    """One run's outputs on its out subject, held from publish until the stream confirms them and every one before."""

    __slots__ = ("_finished", "_key", "_log", "_publisher", "_subject", "_sent", "_wait_s", "last_at")

    def __init__(self, log: OutLog, key: int, subject: str, headers: Mapping[str, str] | None) -> None:
        self._log = log
        self._key = key
        self._subject = subject
        self._publisher = Publisher(log._nc, subject, headers)
        self._sent: deque[_Sent] = deque()
        """What the run published and may still have to publish again, in order; a confirmed head is let go."""
        self._wait_s = ACK_WAIT_S
        self._finished = False
        self.last_at = time.monotonic()
        """When the run last published an output of its own (not a replay)."""

    def publish(
        self, seq: int, payload: bytes, headers: Mapping[str, str] | None = None, *, final: bool = False
    ) -> bool:
        """Queue output `seq` (see `Publisher.publish`); `headers` only when they differ from the run's."""
        log = self._log
        publisher = self._publisher if headers is None else Publisher(log._nc, self._subject, headers)
        now = self.last_at = time.monotonic()
        self._sent.append(_Sent(seq, payload, publisher, log._epoch, now))
        self._finished = self._finished or final
        return publisher.publish(payload, log._ack_subject(self._key, seq))

    @property
    def subject(self) -> str:
        return self._subject

    def confirm(self, seq: int, epoch: int) -> None:
        """The stream stored output `seq` as sent in `epoch`. What the run holds is let go up to the first output
        still unconfirmed: a replay must publish the rest in order behind it."""
        sent = self._sent
        if not sent:
            return
        index = seq - sent[0].seq  # a run's outputs are numbered without gaps, so this is its place
        if not 0 <= index < len(sent) or sent[index].seq != seq or sent[index].epoch != epoch:
            return  # an ack of an earlier send of an output published again since, or one let go already
        sent[index].confirmed = True
        while sent and sent[0].confirmed:
            sent.popleft()
        self._wait_s = ACK_WAIT_S
        if not sent and self._finished:
            self._log._forget(self._key)

    def overdue(self, now: float) -> bool:
        """The oldest output still unconfirmed has waited longer for its ack than this run waits."""
        return bool(self._sent) and now - self._sent[0].sent_at >= self._wait_s

    def replay(self, epoch: int, why: str) -> None:
        """Publish every output held again, in order, each asking for its ack in `epoch`.

        In order and all of them, also those confirmed after the first unconfirmed one: the subscriber takes each
        output only after the one before it, so the stream must hold the run's rest in order after the hole's.
        """
        sent = self._sent
        if not sent:
            return
        logger.info("publishing %d outputs again to %s after %s", len(sent), self._subject, why)
        now = time.monotonic()
        for entry in sent:
            entry.epoch, entry.sent_at, entry.confirmed = epoch, now, False
            entry.publisher.publish(entry.payload, self._log._ack_subject(self._key, entry.seq))
        self._wait_s = min(self._wait_s * 2, REPLAY_BACKOFF_MAX_S)
