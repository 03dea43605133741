"""The pairs only @huggingface/inference 4.13.30 supports, checked against what that client itself sent.

`js_capture/capture.mjs` drove the JS client (its real request builders and pollers) against canned replies and
recorded every request in `js_capture/captures.json`; node is not needed to run this test, only to regenerate
the captures. Here hfbus's adapter runs the same flow against the same replies, and the requests must be equal
one by one (method, URL, whether the token goes along, the headers that matter, the body — multipart part by
part) and so must the final output, exactly as `test_against_huggingface_hub.py` checks the Python client.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from tests.contract.test_against_huggingface_hub import (
    JS_ONLY,
    Case,
    Reply,
    Wire,
    hfbus_output,
    run_hfbus,
    wire,
)

CAPTURES = json.loads((Path(__file__).parent / "js_capture" / "captures.json").read_text(encoding="utf-8"))


def js_case(capture: dict[str, Any]) -> Case:
    fields = dict(capture["fields"])
    if "media_b64" in fields:
        fields["media"] = base64.b64decode(fields.pop("media_b64"))
    routes: dict[tuple[str, str], list[Reply]] = {}
    for key, replies in capture["replies"].items():
        method, url = key.split(" ", 1)
        routes[(method, url)] = [(r["status"], r["type"], base64.b64decode(r["body_b64"])) for r in replies]
    return Case(
        capture["provider"],
        capture["task"],
        capture["hf_model"],
        capture["provider_id"],
        fields,
        lambda c, m, f: None,  # the JS client already ran: its requests are in the capture
        routes,
    )


def js_wires(capture: dict[str, Any]) -> list[Wire]:
    return [
        wire(
            w["method"],
            w["url"],
            w["headers"],
            base64.b64decode(w["body_b64"]),
            authenticated="authorization" in w["headers"],
        )
        for w in capture["wires"]
    ]


def test_the_captures_cover_exactly_the_js_only_rows() -> None:
    assert CAPTURES["client"] == "@huggingface/inference 4.13.30"
    assert {(c["provider"], c["task"]) for c in CAPTURES["cases"]} == JS_ONLY


@pytest.mark.parametrize("capture", CAPTURES["cases"], ids=[f"{c['provider']}/{c['task']}" for c in CAPTURES["cases"]])
def test_same_requests_and_output_as_the_js_client(capture: dict[str, Any]) -> None:
    bus = run_hfbus(js_case(capture))

    assert bus.wires == js_wires(capture)
    assert not bus.stopped, bus.stopped
    output = capture["output"]
    expected = base64.b64decode(output["bytes_b64"]) if "bytes_b64" in output else output["text"]
    assert hfbus_output(bus.output) == expected
