"""The channels of what durable mode stores per tag: each request's kept final output, and its dead letters."""

from __future__ import annotations

from schemas import Error, Result
from schemas.subjects import DEAD_DELIVERIES, DEAD_REASON, EXPECTED_LAST_SUBJECT_SEQ, REQUEST_SEQ, Subjects
from services.bus.jetstream import DEAD_LETTER_MAX_AGE_S
from services.dev.schemagen.components import Sections, message_component, ref
from services.dev.schemagen.contracts import TagContract
from services.dev.schemagen.examples import TRACEPARENT, request_examples
from services.settings import Settings

_SUBJECTS = Subjects("{prefix}")
_DEFAULTS = Settings()
_STREAMS = _DEFAULTS.subjects
# A stream's name follows the prefix; "<prefix>" shows how without naming a deployment.
_OTHER_PREFIX = Subjects("<prefix>")


def kept_finals(sections: Sections, contract: TagContract) -> None:
    """`{prefix}.final.<tag>.{id}`: the tag's result or error, kept for subscribers that missed it."""
    tag = contract.tag
    channel = f"{tag}_finals"
    stream = _STREAMS.finals_stream
    # The very messages of the output channel: a kept final is the output that went out, headers and all.
    finals = [cls.__name__ for cls in contract.outputs if issubclass(cls, Result | Error)]
    sections.channels[channel] = {
        "address": _SUBJECTS.final(tag, "{id}"),
        "title": f"{tag} kept finals",
        "description": (
            f"Durable mode only. Each `{tag}` request's one final output (its `result` or `error`, in the "
            f"request's encoding) is kept here in the JetStream stream `{stream}` (`{_OTHER_PREFIX.finals_stream}` "
            f"under another prefix) for `HFBUS_FINALS_TTL` (default {_DEFAULTS.finals_ttl_s:g} s), one message "
            "per subject. A subscriber that missed its final reads the last message on this subject with a "
            f'direct get (`$JS.API.DIRECT.GET.{stream}` with `{{"last_by_subj": "<subject>"}}`) and checks that '
            f"`{REQUEST_SEQ}` is the `seq` of its request's publish ack: a final with another sequence answers an "
            "earlier request that used the same id. Consumers store the final with a "
            f"compare-and-set (`{EXPECTED_LAST_SUBJECT_SEQ}`) before they publish it, so of two deliveries of one "
            "request exactly one answers."
        ),
        "parameters": {
            "prefix": ref("components", "parameters", "prefix"),
            "id": ref("components", "parameters", "id"),
        },
        "messages": {name: ref("components", "messages", name) for name in finals},
    }
    sections.operations[f"send_{tag}_final"] = {
        "action": "send",
        "channel": ref("channels", channel),
        "title": f"Keep {tag} finals",
        "summary": "The consumer that answers a durable request keeps its final output before publishing it.",
        "messages": [ref("channels", channel, "messages", name) for name in finals],
    }


def dead_letters(sections: Sections, contract: TagContract) -> None:
    """`{prefix}.dead.<tag>`: a copy of each request hfbus gave up on, with the reason in its headers."""
    tag = contract.tag
    channel, name = f"{tag}_dead_letters", f"{tag}_dead_letter"
    sections.messages[name] = message_component(
        name=name,
        title=f"{tag} dead letter",
        cls=contract.request_type,
        headers="DeadLetterHeaders",
        examples=[
            {
                "name": f"{tag}-dead-{i}",
                "headers": {
                    DEAD_REASON: "its consumer never finished it",
                    DEAD_DELIVERIES: str(_DEFAULTS.max_deliver),
                    "traceparent": TRACEPARENT,
                },
                "payload": example,
            }
            for i, example in enumerate(request_examples(contract), 1)
        ],
    )
    sections.channels[channel] = {
        "address": _SUBJECTS.dead(tag),
        "title": f"{tag} dead letters",
        "description": (
            f"Durable mode only. A `{tag}` request that used up its deliveries (`HFBUS_MAX_DELIVER`, default "
            f"{_DEFAULTS.max_deliver}) without an answer is copied here, body unchanged, into the JetStream stream "
            f"`{_STREAMS.dead_stream}` (`{_OTHER_PREFIX.dead_stream}` under another prefix), kept "
            f"{DEAD_LETTER_MAX_AGE_S / 86400:g} days for inspection and replay; its caller gets an `internal` "
            "error."
        ),
        "parameters": {"prefix": ref("components", "parameters", "prefix")},
        "messages": {name: ref("components", "messages", name)},
    }
    sections.operations[f"send_{tag}_dead_letter"] = {
        "action": "send",
        "channel": ref("channels", channel),
        "title": f"Dead-letter {tag} requests",
        "summary": "Copy a request hfbus gave up on, before its caller gets the `internal` error.",
        "messages": [ref("channels", channel, "messages", name)],
    }
