"""The generated JSON Schema / AsyncAPI files: committed copy up to date, and true to the structs they describe."""

from __future__ import annotations

import copy
import json
import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import msgspec.inspect
import pytest

from schemas import Chunk, Error, Output, Progress, RequestBase, Result, Subjects, Tag
from schemas.models import ModelsReply, ModelsRequest
from schemas.operations import DoneEvent, TagDefaults
from schemas.subjects import ANSWERED_BY, DEAD_DELIVERIES, DEAD_REASON, MSG_ID, REQUEST_SEQ
from services.dev import schemagen
from services.handlers import HANDLERS, HandlerSpec
from services.handlers.seams import Context

CONTRACTS = {contract.tag: contract for contract in schemagen.tag_contracts()}
FRESH = schemagen.generate()


def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(FRESH[name])
    return document


# --- a JSON Schema subset validator: the keywords msgspec emits ----------------------------------------------


def resolve(root: dict[str, Any], ref: str) -> dict[str, Any]:
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    assert isinstance(node, dict), ref
    return node


KINDS: dict[str, type | tuple[type, ...]] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
    "integer": int,
    "number": (int, float),
}


def errors(instance: Any, schema: dict[str, Any], root: dict[str, Any], path: str = "$") -> Iterator[str]:
    """Why `instance` does not match `schema` (nothing when it does)."""
    if "$ref" in schema:
        yield from errors(instance, resolve(root, schema["$ref"]), root, path)
    if "anyOf" in schema and all(any(errors(instance, s, root, path)) for s in schema["anyOf"]):
        yield f"{path}: matches no branch of anyOf"
    if "enum" in schema and instance not in schema["enum"]:
        yield f"{path}: {instance!r} not in {schema['enum']}"
    if "type" in schema:
        expected = KINDS[schema["type"]]
        if not isinstance(instance, expected) or (isinstance(instance, bool) and schema["type"] != "boolean"):
            yield f"{path}: {instance!r} is not of type {schema['type']}"
            return
    if isinstance(instance, dict):
        for name in schema.get("required", []):
            if name not in instance:
                yield f"{path}: required field {name!r} missing"
        for name, sub in schema.get("properties", {}).items():
            if name in instance:
                yield from errors(instance[name], sub, root, f"{path}.{name}")
    if isinstance(instance, list):
        if len(instance) < schema.get("minItems", 0):
            yield f"{path}: fewer than {schema['minItems']} items"
        for i, item in enumerate(instance):
            if "items" in schema:
                yield from errors(item, schema["items"], root, f"{path}[{i}]")
    if isinstance(instance, str):
        if len(instance) < schema.get("minLength", 0) or len(instance) > schema.get("maxLength", len(instance)):
            yield f"{path}: length out of bounds"
        if "pattern" in schema and not re.search(schema["pattern"], instance):
            yield f"{path}: does not match {schema['pattern']}"
    if isinstance(instance, int | float) and not isinstance(instance, bool):
        if "minimum" in schema and instance < schema["minimum"]:
            yield f"{path}: below {schema['minimum']}"
        if "maximum" in schema and instance > schema["maximum"]:
            yield f"{path}: above {schema['maximum']}"
        if "exclusiveMinimum" in schema and instance <= schema["exclusiveMinimum"]:
            yield f"{path}: not above {schema['exclusiveMinimum']}"


def validate(instance: Any, schema: dict[str, Any]) -> list[str]:
    return list(errors(instance, schema, schema))


# --- the committed copy --------------------------------------------------------------------------------------


def test_the_committed_files_match_a_fresh_generation() -> None:
    problems = list(schemagen.differences(schemagen.OUT_DIR, FRESH))
    assert not problems, "schemas/generated is stale; run `make schemas` and commit:\n" + "\n".join(problems)


def test_every_served_tag_has_a_request_and_an_output_schema() -> None:
    expected = {f"{tag}.{kind}.schema.json" for tag in HANDLERS for kind in ("request", "output")}
    assert set(FRESH) == expected | {schemagen.ASYNCAPI_FILE}


@pytest.mark.parametrize("name", sorted(FRESH))
def test_every_generated_file_says_so_at_the_top_and_ends_with_a_newline(name: str) -> None:
    document = load(name)
    first_keys = list(document)[:2]
    assert "$comment" in first_keys or "x-generated" in first_keys
    assert schemagen.GENERATED in (document.get("$comment"), document.get("x-generated"))
    assert FRESH[name].endswith("}\n")


def test_generation_is_deterministic() -> None:
    assert schemagen.generate() == FRESH


# --- the JSON Schema files agree with msgspec ----------------------------------------------------------------


@pytest.mark.parametrize("tag", list(CONTRACTS))
def test_a_sample_request_validates_and_loses_validity_without_a_required_field(tag: Tag) -> None:
    contract = CONTRACTS[tag]
    schema = load(f"{tag}.request.schema.json")
    definition = resolve(schema, schema["$ref"])
    assert "id" in definition["required"]

    for sample in schemagen.request_examples(contract):
        msgspec.convert(sample, contract.request_type)
        assert validate(sample, schema) == []
        wire = json.loads(msgspec.json.encode(msgspec.convert(sample, contract.request_type)))
        assert validate(wire, schema) == [], "what a Python publisher sends must match the schema too"
        for field in definition["required"]:
            broken = {k: v for k, v in sample.items() if k != field}
            assert f"$: required field {field!r} missing" in validate(broken, schema)
            with pytest.raises(msgspec.ValidationError):
                msgspec.convert(broken, contract.request_type)


def test_a_chat_request_breaking_a_constraint_fails_both_the_schema_and_msgspec() -> None:
    schema = load("chat.request.schema.json")
    for broken in (
        {"id": "has space", "messages": [{"role": "user", "content": "hi"}]},
        {"id": "a", "messages": []},
        {"id": "a", "messages": [{"role": "robot", "content": "hi"}]},
        {"id": "a", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 0},
    ):
        assert validate(broken, schema), broken
        with pytest.raises(msgspec.ValidationError):
            msgspec.convert(broken, CONTRACTS[Tag.CHAT].request_type)


@pytest.mark.parametrize(
    ("tag", "output"), [(tag, output) for tag, contract in CONTRACTS.items() for output in contract.outputs]
)
def test_each_output_type_has_its_type_discriminator_and_validates(tag: Tag, output: type[Output]) -> None:
    schema = load(f"{tag}.output.schema.json")
    info = msgspec.inspect.type_info(output)
    assert isinstance(info, msgspec.inspect.StructType)
    type_tag = info.tag
    definition = schema["$defs"][output.__name__]
    assert definition["properties"]["type"] == {"enum": [type_tag]}
    assert {"type", "id", "seq"} <= set(definition["required"])
    assert schema["discriminator"]["mapping"][type_tag] == f"#/$defs/{output.__name__}"

    examples = schemagen.output_examples(output)
    assert examples, f"no example for {output.__name__}"
    for sample in examples:
        assert validate(sample, schema) == []
        assert type(msgspec.convert(sample, CONTRACTS[tag].output_type)) is output
        assert validate({**sample, "type": "bogus"}, schema) == ["$: matches no branch of anyOf"]
        for field in definition["required"]:
            assert validate({k: v for k, v in sample.items() if k != field}, schema)


def test_field_docstrings_become_descriptions() -> None:
    chunk = load("chat.output.schema.json")["$defs"]["Chunk"]["properties"]
    assert chunk["seq"]["description"].startswith("Rises by one")
    assert chunk["reasoning"]["description"].startswith("Reasoning models'")


def test_descriptions_do_not_depend_on_how_a_msgspec_release_dedents_docstrings() -> None:
    # msgspec 0.23 dedents struct docstrings; earlier releases kept the source indentation.
    as_older_msgspec = {"description": "Exactly one of: `url`,\n    or `bucket` + `name`.", "type": "object"}
    as_newer_msgspec = {"description": "Exactly one of: `url`,\nor `bucket` + `name`.", "type": "object"}
    assert schemagen.tidy_descriptions(as_older_msgspec) == schemagen.tidy_descriptions(as_newer_msgspec)


def test_a_description_inside_an_example_is_data_and_kept_as_is() -> None:
    document = {"examples": [{"description": "  two  spaces\n    kept"}], "description": "  prose"}
    assert schemagen.tidy_descriptions(document) == {
        "examples": [{"description": "  two  spaces\n    kept"}],
        "description": "prose",
    }


# --- AsyncAPI ------------------------------------------------------------------------------------------------


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def test_asyncapi_refs_resolve_and_operations_use_their_channels_messages() -> None:
    doc = load(schemagen.ASYNCAPI_FILE)
    assert doc["asyncapi"].startswith("3.0.")
    for ref in refs(doc):
        resolve(doc, ref)
    for name, operation in doc["operations"].items():
        assert operation["action"] in ("send", "receive"), name
        channel = operation["channel"]["$ref"]
        for message in operation["messages"]:
            assert message["$ref"].startswith(channel + "/messages/"), (name, message)
        if "reply" in operation:
            reply_channel = operation["reply"]["channel"]["$ref"]
            assert all(m["$ref"].startswith(reply_channel + "/messages/") for m in operation["reply"]["messages"])


@pytest.mark.parametrize("tag", list(CONTRACTS))
def test_asyncapi_channels_are_the_subjects_of_each_tag(tag: Tag) -> None:
    doc = load(schemagen.ASYNCAPI_FILE)
    subjects = Subjects("{prefix}")
    channels = doc["channels"]
    assert channels[f"{tag}_requests"]["address"] == subjects.request(tag)
    assert channels[f"{tag}_outputs"]["address"] == subjects.out(tag, "{id}")
    assert channels["cancel"]["address"] == subjects.cancel("{id}")
    outputs = {m["$ref"].rsplit("/", 1)[1] for m in channels[f"{tag}_outputs"]["messages"].values()}
    assert outputs == {o.__name__ for o in CONTRACTS[tag].outputs}
    receive = doc["operations"][f"receive_{tag}"]
    assert receive["bindings"]["nats"]["queue"] == Subjects.queue_group(tag)


@pytest.mark.parametrize("tag", list(CONTRACTS))
def test_asyncapi_kept_finals_of_each_tag_reuse_its_result_and_error_messages(tag: Tag) -> None:
    doc = load(schemagen.ASYNCAPI_FILE)
    finals = doc["channels"][f"{tag}_finals"]
    assert finals["address"] == Subjects("{prefix}").final(tag, "{id}")
    assert Subjects().finals_stream in finals["description"]
    expected = {o.__name__ for o in CONTRACTS[tag].outputs if issubclass(o, Result | Error)}
    assert expected and {m["$ref"] for m in finals["messages"].values()} == {
        f"#/components/messages/{name}" for name in expected
    }
    assert doc["operations"][f"send_{tag}_final"]["channel"] == {"$ref": f"#/channels/{tag}_finals"}
    output_headers = doc["components"]["schemas"]["OutputHeaders"]["properties"]
    assert {REQUEST_SEQ, ANSWERED_BY} <= set(output_headers)
    for name in expected:
        assert doc["components"]["messages"][name]["headers"] == {"$ref": "#/components/schemas/OutputHeaders"}


@pytest.mark.parametrize("tag", list(CONTRACTS))
def test_asyncapi_dead_letters_of_each_tag_carry_the_request_and_why(tag: Tag) -> None:
    doc = load(schemagen.ASYNCAPI_FILE)
    dead = doc["channels"][f"{tag}_dead_letters"]
    assert dead["address"] == Subjects("{prefix}").dead(tag)
    assert Subjects().dead_stream in dead["description"]
    (message_ref,) = dead["messages"].values()
    message = resolve(doc, message_ref["$ref"])
    assert message["payload"] == {"$ref": f"#/components/schemas/{CONTRACTS[tag].request_type.__name__}"}
    headers = resolve(doc, message["headers"]["$ref"])
    assert set(headers["required"]) == {DEAD_REASON, DEAD_DELIVERIES}
    assert MSG_ID not in headers["properties"], "dead letters drop the dedupe key"
    assert doc["operations"][f"send_{tag}_dead_letter"]["channel"] == {"$ref": f"#/channels/{tag}_dead_letters"}


def test_asyncapi_models_is_a_request_reply_of_the_models_structs() -> None:
    doc = load(schemagen.ASYNCAPI_FILE)
    channels = doc["channels"]
    assert channels["models"]["address"] == Subjects("{prefix}").models
    assert channels["models_replies"]["address"] is None, "the reply goes to the requester's inbox"
    operation = doc["operations"]["receive_models"]
    assert operation["action"] == "receive" and operation["channel"] == {"$ref": "#/channels/models"}
    (request,) = operation["messages"]
    (reply,) = operation["reply"]["messages"]
    assert operation["reply"]["channel"] == {"$ref": "#/channels/models_replies"}
    payloads = [resolve(doc, resolve(doc, m["$ref"])["$ref"])["payload"]["$ref"] for m in (request, reply)]
    assert payloads == [f"#/components/schemas/{cls.__name__}" for cls in (ModelsRequest, ModelsReply)]


def test_asyncapi_message_examples_match_their_payload_schema_and_decode() -> None:
    doc = load(schemagen.ASYNCAPI_FILE)
    structs = {c.request_type.__name__: c.request_type for c in CONTRACTS.values()}
    structs |= {o.__name__: o for c in CONTRACTS.values() for o in c.outputs}
    structs |= {cls.__name__: cls for cls in (ModelsRequest, ModelsReply, DoneEvent, TagDefaults)}
    content_types = doc["components"]["schemas"]["RequestHeaders"]["properties"]["Content-Type"]["enum"]
    assert content_types == ["application/json", "application/msgpack"]
    for name, message in doc["components"]["messages"].items():
        if "payload" not in message:
            continue  # cancel: an empty body
        payload = resolve(doc, message["payload"]["$ref"])
        assert message["examples"], name
        for example in message["examples"]:
            assert list(errors(example["payload"], payload, doc)) == [], (name, example)
            msgspec.convert(example["payload"], structs[payload["title"]])
            if "headers" in example:
                headers = resolve(doc, message["headers"]["$ref"])
                assert list(errors(example["headers"], headers, doc)) == [], (name, example)


def test_asyncapi_discriminators_are_in_asyncapi_form() -> None:
    schemas_ = load(schemagen.ASYNCAPI_FILE)["components"]["schemas"]
    discriminators = [d for d in _values_of("discriminator", schemas_)]
    assert discriminators and all(d == "type" for d in discriminators)


def _values_of(key: str, node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                yield v
            yield from _values_of(key, v)
    elif isinstance(node, list):
        for item in node:
            yield from _values_of(key, item)


# --- new tags are picked up from the handler table ------------------------------------------------------------


class VectorizeRequest(RequestBase, frozen=True, kw_only=True):
    """Embed text."""

    input: str | list[str]
    normalize: bool = True


class VectorizeResult(Result, tag="result", frozen=True, kw_only=True):
    vectors: list[list[float]]
    dims: int
    """Length of each vector."""


VectorizeOutput = Chunk | Progress | VectorizeResult | Error


async def _no_handler(request: Any, ctx: Context) -> None:
    raise NotImplementedError


def test_a_new_tag_in_the_handler_table_gets_schemas_channels_and_an_example() -> None:
    handlers = {**HANDLERS, Tag.VECTORIZE: HandlerSpec(VectorizeRequest, _no_handler)}
    files = schemagen.generate(handlers)

    output = json.loads(files["vectorize.output.schema.json"])
    assert output["$defs"]["VectorizeResult"]["properties"]["dims"]["description"] == "Length of each vector."
    sample = {"type": "result", "id": "a", "seq": 0, "model": "m", "vectors": [[0.5]], "dims": 1}
    assert validate(sample, output) == []
    doc = json.loads(files[schemagen.ASYNCAPI_FILE])
    assert doc["channels"]["vectorize_requests"]["address"] == "{prefix}.vectorize"
    assert doc["channels"]["vectorize_finals"]["address"] == "{prefix}.final.vectorize.{id}"
    assert doc["channels"]["vectorize_dead_letters"]["address"] == "{prefix}.dead.vectorize"
    (example,) = doc["components"]["messages"]["vectorize_request"]["examples"]
    msgspec.convert(example["payload"], VectorizeRequest)
    assert list(files)[:4] == [
        f"{tag}.{kind}.schema.json" for tag in ("chat", "pic2text") for kind in ("request", "output")
    ]


def test_a_tag_without_its_own_output_union_gets_the_generic_one(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("fake_contract")
    monkeypatch.setitem(sys.modules, "fake_contract", module)
    monkeypatch.setitem(sys.modules, "schemas.text2sound", types.ModuleType("schemas.text2sound"))
    speak = msgspec.defstruct(
        "SpeakRequest", [("text", str)], bases=(RequestBase,), module="fake_contract", frozen=True, kw_only=True
    )

    assert schemagen.output_union(Tag.TEXT2SOUND, speak) == schemagen.DEFAULT_OUTPUT
    files = schemagen.generate({Tag.TEXT2SOUND: HandlerSpec(speak, _no_handler)})
    request = json.loads(files["text2sound.request.schema.json"])
    assert resolve(request, request["$ref"])["required"] == ["id", "text"]


# --- the command line ----------------------------------------------------------------------------------------


def test_check_exits_1_naming_changed_missing_and_stale_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert schemagen.main(["--out", str(tmp_path)]) == 0
    assert schemagen.main(["--check", "--out", str(tmp_path)]) == 0

    changed = tmp_path / "chat.request.schema.json"
    document = json.loads(changed.read_text())
    edited = copy.deepcopy(document)
    edited["title"] = "hand edited"
    changed.write_text(json.dumps(edited, indent=2) + "\n")
    (tmp_path / "pic2text.output.schema.json").unlink()
    (tmp_path / "gone.request.schema.json").write_text("{}\n")
    capsys.readouterr()

    assert schemagen.main(["--check", "--out", str(tmp_path)]) == 1
    report = capsys.readouterr().err
    assert "chat.request.schema.json: differs (+1 -1 lines)" in report
    assert "pic2text.output.schema.json: missing" in report
    assert "gone.request.schema.json: no longer generated" in report
    assert "make schemas" in report

    assert schemagen.main(["--out", str(tmp_path)]) == 0
    assert not (tmp_path / "gone.request.schema.json").exists()
    assert schemagen.main(["--check", "--out", str(tmp_path)]) == 0
