"""The uniform wrapper around every handler: decode -> handle -> exactly one final output -> settle.

Settling (durable mode) is a small table:

    final output published (result or error) ........ ack
    request could not be decoded ...................... invalid_request, then term (a retry cannot help)
    crash before any final output, deliveries left .... nak: another instance tries again (attempt + 1)
    crash on the last allowed delivery ................ internal error, then term
    shutdown deadline passed while running ............ nak (core mode: a `cancelled` error)
"""

from __future__ import annotations

import logging
import time
from typing import Any

import anyio
import msgspec
from anyio.abc import TaskStatus
from anyio.lowlevel import checkpoint
from nats.aio.client import Client as NATS

from schemas import Error, Tag
from schemas.codec import Codec, codec_for
from schemas.subjects import MSGPACK
from services.bus.connection import Delivery, Intake
from services.bus.finals import KeptFinals
from services.consumer.inflight import InFlight, Running
from services.consumer.outputs import Deps, Outputs, TagScope
from services.consumer.records import Counters, request_record, stage_times
from services.consumer.refusals import Refusals
from services.consumer.workers import Workers
from services.errors import Cancelled, Internal, InvalidRequest, ServiceError
from services.handlers import HandlerSpec
from services.handlers.seams import Limits
from services.observability import log_request
from services.observability.tracing import request_trace, span
from services.settings import Settings

logger = logging.getLogger(__name__)


LATE_FIRST_DELIVERY_S = 1.0
"""A first delivery that waited longer than this in the stream is checked against the kept finals too: a
crashed server that lost its consumer state delivers answered requests again as first deliveries. Fresh ones
skip the lookup, which would sit on the time-to-first-token path."""


STARTS_PER_PASS = 16
"""The fewest requests started per event-loop pass when more are waiting: each runs its first step (decode,
checks, the upstream call's start: a few hundred µs) in the next pass."""


class TagRunner:
    """Serves one tag: intake, bounded concurrency, one child task per request."""

    def __init__(
        self, nc: NATS, settings: Settings, tag: Tag, spec: HandlerSpec, deps: Deps, inflight: InFlight
    ) -> None:
        self.tag = tag
        self.deps = deps
        self.settings = settings
        self.limits = Limits(max_messages=settings.max_messages, max_tokens=settings.max_tokens)
        self.counters = Counters()
        self.finals = KeptFinals(nc, settings)
        self.replies = settings.reply_policy
        self.nc = nc
        self.scope = TagScope(nc, tag, self.limits, self.finals, deps)
        self.refusals = Refusals(nc, settings, tag, self.scope, self.counters, deps)
        self._spec = spec
        self._inflight = inflight
        self._slots = anyio.Semaphore(settings.concurrency_for(tag))
        self._intake_scope = anyio.CancelScope()
        self._durable = settings.mode == "durable"
        self._json_decoder = msgspec.json.Decoder(spec.request_type)
        self._msgpack_decoder = msgspec.msgpack.Decoder(spec.request_type)

    def stop(self) -> None:
        """Stop taking requests; in-flight ones get the shutdown grace period."""
        self._intake_scope.cancel()

    async def serve(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run until `stop()`, then finish in-flight work within the grace period."""
        intake = Intake(self.nc, self.settings, self.tag)
        async with anyio.create_task_group() as background:
            if self._durable:
                background.start_soon(self._heartbeat)
                background.start_soon(self.refusals.watch_max_deliveries)
            workers = Workers()

            def overflow(delivery: Delivery) -> None:
                # Past the backlog: refused without taking a slot (or dropped, when too many refusals are under way).
                if (refusal := self.refusals.overloaded(delivery, intake.waiting())) is not None:
                    workers.start(refusal)

            try:
                with self._intake_scope:
                    async with intake.open(lambda: self._slots.value, overflow) as deliveries:
                        task_status.started()
                        iterator = aiter(deliveries)
                        started, budget = 0, STARTS_PER_PASS
                        while True:
                            try:
                                self._slots.acquire_nowait()  # a free slot costs no event-loop pass
                            except anyio.WouldBlock:
                                await self._slots.acquire()
                            if not intake.waiting():
                                started, budget = 0, STARTS_PER_PASS  # the next request comes in a later pass
                            try:
                                delivery = await anext(iterator)
                            except StopAsyncIteration:
                                break
                            workers.start(self._run(delivery))
                            started += 1
                            if started >= budget and (waiting := intake.waiting()):
                                # A burst starts in slices, one per event-loop pass, with the streams already
                                # running read in between (200 starts in one pass held them for ~50 ms). A slice
                                # is a quarter of what waits, so a backlog never outgrows the passes.
                                budget, started = max(STARTS_PER_PASS, waiting // 4), 0
                                await checkpoint()
                await workers.wait(self.settings.shutdown_grace_s)  # in-flight requests get the grace period
            finally:
                await workers.close()  # what still runs is cancelled, also when serving itself was
            # Heartbeats ran until the last request settled; nothing is left for them to do.
            background.cancel_scope.cancel()

    async def _heartbeat(self) -> None:
        # One ticker for all in-flight requests instead of a task each: cheaper at 1,000 streams.
        interval = self.settings.ack_wait_s / 3
        while True:
            await anyio.sleep(interval)
            for entry in list(self._inflight.running.values()):
                if entry.delivery.durable:
                    await entry.delivery.in_progress()

    async def _run(self, delivery: Delivery) -> None:
        try:
            await self._process(delivery)
        except Exception:
            # A bug on one request must never take the consumer down: it is logged and the intake goes on.
            logger.exception("%s: a request escaped the runtime's error handling", self.tag)
        finally:
            self._slots.release()

    def _decode(self, delivery: Delivery, codec: Codec) -> Any:
        size = len(delivery.data)
        if size > self.settings.max_request_bytes:
            raise InvalidRequest(
                f"request is {size} bytes; the limit is {self.settings.max_request_bytes} (HFBUS_MAX_REQUEST_BYTES)"
            )
        decoder = self._msgpack_decoder if codec.content_type == MSGPACK else self._json_decoder
        try:
            return decoder.decode(delivery.data)
        except msgspec.ValidationError as exc:
            raise InvalidRequest(f"invalid {self.tag} request: {exc}") from None
        except msgspec.DecodeError as exc:
            kind = "msgpack" if codec.content_type == MSGPACK else "JSON"
            raise InvalidRequest(f"{self.tag} request is not valid {kind}: {exc}") from None
        except UnicodeDecodeError:
            raise InvalidRequest(f"{self.tag} request has a string that is not valid UTF-8") from None
        except RecursionError:
            raise InvalidRequest(f"{self.tag} request is nested too deeply") from None

    async def _process(self, delivery: Delivery) -> None:
        started = time.perf_counter_ns()
        counters = self.counters
        counters.in_flight += 1
        errored = False
        try:
            with request_trace(delivery.headers, self.tag, "") as trace_headers:
                errored = await self._traced(delivery, trace_headers)
        finally:
            counters.in_flight -= 1
            counters.requests += 1
            counters.processing_ns += time.perf_counter_ns() - started
            if errored:
                counters.errors += 1

    async def _traced(self, delivery: Delivery, trace_headers: dict[str, str] | None) -> bool:
        """Run one delivery to its end; True when its final output is an error."""
        taken_at = time.monotonic()
        queued_s = delivery.queued_s if delivery.durable else None
        codec = codec_for(delivery.headers)
        try:
            with span("decode"):
                request = self._decode(delivery, codec)
        except ServiceError as err:
            await self.refusals.reject(delivery, codec, err, trace_headers)
            return True
        request_id: str = request.id
        if (refused := self.replies.check(delivery.reply, request.reply_to, self.tag, request_id)) is not None:
            # Before anything else: not run, not billed, one error on the request's own output subject.
            await self.refusals.reject(delivery, codec, InvalidRequest(refused), trace_headers)
            return True
        own = self.settings.subjects.out(self.tag, request_id)
        subject = delivery.reply or request.reply_to or own
        resumable = self.settings.resumable == "always" or (request.resumable and self.settings.resumable != "off")
        if request.resumable and self.settings.resumable == "off":
            off = "resumable: this deployment keeps no outputs (HFBUS_RESUMABLE=off); send it without `resumable`"
            await self.refusals.reject(delivery, codec, InvalidRequest(off), trace_headers)
            return True
        attempt = delivery.attempt
        if attempt > 1:
            self.counters.redelivered += 1
        request_seq = delivery.stream_seq
        if (
            request_seq is not None
            and (attempt > 1 or (queued_s or 0.0) > LATE_FIRST_DELIVERY_S)
            and await self.finals.answered(self.tag, request_id, request_seq)
        ):
            # Its final output was kept but the ack never took hold (a consumer cut off, a crashed server that
            # forgot acks and delivery counts alike): running it again would bill twice for an answer the
            # claim on the kept final would silence anyway.
            logger.info("%s request %s was already answered; settling this delivery", self.tag, request_id)
            self.counters.already_answered += 1
            await delivery.ack()
            return False
        if resumable and request_seq is not None:
            # The kept stream shows every run of the request in turn: number them so no two say the same.
            attempt = await self.finals.next_run(self.tag, request_id)
        kept = own if resumable else None
        outputs = Outputs(self.scope, subject, codec, request_id, attempt, trace_headers, request_seq, kept=kept)
        metrics = self.deps.metrics
        metrics.started(self.tag)
        try:
            await self._run_handler(delivery, request, outputs)
        finally:
            record = request_record(outputs, self.tag, request.model)
            metrics.finished(record)
            metrics.stages(self.tag, stage_times(outputs, taken_at, queued_s))
            log_request(logger, record)
            self.deps.events.publish(record)
        return isinstance(outputs.final, Error)

    async def _run_handler(self, delivery: Delivery, request: Any, outputs: Outputs) -> None:
        request_id: str = request.id
        if self._inflight.was_cancelled(request_id):
            await self._finish(delivery, outputs, Cancelled("cancelled before it started"), delivery.reply is not None)
            return

        running = Running(anyio.CancelScope(), delivery)
        self._inflight.running[request_id] = running
        try:
            await self._handle_and_settle(delivery, request, outputs, running)
        finally:
            # Only now: heartbeats keep the delivery ours until its final output is kept and it is settled.
            if self._inflight.running.get(request_id) is running:
                del self._inflight.running[request_id]

    async def _handle_and_settle(self, delivery: Delivery, request: Any, outputs: Outputs, running: Running) -> None:
        request_id: str = request.id
        attempt = outputs.attempt
        core_request = delivery.reply is not None
        failure: ServiceError | None = None
        try:
            with running.scope:
                await self._spec.handle(request, outputs)
                if not outputs.final_sent:
                    raise Internal(f"the {self.tag} handler returned without a result")
        except ServiceError as err:
            failure = err
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await self._shutdown_cut(delivery, outputs, core_request)
            raise
        except Exception as exc:
            logger.exception("%s request %s failed with an unexpected error", self.tag, request_id)
            if self._durable and not outputs.final_sent:
                if attempt < self.settings.max_deliver:
                    # Back off a little so a crash loop does not spin; another instance may take it.
                    await delivery.nak(delay=min(attempt, 5))
                else:
                    await self.refusals.give_up(
                        delivery.data,
                        delivery.headers,
                        attempt,
                        f"the consumer crashed ({exc!r})",
                        delivery.stream_seq or 0,
                    )
                    await delivery.term()
                return
            failure = Internal("internal error in the consumer; the request was not completed")
        if running.scope.cancelled_caught and running.reason is not None:
            failure = running.reason
        if failure is not None:
            self.counters.failed += 1
            self.counters.last_error = f"{failure.code}: {failure.message}"[:200]
            await self._finish(delivery, outputs, failure, core_request)
            return
        self.counters.handled += 1
        await delivery.ack()
        outputs.settled_at = time.monotonic()

    async def _finish(self, delivery: Delivery, outputs: Outputs, err: ServiceError, core_request: bool) -> None:
        if not outputs.final_sent:
            level = logging.ERROR if isinstance(err, Internal) else logging.INFO
            logger.log(level, "%s request %s ended with %s: %s", self.tag, outputs._id, err.code, err.message)
            await outputs.error(err, core_request=core_request)
        await delivery.ack()
        outputs.settled_at = time.monotonic()

    async def _shutdown_cut(self, delivery: Delivery, outputs: Outputs, core_request: bool) -> None:
        """The shutdown deadline cut a request short: hand it back (durable) or tell the caller (core)."""
        if outputs.final_sent:
            await delivery.ack()
        elif delivery.durable:
            await delivery.nak()
        else:
            await outputs.error(Cancelled("the consumer shut down before the answer was complete"), core_request=True)
