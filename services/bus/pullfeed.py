"""Durable intake: pull requests kept outstanding for the free slots, each message handed over as it lands."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, Callable

import anyio
import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from services.bus.handoff import Handoff, subscribe_inline
from services.bus.publish import settle_nowait


class PullFeed:
    """Keeps as many pull requests outstanding as there are free slots, and yields messages as they land.

    nats-py's `fetch(batch=n)` waits for all n messages (or its timeout) before returning any, which would
    hold a ready request back; this feed hands each message over the moment it arrives.

    A pull is waiting on the server at all times, also across expiries: shortly before the newest pull
    expires a bridging pull of one goes out, and the 408 of an expired pull wakes the loop to pull again at
    once. Without that, an expired pull left the consumer with nothing waiting until the loop next looked,
    and a request landing then sat in the stream for up to a second.

    What the server still owes is counted per pull (`Pulls`), not as one number: a pull that dies with a
    restarted server never sends its 408, and a single count kept believing in it, so after a restart the feed
    pulled only for the slots that count left free (45 of 2,048 requests every 1.5 s in
    tests/integration/test_server_restart.py) until the silence check happened to catch a quiet moment.
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
        self._pulls = Pulls(grace_s=heartbeat_s + 0.5)
        self._held = 0
        """Requests delivered and not yet taken: they fill slots as soon as they are."""
        self._last_pull_at = 0.0

    @property
    def _outstanding(self) -> int:
        return self._pulls.owed + self._held

    def waiting(self) -> int:
        """Request messages delivered and not yet taken (a wake-up counts too: it is gone in a moment)."""
        return len(self._handoff) if self._handoff is not None else 0

    async def messages(self) -> AsyncGenerator[Msg, None]:
        """Yield request messages; the caller holds a free slot each time it asks for the next one."""
        loop_time = asyncio.get_running_loop().time
        pulls = self._pulls
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
            now = last_heard = loop_time()
            status = msg.headers.get("Status") if msg.headers else None
            if status is not None:
                if status != "100":  # 408 expired / 409 conflicts: the unfilled part of a pull is gone
                    pulls.ended(_pending(msg), now, expired=status == "408")
                    # Only a 408 wakes the loop at once: it comes at most once per pull and expiry, while a 409
                    # (leadership change, a limit the server enforces) could answer every new pull at once and
                    # turn the loop into a spin; those wait for the next regular look.
                    if status == "408" and not closing:
                        handoff.put_nowait(None)
            else:
                pulls.filled()
                if closing or not handoff.put_nowait(msg):
                    # Pulls cannot be withdrawn: what still arrives after intake stopped goes back at once, so
                    # another instance runs it now instead of after ack_wait. (The hand-off holds every slot's
                    # pull: full cannot happen, and would be handed back the same way.)
                    settle_nowait(msg, Msg.Ack.Nak)
                else:
                    self._held += 1
            if closing and self._outstanding <= 0:
                settled.set()

        subscription = await subscribe_inline(self._nc, self._inbox, on_message)
        try:
            while True:
                now = loop_time()
                pulls.sweep(now)
                # The caller already holds one slot, hence the +1.
                wanted = self._free_slots() + 1 - self._outstanding
                if wanted > 0 and (self._outstanding == 0 or wanted >= self._capacity // 2):
                    await self._pull(wanted, now)
                elif now - self._last_pull_at >= self._renew_after_s:
                    # Every pull held expires soon: one more keeps a pull waiting across the expiry (at worst one
                    # message beyond the free slots, held until a slot frees); the 408s then bring the full pull.
                    await self._pull(max(1, wanted), now)
                # A timed wait on the hand-off itself, not a cancel scope: a scope costs more than taking a request.
                wait_s = min(self._silence_s, self._last_pull_at + self._renew_after_s - now)
                if not await handoff.wait(max(0.0, wait_s)):
                    if loop_time() - last_heard >= self._silence_s:
                        # Neither a message nor a heartbeat: the pulls died with a reconnect or a server restart.
                        pulls.clear()
                    continue
                msg = handoff.get_nowait()
                if msg is None:
                    continue
                self._held -= 1
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
                    self._held -= 1
                    settle_nowait(buffered, Msg.Ack.Nak)
                if self._outstanding > 0 and not self._nc.is_closed:
                    with anyio.move_on_after(self._expires_s + 0.5):
                        await settled.wait()
                await subscription.unsubscribe()
            handoff.close()

    async def _pull(self, batch: int, now: float) -> None:
        request = {"batch": batch, "expires": self._expires_ns, "idle_heartbeat": self._heartbeat_ns}
        await self._nc.publish(self._next_subject, orjson.dumps(request), reply=self._inbox)
        self._pulls.issued(batch, now + self._expires_s)
        self._last_pull_at = now


class Pulls:
    """What the server still owes one feed: the unfilled part of each pull request it sent, oldest first.

    Pulls expire in the order they were sent (all share one expiry); a message is counted against the oldest,
    and a status takes off what the server says was left unfilled. A pull past its expiry by
    `grace_s` without its 408 is gone as well: its server restarted, or the status was lost.
    """

    __slots__ = ("_grace_s", "_pulls", "owed")

    def __init__(self, *, grace_s: float) -> None:
        self._grace_s = grace_s
        self._pulls: deque[list[float]] = deque()
        """`[expires_at, unfilled]` per pull, in the order sent."""
        self.owed = 0
        """Messages the live pulls may still bring."""

    def issued(self, batch: int, expires_at: float) -> None:
        self._pulls.append([expires_at, batch])
        self.owed += batch

    def filled(self) -> None:
        """A request message arrived: one less owed (a pull forgotten too early may still deliver: never below 0)."""
        self._take(1)

    def ended(self, unfilled: int, now: float, *, expired: bool) -> None:
        """A status ended a pull with `unfilled` messages never sent (a 408: the oldest due one; a 409: one we cannot
        tell); `unfilled` comes off the oldest pulls."""
        pulls = self._pulls
        if expired and not (pulls and pulls[0][0] <= now + self._grace_s):
            return  # the 408 of a pull already swept
        # The server's count, not ours: it hands a batch's messages round-robin over the waiting pulls, so which
        # pull a message filled is a guess, while the total it says is left unfilled is not.
        self._take(unfilled)

    def _take(self, count: int) -> None:
        """`count` fewer owed, off the oldest pulls first."""
        pulls = self._pulls
        while count > 0 and pulls:
            head = pulls[0]
            taken = min(count, int(head[1]))
            head[1] -= taken
            self.owed -= taken
            count -= taken
            if head[1] <= 0:
                pulls.popleft()

    def sweep(self, now: float) -> None:
        """Forget pulls past their expiry by the grace period: whatever they still owed will not come."""
        pulls = self._pulls
        while pulls and pulls[0][0] + self._grace_s < now:
            self.owed -= int(pulls.popleft()[1])

    def clear(self) -> None:
        self._pulls.clear()
        self.owed = 0


def _pending(msg: Msg) -> int:
    return int(msg.headers.get("Nats-Pending-Messages", "0")) if msg.headers else 0
