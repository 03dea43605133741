"""What one settled request did, from its `Outputs`: the record for metrics and the log line, and its stages."""

from __future__ import annotations

import time
from dataclasses import dataclass

from schemas import Error, Result, Tag
from services.consumer.outputs import Outputs
from services.observability import RequestRecord


def stage_times(outputs: Outputs, taken_at: float, queued_s: float | None) -> list[tuple[str, float]]:
    """Seconds per stage of one settled request, for the stage histogram; stages it did not pass are left out.

    Each stage is named by the mark that ends it and runs from the previous mark that was set: a core request
    has no `keep`, so its `publish` runs from the final being ready.
    """
    stages = [("queued", queued_s)] if queued_s is not None else []
    ends = (
        ("intake", outputs.started_at),
        ("first_output", outputs.first_output_at),
        ("answer", outputs.final_at),
        ("keep", outputs.kept_at),
        ("publish", outputs.published_at),
        ("ack", outputs.settled_at),
    )
    since = taken_at
    for stage, at in ends:
        if at is not None:
            stages.append((stage, at - since))
            since = at
    return stages


def request_record(outputs: Outputs, tag: Tag, model: str | None) -> RequestRecord:
    """What one finished request did, for metrics and the per-request log line."""
    final = outputs.final
    duration = time.monotonic() - outputs.started_at
    ttft = outputs.first_output_at - outputs.started_at if outputs.first_output_at is not None else None
    usage = getattr(final, "usage", None)
    return RequestRecord(
        request_id=outputs.request_id,
        tag=tag,
        model=getattr(final, "model", None) or model,
        provider=getattr(final, "provider", None),
        outcome="ok" if isinstance(final, Result) else final.code.value if isinstance(final, Error) else "handed_back",
        attempt=outputs.attempt,
        ttft_s=ttft,
        duration_s=duration,
        tokens_in=getattr(usage, "prompt_tokens", 0),
        tokens_out=getattr(usage, "completion_tokens", 0),
        cost_usd=getattr(final, "cost_usd", None),
        router_request_id=getattr(final, "router_request_id", None),
    )


@dataclass(slots=True)
class Counters:
    """What a runner has done since start; tests, metrics and `$SRV.STATS` read these."""

    requests: int = 0
    """Deliveries processed to the end (any outcome)."""
    errors: int = 0
    processing_ns: int = 0
    last_error: str = ""
    handled: int = 0
    failed: int = 0
    rejected: int = 0
    redelivered: int = 0
    already_answered: int = 0
    """Deliveries settled without running: their final output had been kept already."""
    dead_lettered: int = 0
    in_flight: int = 0
    """Deliveries being processed right now."""
