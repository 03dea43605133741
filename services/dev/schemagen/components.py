"""The pieces of the AsyncAPI document that every channel shares: header schemas, parameters, messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schemas import ErrorCode
from schemas.subjects import (
    ANSWERED_BY,
    CONTENT_TYPE,
    DEAD_DELIVERIES,
    DEAD_REASON,
    DEAD_REASON_MAX,
    JSON,
    MSG_ID,
    MSGPACK,
    REQUEST_SEQ,
    SERVICE_ERROR,
    SERVICE_ERROR_CODE,
    Subjects,
)
from services.dev.schemagen.examples import EXAMPLE_ID
from services.dev.schemagen.jsonschema import summary

_FINALS_STREAM = Subjects().finals_stream


@dataclass(slots=True)
class Sections:
    """The document's `components.messages`, `channels` and `operations`, filled one channel group at a time."""

    messages: dict[str, Any] = field(default_factory=dict)
    channels: dict[str, Any] = field(default_factory=dict)
    operations: dict[str, Any] = field(default_factory=dict)


def _content_type_header() -> dict[str, Any]:
    return {
        "type": "string",
        "enum": [JSON, MSGPACK],
        "default": JSON,
        "description": (
            "Wire encoding of the body: JSON when absent; `application/msgpack` for msgpack (same fields, media "
            "bytes raw). Outputs use the request's encoding and carry this header only when it is msgpack."
        ),
    }


def _trace_headers() -> dict[str, Any]:
    return {
        "traceparent": {
            "type": "string",
            "description": "W3C trace context; hfbus continues it into the upstream call and every output.",
        },
        "tracestate": {"type": "string", "description": "W3C trace context vendor state."},
    }


def header_schemas() -> dict[str, Any]:
    return {
        "RequestHeaders": {
            "title": "RequestHeaders",
            "description": "NATS headers a request may carry; all optional.",
            "type": "object",
            "properties": {
                CONTENT_TYPE: _content_type_header(),
                MSG_ID: {
                    "type": "string",
                    "description": "JetStream dedupe key; set it to the request `id` so a re-publish runs once.",
                },
                **_trace_headers(),
            },
        },
        "OutputHeaders": {
            "title": "OutputHeaders",
            "description": "NATS headers an output may carry.",
            "type": "object",
            "properties": {
                CONTENT_TYPE: _content_type_header(),
                SERVICE_ERROR: {
                    "type": "string",
                    "description": "On the `error` of a core request: its message (NATS micro convention).",
                },
                SERVICE_ERROR_CODE: {
                    "type": "string",
                    "enum": [code.value for code in ErrorCode],
                    "description": "On the `error` of a core request: its `code` (NATS micro convention).",
                },
                **_trace_headers(),
                # A kept final is the very output that went out plus these two, so kept finals share this schema
                # (and the output messages) rather than repeating every output under a second name.
                REQUEST_SEQ: {
                    "type": "string",
                    "pattern": "^[0-9]+$",
                    "description": (
                        f"Only on a final output kept in `{_FINALS_STREAM}`: the work-queue stream sequence of "
                        "the request message it answers, i.e. the `seq` of that request's publish ack. A kept "
                        "final with another sequence answers an earlier request that used the same id."
                    ),
                },
                ANSWERED_BY: {
                    "type": "string",
                    "description": (
                        f"Only on a final output kept in `{_FINALS_STREAM}`: which delivery of the request stored "
                        "it (a random token per delivery)."
                    ),
                },
            },
        },
        "DeadLetterHeaders": {
            "title": "DeadLetterHeaders",
            "description": (
                "NATS headers of a dead-lettered request: those it was published with, without `Nats-Msg-Id` "
                "(so the dead-letter stream keeps every copy), plus why and after how many deliveries."
            ),
            "type": "object",
            "properties": {
                CONTENT_TYPE: _content_type_header(),
                DEAD_REASON: {
                    "type": "string",
                    "maxLength": DEAD_REASON_MAX,
                    "description": "Why hfbus gave up on the request, e.g. that its consumer never finished it.",
                },
                DEAD_DELIVERIES: {
                    "type": "string",
                    "pattern": "^[0-9]+$",
                    "description": "How many times the request was delivered before hfbus gave up.",
                },
                **_trace_headers(),
            },
            "required": [DEAD_REASON, DEAD_DELIVERIES],
        },
        "ModelsRequestHeaders": {
            "title": "ModelsRequestHeaders",
            "description": "NATS headers a models request may carry; the reply comes in its encoding, without headers.",
            "type": "object",
            "properties": {CONTENT_TYPE: _content_type_header()},
        },
    }


def parameters() -> dict[str, Any]:
    return {
        "prefix": {
            "description": "Subject prefix of the deployment (`HFBUS_PREFIX`).",
            "default": "ai",
            "examples": ["ai"],
        },
        "id": {
            "description": "The request `id`: letters, digits and `_ : = + -` (a ULID or UUID).",
            "examples": [EXAMPLE_ID],
        },
    }


def ref(*parts: str) -> dict[str, str]:
    return {"$ref": "#/" + "/".join(parts)}


def asyncapi_discriminators(node: Any) -> Any:
    """OpenAPI's `discriminator: {propertyName, mapping}` (msgspec's output) as AsyncAPI's `discriminator: "<name>"`."""
    if isinstance(node, dict):
        return {
            key: value["propertyName"]
            if key == "discriminator" and isinstance(value, dict) and "propertyName" in value
            else asyncapi_discriminators(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [asyncapi_discriminators(item) for item in node]
    return node


def message_component(
    *, name: str, title: str, cls: type, headers: str | None, examples: list[dict[str, Any]]
) -> dict[str, Any]:
    message: dict[str, Any] = {"name": name, "title": title, "summary": summary(cls)}
    if headers is not None:
        message["headers"] = ref("components", "schemas", headers)
    message["payload"] = ref("components", "schemas", cls.__name__)
    if examples:
        message["examples"] = examples
    return message
