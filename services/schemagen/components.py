"""The pieces of the AsyncAPI document that every channel shares: header schemas, parameters, messages."""

from __future__ import annotations

from typing import Any

from schemas import ErrorCode
from schemas.subjects import CONTENT_TYPE, JSON, MSG_ID, MSGPACK, SERVICE_ERROR, SERVICE_ERROR_CODE
from services.schemagen.examples import EXAMPLE_ID
from services.schemagen.jsonschema import summary


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
            },
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
    *, name: str, title: str, cls: type, headers: str, examples: list[dict[str, Any]]
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "name": name,
        "title": title,
        "summary": summary(cls),
        "headers": ref("components", "schemas", headers),
        "payload": ref("components", "schemas", cls.__name__),
    }
    if examples:
        message["examples"] = examples
    return message
