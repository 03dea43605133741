"""Durable mode's kept final outputs (`HFBUS_FINALS`): one answer per request, and a copy for late subscribers.

A request is identified here by the stream sequence of its message in the work queue, not only by its id:
every delivery of one message (a redelivery, or one a crashed server forgot it had made) shares that
sequence, while a new request that reuses an old id gets a new one.

    claim -> stored .................................. ours: publish it, then ack
    claim -> a final of this request message exists .. another delivery answered: stay silent
             (unless it is an earlier try of this very claim whose reply was lost)
    claim -> a final of an older message with the id .. replace it: the id was reused
    claim -> a final of a newer message with the id ... publish unkept: the newer one's stays kept
    claim -> no JetStream for `ack_wait` ............. publish unkept: answering beats staying silent
"""

from __future__ import annotations

import logging
import secrets
import time

import anyio
from nats.aio.client import Client as NATS
from nats.js.api import RawStreamMsg
from nats.js.errors import APIError, NotFoundError

from schemas import Tag
from schemas.subjects import ANSWERED_BY, EXPECTED_LAST_SUBJECT_SEQ, REQUEST_SEQ, answered_request_seq
from services.bus.acked import publish_acked
from services.settings import Settings

logger = logging.getLogger(__name__)

_WRONG_LAST_SEQUENCE = 10071
"""JetStream's error code when an expected-last-sequence header does not match."""


class KeptFinals:
    """Reads and claims the kept final outputs of one deployment."""

    def __init__(self, nc: NATS, settings: Settings) -> None:
        self._nc = nc
        self._settings = settings

    async def answered(self, tag: Tag, request_id: str, request_seq: int) -> bool:
        """Whether this request message's final output is kept: one direct get, about 0.1 ms.

        In a cluster any replica may answer and one may lag: a miss only costs a run whose claim then fails.
        """
        try:
            kept = await self._last(tag, request_id, direct=True)
        except NotFoundError:
            return False
        except Exception:
            logger.warning("could not check whether %s request %s was already answered", tag, request_id)
            return False
        return answered_request_seq(kept.headers) == request_seq

    async def claim(
        self, tag: Tag, request_id: str, request_seq: int, payload: bytes, headers: dict[str, str] | None
    ) -> bool:
        """Keep this final output as the request's one answer; False when another delivery's is kept already.

        The store is a compare-and-set on the request's subject, so of two deliveries of one request running
        at once (a consumer cut off mid-request, acks a crashed server forgot), exactly one answers.
        """
        settings = self._settings
        subject = settings.subjects.final(tag, request_id)
        token = secrets.token_hex(8)
        claim_headers = {**(headers or {}), ANSWERED_BY: token, REQUEST_SEQ: str(request_seq)}
        expected_last: int | None = 0  # no final of this id yet; None: look at the one kept
        # Heartbeats keep the delivery ours meanwhile, so waiting out a failover costs no redelivery.
        deadline = time.monotonic() + settings.ack_wait_s
        pause = 0.05
        while True:
            failure: Exception | None = None
            try:
                if expected_last is None:
                    # From the stream leader: a replica answering a direct get may not have the kept one yet.
                    kept = await self._last(tag, request_id, direct=False)
                    kept_for = answered_request_seq(kept.headers)
                    if kept_for == request_seq:
                        # Another delivery of this message, or an earlier try of ours whose reply was lost.
                        return (kept.headers or {}).get(ANSWERED_BY) == token
                    if kept_for is not None and kept_for > request_seq:
                        # A newer request reused the id and is kept; this older message is answered unkept.
                        return True
                    expected_last = kept.seq or 0  # the final of an older request with the same id: replace it
                else:
                    claim_headers[EXPECTED_LAST_SUBJECT_SEQ] = str(expected_last)
                    await publish_acked(self._nc, subject, payload, claim_headers, wait_s=2.0)
                    return True
            except APIError as exc:
                if exc.err_code == _WRONG_LAST_SEQUENCE:
                    expected_last = None
                elif isinstance(exc, NotFoundError):  # the kept one expired in between: claim afresh
                    expected_last = 0
                elif exc.code is not None and exc.code < 500:
                    logger.warning("could not keep the final output of %s request %s: %s", tag, request_id, exc)
                    return True  # the finals stream is misconfigured for good: answering beats staying silent
                else:
                    failure = exc
            except Exception as exc:  # no JetStream for now: a failover, a restart, a reconnect
                failure = exc
            if time.monotonic() >= deadline:
                logger.warning(
                    "could not keep the final output of %s request %s within %.0f s (%r); publishing it unkept",
                    tag,
                    request_id,
                    settings.ack_wait_s,
                    failure,
                )
                return True
            if failure is not None:
                await anyio.sleep(pause)
                pause = min(pause * 2, 1.0)

    async def next_run(self, tag: Tag, request_id: str) -> int:
        """The number of a new run of this request: one more than any run before, whoever started it.

        A delivery count cannot number runs: after a server crash a request already delivered can come back as
        delivery 1, and two runs saying attempt 1 would mix their chunks in a resumable stream. The count is a
        compare-and-set on the request's run subject, so two runs starting at once still get different numbers.
        """
        subject = self._settings.subjects.run(tag, request_id)
        js, jsm = self._nc.jetstream(), self._nc.jsm()
        deadline = time.monotonic() + self._settings.ack_wait_s
        while True:
            try:
                try:
                    last = await jsm.get_last_msg(self._settings.subjects.finals_stream, subject, direct=False)
                    seq, runs = last.seq or 0, int(last.data or b"0")
                except NotFoundError:
                    seq, runs = 0, 0
                await js.publish(subject, str(runs + 1).encode(), headers={EXPECTED_LAST_SUBJECT_SEQ: str(seq)})
                return runs + 1
            except APIError as exc:
                if exc.err_code == _WRONG_LAST_SEQUENCE:
                    continue  # another run counted in between: count after it
                failure: Exception = exc
            except Exception as exc:  # no JetStream for now: a failover, a restart, a reconnect
                failure = exc
            if time.monotonic() >= deadline:
                raise failure
            await anyio.sleep(0.05)

    async def _last(self, tag: Tag, request_id: str, *, direct: bool) -> RawStreamMsg:
        subjects = self._settings.subjects
        return await self._nc.jsm().get_last_msg(subjects.finals_stream, subjects.final(tag, request_id), direct=direct)
