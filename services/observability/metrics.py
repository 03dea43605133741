"""Prometheus metrics of one consumer process: requests, in flight, latency, tokens, cost, retries, fallbacks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

MAX_LABEL_CHARS = 100
"""Label values are cut to this length, so one odd model name cannot blow up a series' size."""

TTFT_BUCKETS_S = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
"""Time to first token: tens of ms on a warm model, minutes while a cold model or a media job queues."""

STAGE_BUCKETS_S = (0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 30.0, 300.0)
"""One stage of a request (see `Metrics.stages`): a fraction of a millisecond for a hand-over, seconds for an answer."""

DURATION_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0)
"""Whole requests: an embedding in ms, a long stream in minutes, a video job up to HFBUS_JOB_TIMEOUT (900 s)."""


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """What the runtime knows about one request when it is settled; feeds a metric update and a log line."""

    request_id: str
    tag: str
    model: str | None
    provider: str | None
    outcome: str
    """`ok`, an error code (`timeout`, `rate_limited`, ...), or `handed_back` (durable nak at shutdown or crash)."""
    attempt: int
    ttft_s: float | None
    """From start to the first output (chunk, progress or result); None when nothing went out."""
    duration_s: float
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float | None = None
    router_request_id: str | None = None
    """The router's `x-request-id`, for a support ticket."""


def _label(value: str | None) -> str:
    return "" if value is None else str(value)[:MAX_LABEL_CHARS]


class Metrics:
    """The hfbus metric families, registered in their own registry unless one is given."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = CollectorRegistry() if registry is None else registry
        r = self.registry
        self._in_flight = Gauge("hfbus_requests_in_flight", "Requests being handled now.", ["tag"], registry=r)
        self._started = Counter("hfbus_requests_started", "Requests taken in.", ["tag"], registry=r)
        self._requests = Counter(
            "hfbus_requests", "Requests settled, by outcome.", ["tag", "model", "provider", "outcome"], registry=r
        )
        self._ttft = Histogram(
            "hfbus_time_to_first_token_seconds",
            "Seconds from start to the first output (chunk, progress or result).",
            ["tag"],
            buckets=TTFT_BUCKETS_S,
            registry=r,
        )
        self._duration = Histogram(
            "hfbus_request_duration_seconds",
            "Seconds from start to settling.",
            ["tag", "outcome"],
            buckets=DURATION_BUCKETS_S,
            registry=r,
        )
        self._stages = Histogram(
            "hfbus_request_stage_seconds",
            "Seconds a request spent in each stage: queued (durable: stored until taken), intake (taken until the"
            " handler starts), first_output, answer (first output until the final is ready), keep (durable: the"
            " compare-and-set), publish, ack.",
            ["tag", "stage"],
            buckets=STAGE_BUCKETS_S,
            registry=r,
        )
        self._tokens = Counter("hfbus_tokens", "Tokens reported by the upstream.", ["tag", "direction"], registry=r)
        self._cost = Counter(
            "hfbus_cost_usd", "Upstream cost in US dollars, when reported.", ["tag", "model"], registry=r
        )
        self._retries = Counter(
            "hfbus_upstream_retries", "Upstream calls repeated after a transient failure.", ["reason"], registry=r
        )
        self._fallbacks = Counter(
            "hfbus_provider_fallbacks",
            "Requests moved to another provider after one was unavailable.",
            ["tag", "from", "to"],
            registry=r,
        )
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, family: Any, *values: str | None) -> Any:
        # `labels()` validates and locks on every call; a request touches seven series, so each is looked up once.
        key = (family, *values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = family.labels(*(_label(v) for v in values))
        return child

    def started(self, tag: str) -> None:
        """A request was taken in; pair every call with exactly one `finished`."""
        self._child(self._in_flight, tag).inc()
        self._child(self._started, tag).inc()

    def finished(self, record: RequestRecord) -> None:
        """A request was settled: count it and observe its timings, tokens and cost."""
        tag = record.tag
        outcome = record.outcome
        self._child(self._in_flight, tag).dec()
        self._child(self._requests, tag, record.model, record.provider, outcome).inc()
        if record.ttft_s is not None:
            self._child(self._ttft, tag).observe(max(record.ttft_s, 0.0))
        self._child(self._duration, tag, outcome).observe(max(record.duration_s, 0.0))
        self._child(self._tokens, tag, "in").inc(max(record.tokens_in, 0))
        self._child(self._tokens, tag, "out").inc(max(record.tokens_out, 0))
        if record.cost_usd is not None and record.cost_usd >= 0:
            self._child(self._cost, tag, record.model).inc(record.cost_usd)

    def stages(self, tag: str, durations: list[tuple[str, float]]) -> None:
        """Where one settled request's time went, stage by stage (`(stage, seconds)` in order)."""
        for stage, seconds in durations:
            self._child(self._stages, tag, stage).observe(max(seconds, 0.0))

    def retried(self, reason: str) -> None:
        """An upstream call is repeated; `reason` is the error code of the failure (`rate_limited`, ...)."""
        self._retries.labels(_label(reason)).inc()

    def fell_back(self, tag: str, from_provider: str, to_provider: str) -> None:
        """A request left an unavailable provider for the next one."""
        self._fallbacks.labels(_label(tag), _label(from_provider), _label(to_provider)).inc()

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition of the registry and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
