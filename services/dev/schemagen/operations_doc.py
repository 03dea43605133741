"""The operators' channels: done events for the console's live tail, and the per-tag defaults consumers watch."""

from __future__ import annotations

from typing import Any

import msgspec

from schemas import Tag
from schemas.operations import DoneEvent, TagDefaults
from schemas.subjects import Subjects
from services.dev.schemagen.components import Sections, message_component, ref
from services.dev.schemagen.examples import EXAMPLE_ID

_SUBJECTS = Subjects("{prefix}")
_BUCKET = Subjects().defaults_bucket
_OTHER_BUCKET = Subjects("<prefix>").defaults_bucket

STRUCTS: list[type[msgspec.Struct]] = [DoneEvent, TagDefaults]
"""Added to the document's component schemas."""

_DONE_EXAMPLES = [
    DoneEvent(
        id=EXAMPLE_ID,
        tag=Tag.CHAT,
        model="deepseek-ai/DeepSeek-R1:fastest",
        provider="together",
        outcome="ok",
        ttft_s=0.412,
        duration_s=2.87,
        prompt_tokens=12,
        completion_tokens=240,
        cost_usd=0.00053,
        at=1767225600.0,
        consumer="Bw4kT3Xy9QzLmN0pR2sUvA",
    ),
    DoneEvent(id=EXAMPLE_ID, tag=Tag.TEXT2PIC, outcome="payment_required", duration_s=0.31, at=1767225600.0),
]
_DEFAULTS_EXAMPLES = [
    TagDefaults(strategy="cheapest", updated_at=1767225600.0),
    TagDefaults(model="black-forest-labs/FLUX.1-dev", strategy="fal-ai", updated_at=1767225600.0),
]


def tag_parameter() -> dict[str, Any]:
    return {"description": "A task tag.", "enum": [str(tag) for tag in Tag], "examples": ["chat"]}


def done_events(sections: Sections) -> None:
    name = "done_event"
    sections.messages[name] = message_component(
        name=name,
        title="done event",
        cls=DoneEvent,
        headers=None,
        examples=[{"name": f"done-{i}", "payload": msgspec.to_builtins(e)} for i, e in enumerate(_DONE_EXAMPLES, 1)],
    )
    sections.channels["done_events"] = {
        "address": _SUBJECTS.events_done("{tag}"),  # type: ignore[arg-type]  # a template, not a Tag
        "title": "done events",
        "description": (
            "One small JSON event per finished request of the tag (any outcome), published by the consumer that "
            "ran it as a plain core NATS message after the request's final output: fire and forget, so nobody "
            "listening costs nothing and a lost event changes no answer. The gateway's console subscribes to "
            f"`{_SUBJECTS.events_done_all}` for its live tail, its per-tag counts and the last `unauthorized` / "
            "`payment_required` the HuggingFace token met. Never carries a prompt, an output or a secret."
        ),
        "parameters": {
            "prefix": ref("components", "parameters", "prefix"),
            "tag": ref("components", "parameters", "tag"),
        },
        "messages": {name: ref("components", "messages", name)},
    }
    sections.operations["send_done_events"] = {
        "action": "send",
        "channel": ref("channels", "done_events"),
        "title": "Report finished requests",
        "summary": "After each request's final output, one event with its outcome, timings, tokens and cost.",
        "messages": [ref("channels", "done_events", "messages", name)],
    }


def tag_defaults(sections: Sections) -> None:
    name = "tag_defaults"
    sections.messages[name] = message_component(
        name=name,
        title="tag defaults",
        cls=TagDefaults,
        headers=None,
        examples=[
            {"name": f"defaults-{i}", "payload": msgspec.to_builtins(d)} for i, d in enumerate(_DEFAULTS_EXAMPLES, 1)
        ],
    )
    sections.channels["tag_defaults"] = {
        "address": f"$KV.{_BUCKET}.{{tag}}",
        "title": "tag defaults (KV)",
        "description": (
            f"The JetStream key-value bucket `{_BUCKET}` (`{_OTHER_BUCKET}` under another prefix), one key per tag: "
            "the model and routing strategy a request of the tag gets when it names none. The console writes it; "
            "every consumer watches the bucket and applies a change to its next request without a restart, and "
            "reports the highest revision it applied as `defaults_revision` in its `$SRV.INFO` metadata. A "
            "deleted key means the catalog's own defaults. A request's own `model`, `:suffix` or `provider` "
            "always wins."
        ),
        "parameters": {"tag": ref("components", "parameters", "tag")},
        "messages": {name: ref("components", "messages", name)},
    }
    sections.operations["receive_tag_defaults"] = {
        "action": "receive",
        "channel": ref("channels", "tag_defaults"),
        "title": "Apply per-tag defaults",
        "summary": "Consumers watch the bucket (a KV watch: an ordered consumer from the last value per key).",
        "messages": [ref("channels", "tag_defaults", "messages", name)],
    }
