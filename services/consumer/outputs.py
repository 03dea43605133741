"""One request's outputs: published with a rising `seq`, and the record of what the request did."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
from nats.aio.client import Client as NATS

from schemas import Chunk, Error, Progress, Result, Tag, TokenUsage
from schemas.codec import Codec
from schemas.common import JsonObject
from schemas.subjects import CONTENT_TYPE, MSGPACK, SERVICE_ERROR, SERVICE_ERROR_CODE
from services.bus.defaults import LiveDefaults
from services.bus.finals import KeptFinals
from services.bus.media_store import MediaStore
from services.bus.outlog import OutLog, RunLog
from services.bus.publish import Publisher, drained
from services.catalog import Catalog, InvalidModelError, Resolved, UnknownModelError, token_cost
from services.consumer.chunks import ChunkWriter
from services.consumer.events import DoneEvents
from services.errors import InvalidRequest, ServiceError, TooLarge, UnknownModel
from services.handlers.seams import Limits, R
from services.hf.client import HfClient
from services.observability import Metrics
from services.observability.tracing import span

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Deps:
    """What every runner shares: the HF client, the media store, the model catalog and the live defaults."""

    upstream: HfClient
    media: MediaStore
    catalog: Catalog
    metrics: Metrics
    defaults: LiveDefaults
    events: DoneEvents
    outlog: OutLog
    """Resumable runs' outputs until the out stream confirms them, published again after a reconnect."""


@dataclass(frozen=True, slots=True)
class TagScope:
    """What every request of one tag shares: the connection, the tag and its limits, kept finals, the deps."""

    nc: NATS
    tag: Tag
    limits: Limits
    finals: KeptFinals
    deps: Deps


PROGRESS_HEARTBEAT_S = 2.0
"""A long job repeats an unchanged progress this often, so subscribers can show time passing."""


class Outputs:
    """Publishes one request's outputs with a rising `seq`; implements the handler `Context`."""

    __slots__ = (
        "_attempt",
        "_chunks",
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
        "_to_subject",
        "_run",
        "_request_seq",
        "_resolved",
        "_usage_so_far",
        "final_sent",
        "_scope",
        "final_at",
        "kept_at",
        "published_at",
        "settled_at",
    )

    def __init__(
        self,
        scope: TagScope,
        subject: str,
        codec: Codec,
        request_id: str,
        attempt: int,
        trace_headers: dict[str, str] | None = None,
        request_seq: int | None = None,
        kept: str | None = None,
    ) -> None:
        self._scope = scope
        self._nc = scope.nc
        self._subject = subject
        self._to_subject = subject != kept
        """Whether outputs go to `subject` as plain messages: not when it is the resumable out subject itself."""
        self._codec = codec
        self._id = request_id
        self._attempt = attempt
        self._request_seq = request_seq
        """The request message's work-queue sequence (durable mode): its final output is claimed under it."""
        self._seq = 0
        # JSON needs no header; peers that asked in msgpack are told the replies are msgpack too.
        headers = {CONTENT_TYPE: MSGPACK} if codec.content_type == MSGPACK else {}
        self._headers = {**headers, **trace_headers} if trace_headers else (headers or None)
        self._started = time.monotonic()
        self._last_progress: tuple[str, int | None, float] | None = None
        self.final_sent = False
        self.final: Result | Error | None = None
        self.first_output_at: float | None = None
        self._resolved: Resolved | None = None
        self._usage_so_far: Callable[[], TokenUsage] | None = None
        self._chunks: ChunkWriter | None = None
        self._run: RunLog | None = scope.deps.outlog.run(kept, self._headers) if kept is not None else None
        """A resumable request's out subject (`kept`), whose outputs are held until the out stream has them."""
        # Stage marks (time.monotonic), for `stage_times`: the final ready, kept (durable), published, settled.
        self.final_at: float | None = None
        self.kept_at: float | None = None
        self.published_at: float | None = None
        self.settled_at: float | None = None

    @property
    def tag(self) -> Tag:
        return self._scope.tag

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
        return self._scope.deps.upstream

    @property
    def media(self) -> MediaStore:
        return self._scope.deps.media

    @property
    def limits(self) -> Limits:
        return self._scope.limits

    def resolve(self, model: str | None) -> Resolved:
        try:
            deps, tag = self._scope.deps, self._scope.tag
            live = deps.defaults.get(tag)
            if live is None:
                self._resolved = deps.catalog.resolve(tag, model)
            else:
                self._resolved = deps.catalog.resolve(tag, model, default_model=live.model, strategy=live.strategy)
            return self._resolved
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
        await self._send(output.seq, self._codec.encode(output), self._headers)

    async def chunk(self, delta: str, reasoning: str | None = None, tool_calls: list[JsonObject] | None = None) -> None:
        if self.first_output_at is None:
            self.first_output_at = time.monotonic()
        seq = self._seq
        self._seq = seq + 1
        output = Chunk(
            id=self._id, seq=seq, attempt=self._attempt, delta=delta, reasoning=reasoning, tool_calls=tool_calls
        )
        await self._send(seq, self._codec.encode(output), self._headers)

    async def _send(self, seq: int, payload: bytes, headers: dict[str, str] | None, *, final: bool = False) -> None:
        # A `Publisher`, not `nc.publish`: the same command on the same buffer without a coroutine chain per call.
        if self._to_subject and not Publisher(self._nc, self._subject, headers).publish(payload):
            await drained(self._nc)
        if self._run is not None:
            self._run.publish(seq, payload, None if headers is self._headers else headers, final=final)

    def chunk_nowait(
        self, delta: str, reasoning: str | None = None, tool_calls: list[JsonObject] | None = None
    ) -> bool:
        if self.first_output_at is None:
            self.first_output_at = time.monotonic()
        chunks = self._chunks
        if chunks is None:
            chunks = self._chunks = ChunkWriter(
                self._nc,
                self._subject if self._to_subject else None,
                self._headers,
                self._codec,
                self._id,
                self._attempt,
                run=self._run,
            )
        seq = self._seq
        self._seq = seq + 1
        return chunks.send(seq, delta, reasoning, tool_calls)

    async def drain(self) -> None:
        await drained(self._nc)

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
        self.final = output
        if self.first_output_at is None:
            self.first_output_at = time.monotonic()
        await self._publish_final(output.seq, payload, self._headers)

    def track_usage(self, so_far: Callable[[], TokenUsage]) -> None:
        self._usage_so_far = so_far

    async def error(self, err: ServiceError, *, core_request: bool) -> None:
        usage = self._usage_so_far() if self._usage_so_far is not None else None
        entry = self._resolved.entry if self._resolved is not None else None
        output = Error(
            id=self._id,
            seq=self._seq,
            attempt=self._attempt,
            code=err.code,
            message=err.message,
            retryable=err.retryable,
            status=err.status,
            usage=usage,
            cost_usd=token_cost(entry, usage) if usage is not None else None,
        )
        self._seq += 1
        self.final = output
        if self.first_output_at is None:
            self.first_output_at = time.monotonic()
        headers = dict(self._headers or {})
        if core_request:  # what `nats request` and micro-aware clients look at
            headers[SERVICE_ERROR] = err.message[:200]
            headers[SERVICE_ERROR_CODE] = err.code.value
        await self._publish_final(output.seq, self._codec.encode(output), headers or None)

    async def _publish_final(self, seq: int, payload: bytes, headers: dict[str, str] | None) -> None:
        # Shielded: a cancel or the shutdown deadline landing mid-claim would otherwise leave a request acked
        # with its answer neither kept nor sent. The claim bounds itself (HFBUS_ACK_WAIT).
        self.final_at = time.monotonic()
        with anyio.CancelScope(shield=True), span("publish"):
            await self._claim_and_publish(seq, payload, headers)
        self.final_sent = True

    async def _claim_and_publish(self, seq: int, payload: bytes, headers: dict[str, str] | None) -> None:
        if (
            self._request_seq is not None
            and self._id
            and not await self._scope.finals.claim(self.tag, self._id, self._request_seq, payload, headers)
        ):
            logger.info("%s request %s was answered by another delivery; this one stays silent", self.tag, self._id)
            return
        if self._request_seq is not None:
            self.kept_at = time.monotonic()
        await self._send(seq, payload, headers, final=True)
        self.published_at = time.monotonic()
