"""One request's outputs: published with a rising `seq`, and the record of what the request did."""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
from nats.aio.client import Client as NATS
from nats.js.errors import APIError, NotFoundError

from schemas import Chunk, Error, Progress, Result, Tag
from schemas.codec import Codec
from schemas.common import JsonObject
from schemas.subjects import (
    ANSWERED_BY,
    CONTENT_TYPE,
    EXPECTED_LAST_SUBJECT_SEQ,
    MSGPACK,
    SERVICE_ERROR,
    SERVICE_ERROR_CODE,
)
from services.catalog import Catalog, InvalidModelError, Resolved, UnknownModelError
from services.errors import InvalidRequest, ServiceError, TooLarge, UnknownModel
from services.handlers._context import Limits, R
from services.hf.client import HfClient
from services.media_store import MediaStore
from services.observability import Metrics, RequestRecord
from services.tracing import span

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from services.runtime import TagRunner


@dataclass(frozen=True, slots=True)
class Deps:
    """What every runner shares: the HF client, the media store, the model catalog."""

    upstream: HfClient
    media: MediaStore
    catalog: Catalog
    metrics: Metrics


_WRONG_LAST_SEQUENCE = 10071
"""JetStream's error code when an expected-last-sequence header does not match."""

PROGRESS_HEARTBEAT_S = 2.0
"""A long job repeats an unchanged progress this often, so subscribers can show time passing."""


class Outputs:
    """Publishes one request's outputs with a rising `seq`; implements the handler `Context`."""

    __slots__ = (
        "_attempt",
        "_codec",
        "final",
        "first_output_at",
        "_headers",
        "_id",
        "_last_progress",
        "_nc",
        "_seq",
        "_started",
        "_subject",
        "final_sent",
        "runner",
    )

    def __init__(
        self,
        runner: TagRunner,
        nc: NATS,
        subject: str,
        codec: Codec,
        request_id: str,
        attempt: int,
        trace_headers: dict[str, str] | None = None,
    ) -> None:
        self.runner = runner
        self._nc = nc
        self._subject = subject
        self._codec = codec
        self._id = request_id
        self._attempt = attempt
        self._seq = 0
        # JSON needs no header; peers that asked in msgpack are told the replies are msgpack too.
        headers = {CONTENT_TYPE: MSGPACK} if codec.content_type == MSGPACK else {}
        self._headers = {**headers, **trace_headers} if trace_headers else (headers or None)
        self._started = time.monotonic()
        self._last_progress: tuple[str, int | None, float] | None = None
        self.final_sent = False
        self.final: Result | Error | None = None
        self.first_output_at: float | None = None

    @property
    def tag(self) -> Tag:
        return self.runner.tag

    @property
    def request_id(self) -> str:
        return self._id

    @property
    def attempt(self) -> int:
        return self._attempt

    @property
    def started_at(self) -> float:
        return self._started

    @property
    def upstream(self) -> HfClient:
        return self.runner.deps.upstream

    @property
    def media(self) -> MediaStore:
        return self.runner.deps.media

    @property
    def limits(self) -> Limits:
        return self.runner.limits

    def resolve(self, model: str | None) -> Resolved:
        try:
            return self.runner.deps.catalog.resolve(self.runner.tag, model)
        except UnknownModelError as exc:
            raise UnknownModel(str(exc)) from None
        except InvalidModelError as exc:
            raise InvalidRequest(f"model: {exc}") from None

    async def progress(self, status: str, queue_position: int | None = None) -> None:
        now = time.monotonic()
        last = self._last_progress
        if last is not None and (last[0], last[1]) == (status, queue_position) and now - last[2] < PROGRESS_HEARTBEAT_S:
            return
        self._last_progress = (status, queue_position, now)
        if self.first_output_at is None:
            self.first_output_at = now
        output = Progress(
            id=self._id,
            seq=self._seq,
            attempt=self._attempt,
            status=status,
            elapsed_s=round(now - self._started, 3),
            queue_position=queue_position,
        )
        self._seq += 1
        await self._nc.publish(self._subject, self._codec.encode(output), headers=self._headers)

    async def chunk(self, delta: str, reasoning: str | None = None, tool_calls: list[JsonObject] | None = None) -> None:
        if self.first_output_at is None:
            self.first_output_at = time.monotonic()
        seq = self._seq
        self._seq = seq + 1
        output = Chunk(
            id=self._id, seq=seq, attempt=self._attempt, delta=delta, reasoning=reasoning, tool_calls=tool_calls
        )
        await self._nc.publish(self._subject, self._codec.encode(output), headers=self._headers)

    async def result(self, result_type: type[R], **fields: Any) -> None:
        output = result_type(id=self._id, seq=self._seq, attempt=self._attempt, **fields)
        payload = self._codec.encode(output)
        limit = self._nc.max_payload
        if len(payload) > limit:
            # Checked before anything is marked final, so the caller gets this error as its one final output.
            raise TooLarge(
                f"the {len(payload)}-byte result is over the NATS max payload ({limit} bytes); ask for less"
                " (fewer texts, fewer max_tokens) or raise max_payload on the server"
            )
        self._seq += 1
        self.final_sent = True
        self.final = output
        if self.first_output_at is None:
            self.first_output_at = time.monotonic()
        await self._publish_final(payload, self._headers)

    async def error(self, err: ServiceError, *, core_request: bool) -> None:
        output = Error(
            id=self._id,
            seq=self._seq,
            attempt=self._attempt,
            code=err.code,
            message=err.message,
            retryable=err.retryable,
            status=err.status,
        )
        self._seq += 1
        self.final_sent = True
        self.final = output
        if self.first_output_at is None:
            self.first_output_at = time.monotonic()
        headers = dict(self._headers or {})
        if core_request:  # what `nats request` and micro-aware clients look at
            headers[SERVICE_ERROR] = err.message[:200]
            headers[SERVICE_ERROR_CODE] = err.code.value
        await self._publish_final(self._codec.encode(output), headers or None)

    async def _publish_final(self, payload: bytes, headers: dict[str, str] | None) -> None:
        with span("publish"):
            if self.runner.settings.mode == "durable" and self._id and not await self._claim(payload, headers):
                logger.info("%s request %s was answered by another delivery; this one stays silent", self.tag, self._id)
                return
            await self._nc.publish(self._subject, payload, headers=headers)

    async def _claim(self, payload: bytes, headers: dict[str, str] | None) -> bool:
        """Keep this final output as the request's one answer; False when another delivery's is kept already.

        Durable mode stores every final output in `HFBUS_FINALS` before publishing it, with a compare-and-set on
        the request's subject there: JetStream stores it only if no final of that request exists yet. Two
        deliveries of one request can run (a consumer cut off mid-request, acks a crashed server forgot), but
        only the one whose final got stored publishes it: a request is answered once. The kept copy is also
        what a subscriber that was away when the final went out fetches instead of losing it.
        """
        settings = self.runner.settings
        subject = settings.subjects.final(self.tag, self._id)
        token = secrets.token_hex(8)
        claim_headers = {**(headers or {}), EXPECTED_LAST_SUBJECT_SEQ: "0", ANSWERED_BY: token}
        js = self._nc.jetstream()
        kept_already = False
        # Heartbeats keep the delivery ours meanwhile, so waiting out a failover costs no redelivery.
        deadline = time.monotonic() + settings.ack_wait_s
        pause = 0.05
        while True:
            try:
                if kept_already:
                    # Either another delivery answered, or an earlier try of ours was stored but its ack lost.
                    kept = await self._nc.jsm().get_last_msg(settings.subjects.finals_stream, subject, direct=True)
                    return (kept.headers or {}).get(ANSWERED_BY) == token
                await js.publish(subject, payload, headers=claim_headers, timeout=2.0)
                return True
            except APIError as exc:
                if exc.err_code == _WRONG_LAST_SEQUENCE:
                    kept_already = True
                    continue
                if isinstance(exc, NotFoundError):  # the kept one expired in between: claim again
                    kept_already = False
                    continue
                if exc.code is not None and exc.code < 500:
                    logger.warning("could not keep the final output of %s request %s: %s", self.tag, self._id, exc)
                    return True  # the finals stream is misconfigured for good: answering beats staying silent
                failure: Exception = exc
            except Exception as exc:  # no JetStream for now: a failover, a restart, a reconnect
                failure = exc
            if time.monotonic() >= deadline:
                logger.warning(
                    "could not keep the final output of %s request %s within %.0f s (%r); publishing it unkept",
                    self.tag,
                    self._id,
                    settings.ack_wait_s,
                    failure,
                )
                return True
            await anyio.sleep(pause)
            pause = min(pause * 2, 1.0)


def request_record(outputs: Outputs, tag: Tag, model: str | None) -> RequestRecord:
    """What one finished request did, for metrics and the per-request log line."""
    final = outputs.final
    duration = time.monotonic() - outputs.started_at
    ttft = outputs.first_output_at - outputs.started_at if outputs.first_output_at is not None else None
    usage = getattr(final, "usage", None)
    return RequestRecord(
        request_id=outputs.request_id,
        tag=tag,
        model=getattr(final, "model", None) or model,
        provider=getattr(final, "provider", None),
        outcome="ok" if isinstance(final, Result) else final.code.value if isinstance(final, Error) else "handed_back",
        attempt=outputs.attempt,
        ttft_s=ttft,
        duration_s=duration,
        tokens_in=getattr(usage, "prompt_tokens", 0),
        tokens_out=getattr(usage, "completion_tokens", 0),
        cost_usd=getattr(final, "cost_usd", None),
    )
