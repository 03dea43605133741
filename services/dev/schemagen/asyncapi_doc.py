"""The AsyncAPI 3.0 document: hfbus as the consumers see it, the channels of every tag, cancel and models."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from schemas.models import ModelsReply, ModelsRequest
from schemas.subjects import JSON, MSG_ID, Subjects
from services import __version__
from services.dev.schemagen.components import (
    Sections,
    asyncapi_discriminators,
    header_schemas,
    message_component,
    parameters,
    ref,
)
from services.dev.schemagen.contracts import TagContract
from services.dev.schemagen.examples import TRACEPARENT, models_examples, output_examples, request_examples
from services.dev.schemagen.jsonschema import GENERATED, add_field_docs
from services.dev.schemagen.operations_doc import STRUCTS, done_events, tag_defaults, tag_parameter
from services.dev.schemagen.stored import dead_letters, kept_finals

_SUBJECTS = Subjects("{prefix}")


def asyncapi(contracts: Sequence[TagContract]) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of hfbus seen from the consumers: they receive requests and send outputs."""
    structs: list[Any] = [c.request_type for c in contracts] + [o for c in contracts for o in c.outputs]
    schema_list = list(dict.fromkeys([*structs, ModelsRequest, ModelsReply, *STRUCTS]))
    _, component_schemas = msgspec.json.schema_components(schema_list, ref_template="#/components/schemas/{name}")
    add_field_docs(component_schemas, schema_list)
    component_schemas = asyncapi_discriminators(component_schemas)

    sections = Sections()
    for contract in contracts:
        _requests_and_outputs(sections, contract)
        kept_finals(sections, contract)
        dead_letters(sections, contract)
    _cancel(sections)
    _models(sections)
    done_events(sections)
    tag_defaults(sections)

    return {
        "asyncapi": "3.0.0",
        "x-generated": GENERATED,
        "id": "urn:hfbus",
        "info": {
            "title": "hfbus",
            "version": __version__,
            "description": (
                "Every HuggingFace Inference Providers task behind a NATS subject. Requests and outputs are JSON "
                "by default, msgpack with `Content-Type: application/msgpack`; unknown fields are ignored, so "
                f"peers on a newer contract keep working. This document is {GENERATED}."
            ),
            "license": {"name": "Apache-2.0"},
        },
        "defaultContentType": JSON,
        "servers": {
            "nats": {
                "host": "localhost:4222",
                "protocol": "nats",
                "description": "Any NATS server the consumers reach (`NATS_URL`); JetStream for durable mode.",
            }
        },
        "channels": sections.channels,
        "operations": sections.operations,
        "components": {
            "schemas": {**component_schemas, **header_schemas()},
            "messages": sections.messages,
            "parameters": {**parameters(), "tag": tag_parameter()},
        },
    }


def _requests_and_outputs(sections: Sections, contract: TagContract) -> None:
    tag = contract.tag
    request_id = f"{tag}_request"
    requests, outputs = f"{tag}_requests", f"{tag}_outputs"
    out_address = _SUBJECTS.out(tag, "{id}")
    sections.messages[request_id] = message_component(
        name=request_id,
        title=f"{tag} request",
        cls=contract.request_type,
        headers="RequestHeaders",
        examples=[
            {"name": f"{tag}-{i}", "headers": {MSG_ID: ex["id"], "traceparent": TRACEPARENT}, "payload": ex}
            for i, ex in enumerate(request_examples(contract), 1)
        ],
    )
    for cls in contract.outputs:
        sections.messages.setdefault(
            cls.__name__,
            message_component(
                name=cls.__name__,
                title=f"{cls.__name__} output",
                cls=cls,
                headers="OutputHeaders",
                examples=[
                    {"name": f"{cls.__name__.lower()}-{i}", "payload": ex}
                    for i, ex in enumerate(output_examples(cls), 1)
                ],
            ),
        )
    sections.channels[requests] = {
        "address": _SUBJECTS.request(tag),
        "title": f"{tag} requests",
        "description": (
            f"Publish a `{tag}` request here: as a core request with a reply inbox (subscribe to the inbox "
            f"first), or with `reply_to`, or with neither and subscribe to `{out_address}`. "
            "In durable mode a JetStream stream stores it (set `Nats-Msg-Id` to the id) and the stream's "
            "publish acknowledgement arrives on the reply inbox before the outputs."
        ),
        "parameters": {"prefix": ref("components", "parameters", "prefix")},
        "messages": {request_id: ref("components", "messages", request_id)},
    }
    sections.channels[outputs] = {
        "address": out_address,
        "title": f"{tag} outputs",
        "description": (
            "The output stream of one request when it named no reply subject; the same messages go to a core "
            "request's reply inbox or to `reply_to` otherwise. Outputs of an attempt rise in `seq` from 0; "
            "a redelivered durable request starts again with `attempt` + 1. A request with `resumable: true` "
            "always publishes here too, and the JetStream stream `HFBUS_OUT` keeps these messages: read it with "
            "an ordered consumer filtered on this subject to get what was missed, then the rest live, skipping "
            "any `(attempt, seq)` already seen."
        ),
        "parameters": {
            "prefix": ref("components", "parameters", "prefix"),
            "id": ref("components", "parameters", "id"),
        },
        "messages": {cls.__name__: ref("components", "messages", cls.__name__) for cls in contract.outputs},
    }
    output_refs = [ref("channels", outputs, "messages", cls.__name__) for cls in contract.outputs]
    sections.operations[f"receive_{tag}"] = {
        "action": "receive",
        "channel": ref("channels", requests),
        "title": f"Serve {tag} requests",
        "summary": f"Consumers serving `{tag}` take each request once (queue group / shared durable consumer).",
        "messages": [ref("channels", requests, "messages", request_id)],
        "reply": {
            "address": {
                "location": "$message.payload#/reply_to",
                "description": (f"The NATS reply subject of a core request; else `reply_to`; else `{out_address}`."),
            },
            "channel": ref("channels", outputs),
            "messages": output_refs,
        },
        "bindings": {"nats": {"queue": Subjects.queue_group(tag), "bindingVersion": "0.1.0"}},
    }
    sections.operations[f"send_{tag}_outputs"] = {
        "action": "send",
        "channel": ref("channels", outputs),
        "title": f"Stream {tag} outputs",
        "summary": "Zero or more `chunk` / `progress` messages, then exactly one `result` or `error`.",
        "messages": output_refs,
    }


def _cancel(sections: Sections) -> None:
    sections.messages["cancel"] = {
        "name": "cancel",
        "title": "cancel",
        "summary": "Stop the request with this id; its stream ends with an `error` whose code is `cancelled`.",
        "description": "The body is ignored: send it empty.",
    }
    sections.channels["cancel"] = {
        "address": _SUBJECTS.cancel("{id}"),
        "title": "cancel",
        "description": "Every consumer instance listens; the one running the request closes its upstream call.",
        "parameters": {
            "prefix": ref("components", "parameters", "prefix"),
            "id": ref("components", "parameters", "id"),
        },
        "messages": {"cancel": ref("components", "messages", "cancel")},
    }
    sections.operations["receive_cancel"] = {
        "action": "receive",
        "channel": ref("channels", "cancel"),
        "title": "Cancel a request",
        "messages": [ref("channels", "cancel", "messages", "cancel")],
    }


def _models(sections: Sections) -> None:
    request, reply = "models_request", "models_reply"
    sections.messages[request] = message_component(
        name=request,
        title="models request",
        cls=ModelsRequest,
        headers="ModelsRequestHeaders",
        examples=[{"name": f"models-{i}", "payload": ex} for i, ex in enumerate(models_examples(ModelsRequest), 1)],
    )
    sections.messages[reply] = message_component(
        name=reply,
        title="models reply",
        cls=ModelsReply,
        headers=None,
        examples=[{"name": f"models-{i}", "payload": ex} for i, ex in enumerate(models_examples(ModelsReply), 1)],
    )
    sections.channels["models"] = {
        "address": _SUBJECTS.models,
        "title": "models",
        "description": (
            "Ask which catalog models a tag offers: a core NATS request with a reply inbox, answered by one "
            "consumer instance in either mode. An empty body lists every tag. A body that does not decode (an "
            'unknown tag, say) is answered with `{"error": "invalid models request: ..."}` instead of a '
            "`ModelsReply`."
        ),
        "parameters": {"prefix": ref("components", "parameters", "prefix")},
        "messages": {request: ref("components", "messages", request)},
    }
    # The reply goes to whatever inbox the requester named, which AsyncAPI writes as a null address.
    sections.channels["models_replies"] = {
        "address": None,
        "title": "models replies",
        "description": "The reply inbox of a models request; the reply is in the request's encoding.",
        "messages": {reply: ref("components", "messages", reply)},
    }
    sections.operations["receive_models"] = {
        "action": "receive",
        "channel": ref("channels", "models"),
        "title": "List catalog models",
        "summary": "Reply with the active catalog models of the tag asked for, the default model first.",
        "messages": [ref("channels", "models", "messages", request)],
        "reply": {
            "channel": ref("channels", "models_replies"),
            "messages": [ref("channels", "models_replies", "messages", reply)],
        },
        "bindings": {"nats": {"queue": Subjects.MODELS_QUEUE_GROUP, "bindingVersion": "0.1.0"}},
    }
