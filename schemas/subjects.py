"""Subject, queue-group, stream and header names, all built from the configurable prefix."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.common import Tag

CONTENT_TYPE = "Content-Type"
MSGPACK = "application/msgpack"
JSON = "application/json"
MSG_ID = "Nats-Msg-Id"
"""JetStream's dedupe header; hfbus publishers set it to the request id."""
SERVICE_ERROR = "Nats-Service-Error"
SERVICE_ERROR_CODE = "Nats-Service-Error-Code"


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

    @property
    def models(self) -> str:
        return f"{self.prefix}.models"

    @staticmethod
    def queue_group(tag: Tag) -> str:
        return f"hfbus.{tag}"

    @property
    def stream(self) -> str:
        """The work-queue stream of durable mode; one per prefix so deployments can share an account."""
        return "HFBUS" if self.prefix == "ai" else "HFBUS_" + self.prefix.upper().replace(".", "_").replace("-", "_")

    @staticmethod
    def durable(tag: Tag) -> str:
        return f"hfbus-{tag}"
