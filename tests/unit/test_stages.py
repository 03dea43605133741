"""A settled request's time split into stages, each named by the mark that ends it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from services.consumer.records import stage_times


def _outputs(**marks: float | None) -> Any:
    fields = {"started_at": None, "first_output_at": None, "final_at": None, "kept_at": None}
    fields |= {"published_at": None, "settled_at": None}
    return SimpleNamespace(**(fields | marks))


def test_a_durable_request_passes_every_stage() -> None:
    outputs = _outputs(
        started_at=1.0, first_output_at=1.5, final_at=3.0, kept_at=3.25, published_at=3.5, settled_at=4.0
    )
    assert stage_times(outputs, taken_at=0.5, queued_s=0.125) == [
        ("queued", 0.125),
        ("intake", 0.5),
        ("first_output", 0.5),
        ("answer", 1.5),
        ("keep", 0.25),
        ("publish", 0.25),
        ("ack", 0.5),
    ]


def test_a_core_request_publishes_from_the_final_being_ready() -> None:
    outputs = _outputs(started_at=1.0, first_output_at=1.5, final_at=3.0, published_at=3.5, settled_at=3.5)
    stages = dict(stage_times(outputs, taken_at=1.0, queued_s=None))
    assert "queued" not in stages and "keep" not in stages
    assert stages["publish"] == 0.5
