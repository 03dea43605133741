"""Requests that cannot be run: rejected at once (undecodable, naming a refused reply subject, or past a core
consumer's backlog) or given up on after their deliveries ran out (answered with `internal` and copied to the
dead letters).

Each gets exactly one error output, addressed as well as its bytes allow and never to a subject its sender may
not reach (`services/reply_policy.py`).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Coroutine
from typing import Any

import msgspec
import orjson
from nats.aio.client import Client as NATS
from nats.js.errors import NotFoundError

from schemas import Tag
from schemas.codec import Codec, codec_for
from schemas.common import REQUEST_ID_MAX, REQUEST_ID_PATTERN
from schemas.subjects import DEAD_DELIVERIES, DEAD_REASON, DEAD_REASON_MAX, MSG_ID, MSGPACK
from services.bus.connection import Delivery
from services.bus.finals import KeptFinals
from services.consumer.outputs import Deps, Outputs, TagScope
from services.consumer.records import Counters, request_record
from services.errors import Internal, RateLimited, ServiceError
from services.settings import Settings

logger = logging.getLogger(__name__)


class _Envelope(msgspec.Struct):
    """Just enough of a rejected request to address the error to its sender."""

    id: Any = None
    reply_to: Any = None


OVERLOAD_LOG_EVERY_S = 10.0
"""A consumer past its backlog logs how many it refused at most this often: one line per refusal would flood the
log exactly when the machine has the least to spare."""

REFUSING_AT_MOST = 1_000
"""Refusals in progress at once; past it a request is dropped unanswered (counted and logged all the same), so a
flood beyond the backlog cannot pile up tasks faster than their answers go out."""

_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)
_json_envelope = msgspec.json.Decoder(_Envelope)
_msgpack_envelope = msgspec.msgpack.Decoder(_Envelope)


class Refusals:
    """The error answers of one tag's requests that cannot be run."""

    def __init__(self, nc: NATS, settings: Settings, tag: Tag, scope: TagScope, counters: Counters, deps: Deps) -> None:
        self.tag = tag
        self._nc = nc
        self._settings = settings
        self._scope = scope
        self._finals: KeptFinals = scope.finals
        self._counters = counters
        self._deps = deps
        self._replies = settings.reply_policy
        self._overloaded = 0
        self._overload_dropped = 0
        self._overload_logged_at = -OVERLOAD_LOG_EVERY_S
        self._refusing = 0

    def address(self, data: bytes, codec: Codec, reply: str | None) -> tuple[str, str]:
        """(request id, reply subject) of a request we cannot decode fully, as well as its bytes allow."""
        envelope = _Envelope()
        try:
            decoder = _msgpack_envelope if codec.content_type == MSGPACK else _json_envelope
            envelope = decoder.decode(data)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            pass  # nothing usable: the error goes to the `invalid` out subject (or the NATS reply)
        request_id = envelope.id if isinstance(envelope.id, str) and _is_request_id(envelope.id) else ""
        reply_to = envelope.reply_to if isinstance(envelope.reply_to, str) and envelope.reply_to else None
        own = self._settings.subjects.out(self.tag, request_id or "invalid")
        if self._replies.check(reply, reply_to, self.tag, request_id) is not None:
            return request_id, own  # never publish where the request's sender may not: see services/reply_policy.py
        return request_id, reply or reply_to or own

    async def reject(
        self, delivery: Delivery, codec: Codec, err: ServiceError, trace_headers: dict[str, str] | None
    ) -> None:
        """Answer an undecodable request with one error; a retry could not help, so it is terminated."""
        request_id, subject = self.address(delivery.data, codec, delivery.reply)
        logger.warning("rejected %s request %r: %s", self.tag, request_id, err.message)
        await self._refuse(delivery, codec, err, trace_headers, request_id, subject)

    def overloaded(self, delivery: Delivery, waiting: int) -> Coroutine[Any, Any, None] | None:
        """A core request past the backlog: the refusal to run (a retryable `rate_limited` error, where nats-py
        would have dropped the request and left its caller to time out), or None when `REFUSING_AT_MOST` are under
        way already and this one is dropped. Called inside nats-py's read loop: it only counts and logs. Either way
        the request counts as one that errored."""
        self._counters.requests += 1
        self._counters.errors += 1
        self._overloaded += 1
        refuse = self._refusing < REFUSING_AT_MOST
        if not refuse:
            self._overload_dropped += 1
        now = time.monotonic()
        if now - self._overload_logged_at >= OVERLOAD_LOG_EVERY_S:
            self._overload_logged_at = now
            logger.warning(
                "%s: at capacity (%d requests wait for a slot): %d past the backlog since start, %d of them dropped"
                " unanswered; logged at most every %.0f s",
                self.tag,
                waiting,
                self._overloaded,
                self._overload_dropped,
                OVERLOAD_LOG_EVERY_S,
            )
        if not refuse:
            return None
        self._refusing += 1
        return self._refuse_overloaded(delivery, waiting)

    async def _refuse_overloaded(self, delivery: Delivery, waiting: int) -> None:
        err = RateLimited(f"the {self.tag} consumers are at capacity ({waiting} requests wait for a slot); retry later")
        try:
            codec = codec_for(delivery.headers)
            request_id, subject = self.address(delivery.data, codec, delivery.reply)
            await self._refuse(delivery, codec, err, None, request_id, subject)
        except Exception as exc:  # a closed or full connection: the caller times out, as it would have anyway
            logger.warning("could not refuse a %s request past the backlog: %r", self.tag, exc)
        finally:
            self._refusing -= 1

    async def _refuse(
        self,
        delivery: Delivery,
        codec: Codec,
        err: ServiceError,
        trace_headers: dict[str, str] | None,
        request_id: str,
        subject: str,
    ) -> None:
        self._counters.rejected += 1
        self._counters.last_error = f"{err.code}: {err.message}"[:200]
        outputs = Outputs(self._scope, subject, codec, request_id, delivery.attempt, trace_headers, delivery.stream_seq)
        self._deps.metrics.started(self.tag)
        try:
            await outputs.error(err, core_request=delivery.reply is not None and subject == delivery.reply)
        finally:
            record = request_record(outputs, self.tag, None)
            self._deps.metrics.finished(record)
            self._deps.events.publish(record)
        await delivery.term()

    async def give_up(
        self, data: bytes, headers: dict[str, str] | None, deliveries: int, reason: str, request_seq: int
    ) -> None:
        """A request used up its deliveries: one `internal` error to its caller, a copy to the dead letters."""
        codec = codec_for(headers)
        request_id, subject = self.address(data, codec, None)
        if request_id and await self._finals.answered(self.tag, request_id, request_seq):
            return  # answered, only never acked: nothing to give up on
        outputs = Outputs(self._scope, subject, codec, request_id, deliveries, request_seq=request_seq)
        message = f"gave up after {deliveries} deliveries: {reason}"
        logger.error("%s request %r: %s", self.tag, request_id, message)
        # The copy first: whoever sees the error can find the dead letter already stored.
        self._counters.dead_lettered += 1
        dead_headers = {**(headers or {}), DEAD_REASON: reason[:DEAD_REASON_MAX], DEAD_DELIVERIES: str(deliveries)}
        dead_headers.pop(MSG_ID, None)  # the dead-letter stream must keep every copy, not dedupe them
        try:
            await self._nc.jetstream().publish(self._settings.subjects.dead(self.tag), data, headers=dead_headers)
        except Exception:
            logger.exception("could not copy %s request %r to the dead letters", self.tag, request_id)
        await outputs.error(Internal(message), core_request=False)

    async def watch_max_deliveries(self) -> None:
        """JetStream stops redelivering a request whose consumers kept dying; answer it and dead-letter it."""
        subjects = self._settings.subjects
        advisories = await self._nc.subscribe(
            subjects.max_deliveries_advisory(self.tag), queue=f"hfbus.dead.{self.tag}"
        )
        jsm = self._nc.jsm()
        try:
            async for advisory in advisories.messages:
                try:
                    event = orjson.loads(advisory.data)
                    seq, deliveries = int(event["stream_seq"]), int(event["deliveries"])
                    stored = await jsm.get_msg(subjects.stream, seq)
                except (orjson.JSONDecodeError, KeyError, ValueError, NotFoundError):
                    continue  # already settled or removed: nothing left to answer
                except Exception as exc:  # JetStream away for a moment: the request stays stored, not lost
                    logger.warning("could not read the %s request a max-deliveries advisory names: %r", self.tag, exc)
                    continue
                try:
                    await self.give_up(
                        stored.data or b"", stored.headers, deliveries, "its consumer never finished it", seq
                    )
                    await jsm.delete_msg(subjects.stream, seq)
                except Exception:
                    logger.exception("could not give up on a %s request whose consumers never finished it", self.tag)
        finally:
            await advisories.unsubscribe()


def _is_request_id(value: str) -> bool:
    """The contract's own rule for ids, so an error is addressed to `ai.out.<tag>.<id>` only for a valid one."""
    return len(value) <= REQUEST_ID_MAX and _REQUEST_ID.fullmatch(value) is not None
