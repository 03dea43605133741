"""Examples of requests and outputs: curated tables first, then a module's `EXAMPLES`, else built from the type."""

from __future__ import annotations

import sys
from typing import Any

import msgspec
import msgspec.inspect as mi

from schemas import Output, Tag
from services.dev.schemagen.contracts import TagContract
from services.dev.schemagen.jsonschema import struct_info

EXAMPLE_ID = "01JBQ4Z7ZC8Y7T5X2M3N4P5Q6R"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

REQUEST_EXAMPLES: dict[Tag, list[dict[str, Any]]] = {
    Tag.CHAT: [
        {
            "id": EXAMPLE_ID,
            "model": "deepseek-ai/DeepSeek-R1:fastest",
            "messages": [{"role": "user", "content": "Write a haiku about message buses."}],
            "max_tokens": 64,
        }
    ],
    Tag.PIC2TEXT: [
        {
            "id": EXAMPLE_ID,
            "model": "Qwen/Qwen2.5-VL-7B-Instruct",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is in this picture?"},
                        {"type": "image_url", "image_url": {"url": "https://example.org/cat.jpg"}},
                    ],
                }
            ],
        }
    ],
    Tag.VECTORIZE: [{"id": EXAMPLE_ID, "input": ["NATS subjects", "HuggingFace providers"], "normalize": True}],
    Tag.TEXT2PIC: [{"id": EXAMPLE_ID, "prompt": "a lighthouse made of circuit boards at dusk", "seed": 7}],
    Tag.TEXT2VID: [{"id": EXAMPLE_ID, "prompt": "waves rolling onto a beach, drone shot", "seed": 7}],
    Tag.PIC2PIC: [{"id": EXAMPLE_ID, "image": {"url": "https://example.org/cat.jpg"}, "prompt": "as a watercolor"}],
    Tag.PIC2VID: [{"id": EXAMPLE_ID, "image": {"url": "https://example.org/cat.jpg"}, "prompt": "the cat looks up"}],
    Tag.SOUND2TEXT: [{"id": EXAMPLE_ID, "audio": {"url": "https://example.org/hello.flac"}, "language": "en"}],
    Tag.TEXT2SOUND: [{"id": EXAMPLE_ID, "text": "Hello from hfbus."}],
}
"""Requests as a peer writes them (defaults left out); keyed by tag because tags may share a struct.
Only served tags (rows of `HANDLERS`) are used; design.md fixes these field names."""

_SHA256 = "5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"

OUTPUT_EXAMPLES: dict[str, list[dict[str, Any]]] = {
    "Chunk": [{"type": "chunk", "id": EXAMPLE_ID, "seq": 0, "delta": "Subjects "}],
    "Progress": [
        {"type": "progress", "id": EXAMPLE_ID, "seq": 0, "status": "queued", "elapsed_s": 1.5, "queue_position": 3}
    ],
    "ChatResult": [
        {
            "type": "result",
            "id": EXAMPLE_ID,
            "seq": 6,
            "text": "Subjects fan out wide / one request, many answers / the queue keeps its word",
            "finish_reason": "stop",
            "usage": {"prompt_tokens": 14, "completion_tokens": 21, "total_tokens": 35},
            "model": "deepseek-ai/DeepSeek-R1",
            "provider": "together",
            "cost_usd": 0.000077,
        }
    ],
    "Error": [
        {
            "type": "error",
            "id": EXAMPLE_ID,
            "seq": 0,
            "code": "rate_limited",
            "message": "router answered HTTP 429 after 3 retries",
            "retryable": True,
            "status": 429,
        }
    ],
    "VectorizeResult": [
        {
            "type": "result",
            "id": EXAMPLE_ID,
            "seq": 0,
            "model": "sentence-transformers/all-MiniLM-L6-v2",
            "provider": "hf-inference",
            "vectors": [[0.021, -0.113, 0.087], [0.064, 0.002, -0.051]],
            "dims": 3,
            "usage": {"inputs": 2},
        }
    ],
    "MediaResult": [
        {
            "type": "result",
            "id": EXAMPLE_ID,
            "seq": 1,
            "model": "black-forest-labs/FLUX.1-schnell",
            "provider": "fal-ai",
            "cost_usd": 0.003,
            "media": [
                {
                    "bucket": "hfbus-media",
                    "name": f"{EXAMPLE_ID}/0.png",
                    "size": 734112,
                    "sha256": _SHA256,
                    "content_type": "image/png",
                }
            ],
            "usage": {"images": 1},
        }
    ],
    "TranscriptResult": [
        {
            "type": "result",
            "id": EXAMPLE_ID,
            "seq": 0,
            "model": "openai/whisper-large-v3",
            "provider": "hf-inference",
            "text": "Hello from hfbus.",
            "segments": [{"start": 0.0, "end": 1.4, "text": "Hello from hfbus."}],
            "usage": {"seconds": 1.4},
        }
    ],
}
"""Outputs keyed by struct name (so this module imports no tag module), as concise JSON; they go out in the
full wire form, after msgspec decoded them. The vectors are shortened to three dimensions."""

MODELS_EXAMPLES: dict[str, list[dict[str, Any]]] = {
    "ModelsRequest": [{"tag": "chat"}, {"tag": None}],
    "ModelsReply": [
        {
            "models": [
                {
                    "name": "deepseek-r1",
                    "display_name": "DeepSeek R1",
                    "tag": "chat",
                    "hf_model": "deepseek-ai/DeepSeek-R1",
                    "policy": ":fastest",
                    "prices": {"input_per_mtok": 0.55, "output_per_mtok": 2.19},
                    "quality": 10,
                    "default": True,
                    "description": "DeepSeek R1 reasoning model. Excellent for logic, math, and coding.",
                }
            ]
        }
    ],
}
"""`ai.models` bodies keyed by struct name. Written here rather than read from the catalog so that editing
`catalog.json` does not make the committed schemas stale."""


def request_examples(contract: TagContract) -> list[dict[str, Any]]:
    """Curated examples for the tag, else the module's `EXAMPLES`, else one built from the required fields."""
    curated = REQUEST_EXAMPLES.get(contract.tag)
    examples = curated if curated is not None else _module_examples(contract.request_type)
    for example in examples:
        msgspec.convert(example, contract.request_type)  # a wrong example fails generation, loudly
    return examples


def output_examples(cls: type[Output]) -> list[dict[str, Any]]:
    """Examples of one output struct, encoded as the wire carries them."""
    curated = [msgspec.to_builtins(msgspec.convert(ex, cls)) for ex in OUTPUT_EXAMPLES.get(cls.__name__, ())]
    return curated or _module_examples(cls)


def models_examples(cls: type[msgspec.Struct]) -> list[dict[str, Any]]:
    """Examples of an `ai.models` request or reply, encoded as the wire carries them."""
    return [msgspec.to_builtins(msgspec.convert(ex, cls)) for ex in MODELS_EXAMPLES[cls.__name__]]


def _module_examples(cls: type[msgspec.Struct]) -> list[dict[str, Any]]:
    declared = getattr(sys.modules[cls.__module__], "EXAMPLES", ())
    found = [msgspec.to_builtins(obj) for obj in declared if type(obj) is cls]
    if found:
        return found
    built = _minimal(struct_info(cls))
    try:
        msgspec.convert(built, cls)
    except (
        msgspec.MsgspecError,
        ValueError,
        TypeError,
    ):  # a constraint the builder cannot meet: better no example than a wrong one
        return []
    return [built]


def _minimal(node: mi.Type) -> Any:
    """The smallest value of a type that its constraints accept, as JSON-ready builtins."""
    match node:
        case mi.StructType(fields=fields, tag_field=tag_field, tag=tag):
            value = {tag_field: tag} if tag_field is not None else {}
            value.update({f.encode_name: _minimal(f.type) for f in fields if f.required})
            return value
        case mi.Metadata(type=inner):
            return _minimal(inner)
        case mi.StrType(min_length=min_length):
            return "example".ljust(min_length or 0, "x")
        case mi.IntType(ge=ge, gt=gt):
            return ge if ge is not None else (gt + 1 if gt is not None else 0)
        case mi.FloatType(ge=ge, gt=gt):
            return float(ge) if ge is not None else (float(gt) + 1.0 if gt is not None else 0.0)
        case mi.BoolType():
            return False
        case mi.LiteralType(values=values):
            return values[0]
        case mi.EnumType(cls=enum_cls):
            return next(iter(enum_cls)).value
        case mi.ListType(item_type=item, min_length=low) | mi.VarTupleType(item_type=item, min_length=low):
            return [_minimal(item) for _ in range(max(low or 0, 1))]
        case mi.TupleType(item_types=items):
            return [_minimal(item) for item in items]
        case mi.UnionType(types=members):
            return _minimal(next((m for m in members if not isinstance(m, mi.NoneType)), members[0]))
        case mi.DictType() | mi.AnyType():
            return {}
        case _:
            return None
