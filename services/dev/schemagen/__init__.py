"""`make schemas`: JSON Schema and an AsyncAPI 3.0 document for non-Python peers, generated from the structs.

    python -m services.dev.schemagen           (re)write schemas/generated/
    python -m services.dev.schemagen --check   exit 1 with a summary when the committed files differ

Everything is driven by `services.handlers.HANDLERS`: a tag with a handler gets its request schema, its
output schema and its AsyncAPI channels (requests, outputs, kept finals, dead letters; cancel and
`ai.models` are shared by every tag). A tag's output union is the `<Name>Output` union next to its request
struct (`ChatRequest` -> `ChatOutput`), or the only `*Output` union in `schemas/<tag>.py`, or
`Chunk | Progress | Result | Error`. Examples come from the tables in `examples.py`, then from an `EXAMPLES`
list in the struct's module, else one is built from the required fields; every example is decoded by msgspec
first, so a wrong one fails here rather than in another team's code.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import schemas
from schemas import Tag
from schemas.subjects import Subjects
from services.dev.schemagen.asyncapi_doc import asyncapi
from services.dev.schemagen.contracts import DEFAULT_OUTPUT, TagContract, output_union, tag_contracts
from services.dev.schemagen.examples import (
    MODELS_EXAMPLES,
    OUTPUT_EXAMPLES,
    REQUEST_EXAMPLES,
    models_examples,
    output_examples,
    request_examples,
)
from services.dev.schemagen.jsonschema import DIALECT, GENERATED, docstring, json_schema, tidy_descriptions
from services.handlers import HANDLERS, HandlerSpec

__all__ = [
    "ASYNCAPI_FILE",
    "DEFAULT_OUTPUT",
    "DIALECT",
    "GENERATED",
    "MODELS_EXAMPLES",
    "OUTPUT_EXAMPLES",
    "OUT_DIR",
    "REQUEST_EXAMPLES",
    "TagContract",
    "asyncapi",
    "differences",
    "generate",
    "json_schema",
    "main",
    "models_examples",
    "output_examples",
    "output_union",
    "request_examples",
    "tag_contracts",
    "tidy_descriptions",
    "write",
]

OUT_DIR = Path(schemas.__file__).resolve().parent / "generated"
ASYNCAPI_FILE = "asyncapi.json"


def generate(handlers: Mapping[Tag, HandlerSpec] = HANDLERS) -> dict[str, str]:
    """Every generated file, name -> text (JSON, two-space indent, trailing newline)."""
    contracts = tag_contracts(handlers)
    files: dict[str, Any] = {}
    for contract in contracts:
        subject = Subjects().request(contract.tag)
        request_doc = docstring(contract.request_type)
        files[f"{contract.tag}.request.schema.json"] = json_schema(
            contract.request_type,
            title=f"hfbus {contract.tag} request",
            description=f"Published on `{subject}` (the prefix `ai` is configurable). {request_doc}",
        )
        files[f"{contract.tag}.output.schema.json"] = json_schema(
            contract.output_type,
            title=f"hfbus {contract.tag} output",
            description=(
                f"One message of the output stream of a request on `{subject}`; `type` tells which. "
                "`seq` rises by one per attempt; exactly one `result` or `error` ends the stream."
            ),
        )
    files[ASYNCAPI_FILE] = asyncapi(contracts)
    return {name: _dump(tidy_descriptions(document)) for name, document in files.items()}


def _dump(document: Any) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def differences(out_dir: Path, fresh: Mapping[str, str]) -> Iterator[str]:
    """One line (plus a few diff lines) per file that is missing, changed, or no longer generated."""
    for name, text in fresh.items():
        path = out_dir / name
        if not path.exists():
            yield f"{name}: missing"
            continue
        committed = path.read_text(encoding="utf-8")
        if committed != text:
            diff = list(
                difflib.unified_diff(committed.splitlines(), text.splitlines(), "committed", "generated", lineterm="")
            )
            added = sum(1 for line in diff if line.startswith("+") and not line.startswith("+++"))
            removed = sum(1 for line in diff if line.startswith("-") and not line.startswith("---"))
            yield f"{name}: differs (+{added} -{removed} lines)\n" + "\n".join(f"    {line}" for line in diff[:30])
    for path in sorted(out_dir.glob("*.json")):
        if path.name not in fresh:
            yield f"{path.name}: no longer generated"


def write(out_dir: Path, fresh: Mapping[str, str]) -> list[str]:
    """Write the files that changed and delete stale generated ones; return the names touched."""
    out_dir.mkdir(parents=True, exist_ok=True)
    touched = []
    for name, text in fresh.items():
        path = out_dir / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            touched.append(name)
    for path in sorted(out_dir.glob("*.json")):
        if path.name not in fresh:
            path.unlink()
            touched.append(path.name)
    return touched


def main(argv: Sequence[str] | None = None) -> int:
    """Write or check `schemas/generated/`; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m services.dev.schemagen", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed files differ")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output directory (default: %(default)s)")
    args = parser.parse_args(argv)
    fresh = generate()
    if args.check:
        problems = list(differences(args.out, fresh))
        if problems:
            sys.stderr.write("\n".join(problems) + "\nschemas are stale: run `make schemas` and commit the result\n")
            return 1
        sys.stdout.write(f"{len(fresh)} generated files in {args.out} are up to date\n")
        return 0
    touched = write(args.out, fresh)
    sys.stdout.write(f"wrote {', '.join(touched) or 'nothing (up to date)'} in {args.out}\n")
    return 0
