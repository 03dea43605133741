"""Hypothesis strategies for hostile requests: each case is the raw bytes and headers one message is sent with."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
from hypothesis import strategies as st

from schemas import Tag
from schemas.subjects import CONTENT_TYPE, MSGPACK
from services.dev.fake_router.files import png, wav
from services.handlers import HANDLERS

Wire = Literal["json", "msgpack", "json-as-msgpack", "msgpack-as-json"]
Path = tuple[str | int, ...]

MSGPACK_HEADERS = {CONTENT_TYPE: MSGPACK}
DEEP = 1_000
"""Nesting depth of the fixed deep cases: at msgspec's recursion limit (Python's, 1,000 frames)."""
_SENTINEL = "\x00hfbus-fuzz-splice\x00"
"""A string value replaced by raw bytes after encoding, to splice in what no encoder would produce."""

IMAGE = png("fuzz input image")
AUDIO = wav("fuzz input audio")
MEDIA_FIELD: dict[Tag, str] = {Tag.PIC2PIC: "image", Tag.PIC2VID: "image", Tag.SOUND2TEXT: "audio"}
"""The `MediaInput` field of each tag that takes one."""
FREE_FORM: dict[Tag, str] = {Tag.CHAT: "response_format", Tag.PIC2TEXT: "response_format"}
"""A field typed `dict[str, Any]`, where msgspec decodes whatever it is given (`options` for task tags)."""


@dataclass(frozen=True, slots=True)
class Case:
    """One hostile message: what produced it, its bytes and its headers."""

    kind: str
    """The family that made it (`bytes`, `deep`, `huge`, ...), for the tally."""
    payload: bytes
    headers: dict[str, str] | None = None
    detail: str = ""
    """The variant within the family and the wire format."""

    def labelled(self, kind: str, detail: str) -> Case:
        """The same bytes and headers under another name."""
        return Case(kind, self.payload, self.headers, detail)

    def describe(self, width: int = 240) -> str:
        """The kind, size, headers and the start (and end) of the payload, short enough for an assertion."""
        data = self.payload
        shown = repr(data) if len(data) <= width else f"{data[: width // 2]!r} ... {data[-width // 4 :]!r}"
        return f"[{self.kind} {self.detail}] {len(data)} bytes, headers={self.headers}: {shown}"


def base_request(tag: Tag, request_id: str = "fuzz-base") -> dict[str, Any]:
    """A request that decodes as `tag`'s request type and the fake router serves; `bytes` become base64 in JSON."""
    match tag:
        case Tag.CHAT:
            return {"id": request_id, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
        case Tag.PIC2TEXT:
            part = {"type": "image_url", "image_url": {"url": "https://example.org/cat.png"}}
            return {"id": request_id, "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}, part]}]}
        case Tag.VECTORIZE:
            return {"id": request_id, "input": ["first text", "second text"]}
        case Tag.TEXT2PIC:
            return {"id": request_id, "prompt": "a lighthouse", "width": 512, "height": 512}
        case Tag.TEXT2VID:
            return {"id": request_id, "prompt": "waves on a beach", "num_frames": 33}
        case Tag.PIC2PIC:
            return {"id": request_id, "prompt": "make it night", "image": {"data": IMAGE, "content_type": "image/png"}}
        case Tag.PIC2VID:
            return {"id": request_id, "prompt": "slow pan", "image": {"data": IMAGE, "content_type": "image/png"}}
        case Tag.SOUND2TEXT:
            return {"id": request_id, "audio": {"data": AUDIO, "content_type": "audio/wav"}}
        case Tag.TEXT2SOUND:
            return {"id": request_id, "text": "hello from the bus"}


def encode(value: Any, wire: Wire) -> Case:
    """Encode `value` for one wire format, including the two that lie about their content type."""
    match wire:
        case "json":
            return Case(wire, msgspec.json.encode(value), None, wire)
        case "msgpack":
            return Case(wire, msgspec.msgpack.encode(value), MSGPACK_HEADERS, wire)
        case "json-as-msgpack":
            return Case(wire, msgspec.json.encode(value), MSGPACK_HEADERS, wire)
        case "msgpack-as-json":
            return Case(wire, msgspec.msgpack.encode(value), None, wire)


def spliced(value: Any, wire: Literal["json", "msgpack"], raw: Callable[[Wire], bytes]) -> Case:
    """Encode `value`, whose one `_SENTINEL` string is replaced by `raw(wire)` bytes after encoding."""
    case = encode(value, wire)
    sentinel = encode(_SENTINEL, wire).payload
    assert case.payload.count(sentinel) == 1
    return Case(wire, case.payload.replace(sentinel, raw(wire)), case.headers, wire)


def nested(depth: int, shape: Literal["array", "object"], wire: Wire) -> bytes:
    """`depth` levels of arrays (or single-key maps) around a null, in JSON or msgpack."""
    if wire == "json":
        return b"[" * depth + b"]" * depth if shape == "array" else b'{"a":' * depth + b"null" + b"}" * depth
    return (b"\x91" if shape == "array" else b"\x81\xa1a") * depth + b"\xc0"


def set_path(value: Any, path: Path, new: Any) -> Any:
    """A copy of `value` with `path` set to `new` (a missing last key is added)."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        copy = dict(value)
        copy[head] = set_path(value.get(head), rest, new)
        return copy
    if isinstance(value, list) and isinstance(head, int):
        items = list(value)
        items[head] = set_path(items[head], rest, new)
        return items
    return {head: set_path(None, rest, new)}


def get_path(value: Any, path: Path) -> Any:
    """What `value` holds at `path`."""
    for key in path:
        value = value[key]
    return value


def drop_path(value: Any, path: Path) -> Any:
    """A copy of `value` without the key or item at `path`."""
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        if not rest:
            return {k: v for k, v in value.items() if k != head}
        return {**value, head: drop_path(value[head], rest)}
    if isinstance(value, list) and isinstance(head, int):
        if not rest:
            return value[:head] + value[head + 1 :]
        return [drop_path(v, rest) if i == head else v for i, v in enumerate(value)]
    return value


def paths(value: Any, prefix: Path = ()) -> list[Path]:
    """Every key and item path inside `value`, parents before children."""
    found: list[Path] = []
    children: list[tuple[str | int, Any]] = []
    if isinstance(value, dict):
        children = list(value.items())
    elif isinstance(value, list):
        children = list(enumerate(value))
    for key, child in children:
        found.append((*prefix, key))
        found.extend(paths(child, (*prefix, key)))
    return found


def targets(tag: Tag) -> list[Path]:
    """Paths worth corrupting: every path of the base request plus each declared field it leaves out."""
    base = base_request(tag)
    declared = [(f.encode_name,) for f in msgspec.structs.fields(HANDLERS[tag].request_type)]
    return paths(base) + [p for p in declared if p[0] not in base]


def string_paths(tag: Tag) -> list[Path]:
    """Paths of the base request that hold a string, plus an unknown field (which msgspec skips)."""
    base = base_request(tag)
    return [("x-fuzz",), *(path for path in paths(base) if isinstance(get_path(base, path), str))]


# Integers stay within what msgpack (and msgspec's JSON encoder) can write.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=24,
)
wires: st.SearchStrategy[Wire] = st.sampled_from(
    ["json", "json", "msgpack", "msgpack", "json-as-msgpack", "msgpack-as-json"]
)
plain_wires: st.SearchStrategy[Literal["json", "msgpack"]] = st.sampled_from(["json", "msgpack"])
request_ids = st.uuids().map(lambda u: f"fz-{u.hex}")
"""Ids of their own, so a case that decodes can be cancelled alone (a cancelled id stays cancelled for a while)."""


def bases(tag: Tag) -> st.SearchStrategy[dict[str, Any]]:
    """The base request of `tag` with an id of its own."""
    return request_ids.map(lambda request_id: base_request(tag, request_id))


def random_bytes() -> st.SearchStrategy[Case]:
    """Arbitrary bytes, sent as JSON (no header) or with the msgpack header."""
    return st.builds(
        lambda data, headers: Case("bytes", data, headers, "json" if headers is None else "msgpack"),
        st.binary(max_size=2048),
        st.sampled_from([None, MSGPACK_HEADERS]),
    )


@st.composite
def random_values(draw: st.DrawFn) -> Case:
    """Any JSON-shaped value (object, array or scalar) in any wire format."""
    case = encode(draw(json_values), draw(wires))
    return case.labelled("value", case.detail)


@st.composite
def wrong_types(draw: st.DrawFn, tag: Tag) -> Case:
    """The base request with one field (nested or declared) set to a random value or dropped, or an extra key."""
    base = draw(bases(tag))
    path = draw(st.sampled_from(targets(tag)))
    action = draw(st.sampled_from(["replace", "replace", "replace", "drop", "extra"]))
    if action == "drop" and path in paths(base):
        value = drop_path(base, path)
    elif action == "extra":
        value = set_path(base, (draw(st.text(min_size=1, max_size=12)),), draw(json_values))
    else:
        value = set_path(base, path, draw(json_values))
    case = encode(value, draw(wires))
    return case.labelled("wrong-type", f"{action} {path} {case.detail}")


@st.composite
def mutated(draw: st.DrawFn, tag: Tag) -> Case:
    """The encoded base request with a few bytes flipped, removed, inserted or cut off."""
    case = encode(draw(bases(tag)), draw(plain_wires))
    data = bytearray(case.payload)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        match draw(st.sampled_from(["flip", "delete", "insert", "truncate"])):
            case "flip" if at < len(data):
                data[at] = draw(st.integers(0, 255))
            case "delete":
                del data[at : at + draw(st.integers(1, 8))]
            case "insert":
                data[at:at] = draw(st.binary(min_size=1, max_size=8))
            case "truncate":
                del data[at:]
    return Case("mutated", bytes(data), case.headers, case.detail)


@st.composite
def deep_nesting(draw: st.DrawFn, tag: Tag) -> Case:
    """Arrays or maps nested shallowly or past msgspec's recursion limit, at the top or inside a field."""
    depth = draw(st.one_of(st.integers(1, 64), st.integers(DEEP, 3 * DEEP)))
    shape: Literal["array", "object"] = draw(st.sampled_from(["array", "object"]))
    wire = draw(plain_wires)
    where = draw(st.sampled_from(["top", "field", "free-form", "unknown"]))
    detail = f"{depth} {shape}s {where} {wire}"
    if where == "top":
        return Case("deep", nested(depth, shape, wire), encode(None, wire).headers, detail)
    path: Path
    if where == "field":
        path = draw(st.sampled_from(targets(tag)))
    elif where == "free-form":
        path = (FREE_FORM.get(tag, "options"), "k")
    else:
        path = ("x-fuzz",)
    case = spliced(set_path(draw(bases(tag)), path, _SENTINEL), wire, _nested_raw(depth, shape))
    return case.labelled("deep", f"{detail} at {path}")


@st.composite
def huge_strings(draw: st.DrawFn, tag: Tag, limit: int) -> Case:
    """A string field (or the id, or an unknown field) grown to around, under or well past `limit` bytes."""
    size = draw(st.one_of(st.integers(0, 4 * limit), st.integers(limit - 512, limit + 512)))
    chunk = draw(st.text(min_size=1, max_size=16))
    text = (chunk * (size // len(chunk) + 1))[:size]
    path = draw(st.sampled_from(string_paths(tag)))
    case = encode(set_path(draw(bases(tag)), path, text), draw(plain_wires))
    return case.labelled("huge", f"{size} chars at {path} {case.detail}")


@st.composite
def long_lists(draw: st.DrawFn, tag: Tag) -> Case:
    """A list of the base request (messages, inputs, content parts; else an unknown field) grown to thousands."""
    base = draw(bases(tag))
    lists = [path for path in paths(base) if isinstance(get_path(base, path), list)] or [("x-fuzz",)]
    path = draw(st.sampled_from(lists))
    items = get_path(base, path) if path in paths(base) else ["x"]
    count = draw(st.one_of(st.integers(0, 64), st.integers(64, 3_000)))
    case = encode(set_path(base, path, [items[i % len(items)] for i in range(count)]), draw(plain_wires))
    return case.labelled("long-list", f"{count} items at {path} {case.detail}")


BAD_MEDIA: list[tuple[str, dict[str, Any]]] = [
    ("http-url", {"url": "http://example.org/cat.png"}),
    ("ftp-url", {"url": "ftp://example.org/cat.png"}),
    ("file-url", {"url": "file:///etc/passwd"}),
    ("upper-case-scheme", {"url": "HTTPS://example.org/cat.png"}),
    ("url-and-data", {"url": "https://example.org/cat.png", "data": IMAGE, "content_type": "image/png"}),
    ("url-and-bucket", {"url": "https://example.org/cat.png", "bucket": "b", "name": "n"}),
    ("bucket-without-name", {"bucket": "hfbus-media"}),
    ("name-without-bucket", {"name": "cat.png"}),
    ("empty", {}),
    ("empty-data", {"data": b"", "content_type": "image/png"}),
    ("bad-content-type", {"data": IMAGE, "content_type": "PNG please"}),
    ("url-too-long", {"url": "https://example.org/" + "a" * 5000}),
    ("all-null", {"url": None, "data": None, "bucket": None, "name": None}),
]
"""Media inputs the contract refuses whatever else the request says."""

BAD_BASE64 = [
    "not base64!",
    "YWJj=",
    "YWJ",
    "====",
    "data:image/png;base64,iVBORw0KGgo=",
    "%%%%",
    "YW Jj",
    "\u00e9t\u00e9",
]
"""`data` strings that are not standard, padded base64."""

BAD_PARTS: list[tuple[str, dict[str, Any]]] = [
    ("image-part-without-image", {"type": "image_url"}),
    ("image-url-empty", {"type": "image_url", "image_url": {"url": ""}}),
    ("image-url-not-a-string", {"type": "image_url", "image_url": {"url": 7}}),
    ("image-url-a-string", {"type": "image_url", "image_url": "https://example.org/cat.png"}),
    ("text-part-without-text", {"type": "text"}),
    ("untyped-part", {"text": "hi"}),
    ("video-part", {"type": "video_url", "video_url": {"url": "https://example.org/v.mp4"}}),
]
"""Content parts a chat (or pic2text) message refuses."""


@st.composite
def bad_media(draw: st.DrawFn, tag: Tag) -> Case:
    """A media input that breaks the one-of rule, the https rule or its own field types; bad parts for chat."""
    base = draw(bases(tag))
    if tag in MEDIA_FIELD:
        name, media = draw(st.sampled_from(BAD_MEDIA))
        extra = draw(st.dictionaries(st.sampled_from(["detail", "size", "x"]), json_values, max_size=2))
        value = set_path(base, (MEDIA_FIELD[tag],), media | extra)
    else:
        name, part = draw(st.sampled_from(BAD_PARTS))
        value = set_path(base, ("messages", 0, "content"), [{"type": "text", "text": "hi"}, part])
    case = encode(value, draw(plain_wires))
    return case.labelled("bad-media", f"{name} {case.detail}")


@st.composite
def invalid_base64(draw: st.DrawFn, tag: Tag) -> Case:
    """A media `data` string that is not standard padded base64 (JSON), or text where msgpack wants bytes."""
    data = draw(
        st.one_of(
            st.sampled_from(BAD_BASE64),
            st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_!. \n", max_size=64),
        )
    )
    media = {"data": data, "content_type": "image/png"}
    case = encode(set_path(draw(bases(tag)), (MEDIA_FIELD[tag],), media), draw(plain_wires))
    return case.labelled("base64", f"{data!r} {case.detail}")


def hostile_reply_subjects(prefix: str) -> list[str]:
    """`reply_to` values the consumer must refuse: server APIs, its own internal subjects, malformed ones."""
    return [
        "$JS.API.STREAM.INFO.HFBUS",
        "$JS.API.STREAM.PURGE.HFBUS",
        "$KV.bucket.key",
        "$O.hfbus-media.C.chunk",
        "$SYS.REQ.SERVER.PING",
        f"{prefix}.chat",
        f"{prefix}.models",
        f"{prefix}.cancel.fuzz-other",
        f"{prefix}.final.chat.fuzz-other",
        f"{prefix}.dead.chat",
        f"{prefix}.out.chat.fuzz-other",
        "elsewhere.reply",
        "_INBOX..x",
        "_INBOX.a b",
        "_INBOX.a\nb",
        "_INBOX.*",
        "_INBOX.>",
        ".",
    ]


@st.composite
def reply_subjects(draw: st.DrawFn, tag: Tag, prefix: str) -> Case:
    """The base request with `reply_to` hostile, malformed, random, or a well-formed inbox."""
    reply_to = draw(
        st.one_of(
            st.sampled_from(hostile_reply_subjects(prefix)),
            st.text(max_size=40),
            st.text(max_size=20).map(lambda t: f"_INBOX.{t}"),
        )
    )
    case = encode(set_path(draw(bases(tag)), ("reply_to",), reply_to), draw(plain_wires))
    return case.labelled("reply", f"{reply_to!r} {case.detail}")


def hostile(tag: Tag, limit: int, prefix: str = "ai") -> st.SearchStrategy[Case]:
    """Every kind of hostile message for `tag`, mixed."""
    kinds = [
        reply_subjects(tag, prefix),
        random_bytes(),
        random_values(),
        wrong_types(tag),
        mutated(tag),
        deep_nesting(tag),
        huge_strings(tag, limit),
        long_lists(tag),
    ]
    if tag in MEDIA_FIELD or tag in (Tag.CHAT, Tag.PIC2TEXT):
        kinds.append(bad_media(tag))
    if tag in MEDIA_FIELD:
        kinds.append(invalid_base64(tag))
    return st.one_of(kinds)


def corpus(tag: Tag, limit: int, max_payload: int, prefix: str = "ai") -> list[Case]:
    """Fixed cases sent on every run, so each kind is covered whatever the random draw was."""
    raw: list[tuple[str, bytes, dict[str, str] | None]] = [
        ("empty", b"", None),
        ("empty msgpack", b"", MSGPACK_HEADERS),
        *((f"scalar {data!r}", data, None) for data in (b"null", b"true", b"0", b"1e999", b'"x"', b"[]", b"{}")),
        ("byte order mark", b"\xef\xbb\xbf{}", None),
        ("msgpack nil", b"\xc0", MSGPACK_HEADERS),
        ("msgpack never-used byte", b"\xc1", MSGPACK_HEADERS),
        ("msgpack map claiming 4G entries", b"\xdf\xff\xff\xff\xff", MSGPACK_HEADERS),
        ("4000-digit seed", b'{"id":"fuzz-int","seed":' + b"9" * 4000 + b"}", None),
        ("over the NATS max payload", b" " * (max_payload + 1), None),
    ]
    cases = [Case("corpus", payload, headers, detail) for detail, payload, headers in raw]
    wire: Literal["json", "msgpack"]
    for wire in ("json", "msgpack"):
        headers = encode(None, wire).headers
        for shape in ("array", "object"):
            cases.append(Case("corpus", nested(DEEP, shape, wire), headers, f"{DEEP} {shape}s top {wire}"))
            value = set_path(base_request(tag), ("x-fuzz",), _SENTINEL)
            case = spliced(value, wire, _nested_raw(DEEP, shape))
            cases.append(case.labelled("corpus", f"{DEEP} {shape}s in an unknown field {wire}"))
        case = spliced(set_path(base_request(tag), ("id",), _SENTINEL), wire, _nested_raw(DEEP, "array"))
        cases.append(case.labelled("corpus", f"{DEEP} arrays as the id {wire}"))
        cases.append(Case("corpus", _padded(tag, wire, limit), headers, f"exactly the limit {wire}"))
        cases.append(Case("corpus", _padded(tag, wire, limit + 1), headers, f"one byte over the limit {wire}"))
    for reply_to in hostile_reply_subjects(prefix):
        case = encode(set_path(base_request(tag, "fuzz-reply"), ("reply_to",), reply_to), "json")
        cases.append(case.labelled("corpus", f"reply_to {reply_to!r}"))
    if tag in MEDIA_FIELD:
        for text in BAD_BASE64:
            media = {"data": text, "content_type": "image/png"}
            case = encode(set_path(base_request(tag), (MEDIA_FIELD[tag],), media), "json")
            cases.append(case.labelled("corpus", f"base64 {text!r}"))
        for name, media in BAD_MEDIA:
            case = encode(set_path(base_request(tag), (MEDIA_FIELD[tag],), media), "json")
            cases.append(case.labelled("corpus", f"media {name}"))
    elif tag in (Tag.CHAT, Tag.PIC2TEXT):
        for name, part in BAD_PARTS:
            case = encode(set_path(base_request(tag), ("messages", 0, "content"), [part]), "json")
            cases.append(case.labelled("corpus", f"content part {name}"))
    return cases


def _nested_raw(depth: int, shape: Literal["array", "object"]) -> Callable[[Wire], bytes]:
    return lambda wire: nested(depth, shape, wire)


def _padded(tag: Tag, wire: Literal["json", "msgpack"], size: int) -> bytes:
    """The base request padded through an unknown field to exactly `size` bytes."""
    base = base_request(tag, f"fuzz-{wire}-{size}")
    estimate = size - len(encode(set_path(base, ("x-pad",), ""), wire).payload)
    # msgpack's string header grows with the string, so try a few pads around the estimate.
    for pad in range(max(estimate - 8, 0), estimate + 1):
        payload = encode(set_path(base, ("x-pad",), "p" * pad), wire).payload
        if len(payload) == size:
            return payload
    raise AssertionError(f"cannot pad a {tag} request to {size} bytes")
