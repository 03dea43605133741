"""Subject, queue-group, stream and header names, all built from the configurable prefix."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from schemas.common import Tag

CONTENT_TYPE = "Content-Type"
MSGPACK = "application/msgpack"
JSON = "application/json"
MSG_ID = "Nats-Msg-Id"
"""JetStream's dedupe header; hfbus publishers set it to the request id."""
SERVICE_ERROR = "Nats-Service-Error"
SERVICE_ERROR_CODE = "Nats-Service-Error-Code"
DEAD_REASON = "Hfbus-Dead-Reason"
DEAD_REASON_MAX = 500
"""The most characters of a dead letter's reason header."""
DEAD_DELIVERIES = "Hfbus-Deliveries"
ANSWERED_BY = "Hfbus-Answered-By"
"""On a kept final output: which delivery of the request wrote it (a random token per delivery)."""
REQUEST_SEQ = "Hfbus-Request-Seq"
"""On a kept final output: the work-queue stream sequence of the request message it answers."""


def answered_request_seq(headers: Mapping[str, str] | None) -> int | None:
    """The `REQUEST_SEQ` of a kept final output; None when it has none."""
    value = (headers or {}).get(REQUEST_SEQ)
    return int(value) if value is not None and value.isdigit() else None


EXPECTED_LAST_SUBJECT_SEQ = "Nats-Expected-Last-Subject-Sequence"
"""JetStream stores the message only if the subject's last sequence is this; `0` means "only if none yet"."""


@dataclass(frozen=True, slots=True)
class Subjects:
    """Every subject hfbus uses, for one prefix (default `ai`)."""

    prefix: str = "ai"

    def request(self, tag: Tag) -> str:
        return f"{self.prefix}.{tag}"

    def out(self, tag: Tag, request_id: str) -> str:
        """Where outputs go when a request names no reply subject: subscribe here before publishing."""
        return f"{self.prefix}.out.{tag}.{request_id}"

    def cancel(self, request_id: str) -> str:
        return f"{self.prefix}.cancel.{request_id}"

    @property
    def cancel_all(self) -> str:
        return f"{self.prefix}.cancel.*"

    def final(self, tag: Tag, request_id: str) -> str:
        """Where durable mode keeps each request's final output, so a subscriber that missed it can fetch it."""
        return f"{self.prefix}.final.{tag}.{request_id}"

    @property
    def finals_stream(self) -> str:
        return f"{self.stream}_FINALS"

    def run(self, tag: Tag, request_id: str) -> str:
        """Where the number of a request's latest run is kept (in the finals stream), for resumable outputs."""
        return f"{self.prefix}.final.{tag}.{request_id}.run"

    @property
    def out_all(self) -> str:
        return f"{self.prefix}.out.>"

    @property
    def out_stream(self) -> str:
        """Keeps resumable requests' outputs, so a subscriber that was away reads what it missed."""
        return f"{self.stream}_OUT"

    def dead(self, tag: Tag) -> str:
        """Where requests that could not be completed are copied, with the reason in headers."""
        return f"{self.prefix}.dead.{tag}"

    @property
    def dead_all(self) -> str:
        return f"{self.prefix}.dead.>"

    @property
    def dead_stream(self) -> str:
        return f"{self.stream}_DEAD"

    def max_deliveries_advisory(self, tag: Tag) -> str:
        """JetStream's advisory when a request of `tag` used up its deliveries without being settled."""
        return f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{self.stream}.{self.durable(tag)}"

    def events_done(self, tag: Tag) -> str:
        """One `DoneEvent` per finished request of `tag` (see `schemas.operations`)."""
        return f"{self.prefix}.events.done.{tag}"

    @property
    def events_done_all(self) -> str:
        return f"{self.prefix}.events.done.*"

    @property
    def defaults_bucket(self) -> str:
        """The KV bucket of the per-tag `TagDefaults` consumers watch, beside the prefix's streams."""
        return f"{self.stream}_DEFAULTS"

    @property
    def models(self) -> str:
        return f"{self.prefix}.models"

    @staticmethod
    def queue_group(tag: Tag) -> str:
        return f"hfbus.{tag}"

    MODELS_QUEUE_GROUP = "hfbus.models"
    """Instances answer `models` in one queue group: one catalog reply per question."""

    @property
    def stream(self) -> str:
        """The work-queue stream of durable mode; one per prefix so deployments can share an account."""
        return "HFBUS" if self.prefix == "ai" else "HFBUS_" + self.prefix.upper().replace(".", "_").replace("-", "_")

    @staticmethod
    def durable(tag: Tag) -> str:
        return f"hfbus-{tag}"
