"""JetStream counter streams (nats-server 2.12+, ADR-49): one subject is one integer, changed by atomic increments.

A publish with a `Nats-Incr: <delta>` header and no payload adds `delta` on the server, and the ack carries the
subject's new total, so any number of processes can count against one limit with a single round trip each and
no read-modify-write. nats-py 2.16 knows the stream flag and the ack's `val` but has no helper, so the header is
written here.

What the server allows, checked against the nats-server 2.15 the tests run:
- no `Nats-Expected-*` headers (no compare-and-set) and no per-message TTL on a counter stream: windows that must
  vanish live in a stream with `max_age`;
- `Nats-Msg-Id` dedupe works, so a publish retried after a lost ack counts once; the duplicate's ack carries no
  total, which is then read back from the subject's last message.
"""

from __future__ import annotations

import logging
import time

import anyio
import orjson
from nats.aio.client import Client as NATS
from nats.errors import ConnectionClosedError
from nats.errors import Error as NatsError
from nats.js import api
from nats.js.errors import APIError, NotFoundError

from schemas.subjects import MSG_ID
from services.bus.acked import publish_acked
from services.bus.jetstream import create_or_update_stream

logger = logging.getLogger(__name__)

INCR = "Nats-Incr"
_ATTEMPT_S = 1.0
"""Longest wait for one ack: a lost one is retried (deduped) instead of waited on."""
_READERS = 16
"""Reads at once when collecting many totals."""


class CountersUnavailable(ConnectionError):
    """JetStream did not take an increment (or answer a read) before the deadline."""


async def ensure_counter_stream(
    nc: NATS, name: str, subjects: list[str], *, replicas: int, max_age_s: float | None, dedupe_s: float
) -> None:
    """Create the counter stream, or bring an existing one to this configuration (idempotent)."""
    config = api.StreamConfig(
        name=name,
        subjects=subjects,
        retention=api.RetentionPolicy.LIMITS,
        storage=api.StorageType.FILE,
        allow_msg_counter=True,
        # The last message of a subject holds its total; older ones are history nobody reads.
        max_msgs_per_subject=1,
        max_age=max_age_s,
        duplicate_window=dedupe_s,
        allow_direct=True,
        num_replicas=replicas,
    )
    await create_or_update_stream(nc, config)


class Counters:
    """Increments and reads of the counters in one stream, each bounded by `deadline_s`."""

    def __init__(self, nc: NATS, stream: str, *, deadline_s: float = 5.0) -> None:
        self._nc = nc
        self._stream = stream
        self._deadline_s = deadline_s

    async def add(self, subject: str, delta: int, *, msg_id: str) -> int:
        """Add `delta` to `subject`'s total and return the new total.

        Retried until the deadline when an ack is lost or the stream is briefly leaderless; `msg_id` makes every
        retry of one increment count once. After a duplicate the total is read back, so it may already include
        increments made by others since: callers comparing it with a limit then err on the side of refusing.

        Raises:
            CountersUnavailable: no ack before the deadline.
        """
        deadline = time.monotonic() + self._deadline_s
        headers = {INCR: str(delta), MSG_ID: msg_id}
        pause = 0.02
        while True:
            remaining = deadline - time.monotonic()
            try:
                ack = await publish_acked(self._nc, subject, b"", headers, wait_s=max(0.05, min(_ATTEMPT_S, remaining)))
                if (total := orjson.loads(ack.data).get("val")) is not None:
                    return int(total)
                return await self.total(subject)
            except ConnectionClosedError as err:
                raise CountersUnavailable(f"NATS connection closed while counting on {self._stream}") from err
            except (NatsError, ConnectionError) as err:
                # A stream that refuses the message (a 4xx) will refuse it again; anything else may pass later.
                if isinstance(err, APIError) and err.code is not None and 400 <= err.code < 500:
                    raise
                failure: Exception = err
            if time.monotonic() + pause >= deadline:
                raise CountersUnavailable(
                    f"{self._stream} took no increment within {self._deadline_s:g}s ({type(failure).__name__})"
                ) from failure
            await anyio.sleep(pause)
            pause = min(pause * 2, 0.5)

    async def total(self, subject: str) -> int:
        """The subject's total; 0 when it has none (never counted, or its window aged out)."""
        try:
            with anyio.fail_after(self._deadline_s):
                msg = await self._nc.jetstream().get_last_msg(self._stream, subject, direct=True)
        except NotFoundError:
            return 0
        except (TimeoutError, NatsError) as err:
            raise CountersUnavailable(f"could not read a total from {self._stream}") from err
        return _value(msg.data)

    async def totals(self, subjects_filter: str) -> dict[str, int]:
        """Every subject matching the filter with its total."""
        try:
            with anyio.fail_after(self._deadline_s):
                info = await self._nc.jsm().stream_info(self._stream, subjects_filter=subjects_filter)
        except NotFoundError:
            return {}  # nothing was ever counted: the stream is made by the first gateway to start
        except (TimeoutError, NatsError) as err:
            raise CountersUnavailable(f"could not list the subjects of {self._stream}") from err
        found: dict[str, int] = {}
        readers = anyio.CapacityLimiter(_READERS)

        async def read(subject: str) -> None:
            async with readers:
                found[subject] = await self.total(subject)

        async with anyio.create_task_group() as tg:
            for subject in info.state.subjects or {}:
                tg.start_soon(read, subject)
        return found


def _value(data: bytes | None) -> int:
    """A counter message's body is `{"val": "<integer>"}`, the integer as a string (it may exceed 64 bits)."""
    try:
        return int(orjson.loads(data or b"{}").get("val", 0))
    except (orjson.JSONDecodeError, ValueError, AttributeError):
        logger.warning("a counter message without a readable total; counted as 0")
        return 0
