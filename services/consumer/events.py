"""One small `DoneEvent` per finished request on `<prefix>.events.done.<tag>`, for the console's live tail."""

from __future__ import annotations

import logging
import time

import msgspec
from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError

from schemas import Subjects, Tag
from schemas.operations import DoneEvent
from services.bus.publish import Publisher
from services.observability import RequestRecord

logger = logging.getLogger(__name__)

_encoder = msgspec.json.Encoder()


class DoneEvents:
    """Publishes the event of each finished request; never fails a request (the answer went out already)."""

    def __init__(self, nc: NATS, subjects: Subjects, consumer_id: str) -> None:
        self._nc = nc
        self._subjects = subjects
        self._publishers: dict[str, Publisher] = {}
        self.consumer_id = consumer_id

    def publish(self, record: RequestRecord) -> None:
        """Queue the event on the connection: no await, so a cancelled request still reports how it ended."""
        tag = Tag(record.tag)
        event = DoneEvent(
            id=record.request_id,
            tag=tag,
            model=record.model,
            provider=record.provider,
            outcome=record.outcome,
            attempt=record.attempt,
            ttft_s=None if record.ttft_s is None else round(record.ttft_s, 4),
            duration_s=round(record.duration_s, 4),
            prompt_tokens=record.tokens_in,
            completion_tokens=record.tokens_out,
            cost_usd=record.cost_usd,
            at=time.time(),
            consumer=self.consumer_id,
        )
        try:
            publisher = self._publishers.get(tag)
            if publisher is None:
                publisher = self._publishers[tag] = Publisher(self._nc, self._subjects.events_done(tag), None)
            # Core publish: buffered, no round trip on the request's path; nobody listening costs nothing.
            publisher.publish(_encoder.encode(event))
        except (NatsError, OSError) as exc:
            logger.debug("no done event for %s request %s: %s", tag, record.request_id, type(exc).__name__)
