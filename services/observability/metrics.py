"""Prometheus metrics of one consumer process: requests, in flight, latency, tokens, cost, retries, fallbacks."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

from services.observability.series import Collector, Family, HistogramFamily, label

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


class Metrics:
    """The hfbus metric families, registered in their own registry unless one is given."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = CollectorRegistry() if registry is None else registry
        r = self.registry
        # What every request updates: plain numbers until a scrape (services/observability/series.py).
        self._in_flight = Family("gauge", "hfbus_requests_in_flight", "Requests being handled now.", ["tag"])
        self._started = Family("counter", "hfbus_requests_started", "Requests taken in.", ["tag"])
        self._requests = Family(
            "counter", "hfbus_requests", "Requests settled, by outcome.", ["tag", "model", "provider", "outcome"]
        )
        self._ttft = HistogramFamily(
            "hfbus_time_to_first_token_seconds",
            "Seconds from start to the first output (chunk, progress or result).",
            ["tag"],
            TTFT_BUCKETS_S,
        )
        self._duration = HistogramFamily(
            "hfbus_request_duration_seconds", "Seconds from start to settling.", ["tag", "outcome"], DURATION_BUCKETS_S
        )
        self._stages = HistogramFamily(
            "hfbus_request_stage_seconds",
            "Seconds a request spent in each stage: queued (durable: stored until taken), intake (taken until the"
            " handler starts), first_output, answer (first output until the final is ready), keep (durable: the"
            " compare-and-set), publish, ack.",
            ["tag", "stage"],
            STAGE_BUCKETS_S,
        )
        self._tokens = Family("counter", "hfbus_tokens", "Tokens reported by the upstream.", ["tag", "direction"])
        self._cost = Family(
            "counter", "hfbus_cost_usd", "Upstream cost in US dollars, when reported.", ["tag", "model"]
        )
        r.register(
            Collector(
                [
                    self._in_flight,
                    self._started,
                    self._requests,
                    self._ttft,
                    self._duration,
                    self._stages,
                    self._tokens,
                    self._cost,
                ]
            )
        )
        # Rare events keep prometheus_client's own counters.
        self._retries = Counter(
            "hfbus_upstream_retries", "Upstream calls repeated after a transient failure.", ["reason"], registry=r
        )
        self._fallbacks = Counter(
            "hfbus_provider_fallbacks",
            "Requests moved to another provider after one was unavailable.",
            ["tag", "from", "to"],
            registry=r,
        )

    def started(self, tag: str) -> None:
        """A request was taken in; pair every call with exactly one `finished`."""
        key = (tag,)
        self._in_flight.add(key)
        self._started.add(key)

    def finished(self, record: RequestRecord) -> None:
        """A request was settled: count it and observe its timings, tokens and cost."""
        tag = record.tag
        outcome = record.outcome
        self._in_flight.add((tag,), -1.0)
        self._requests.add((tag, record.model, record.provider, outcome))
        if record.ttft_s is not None:
            self._ttft.observe((tag,), max(record.ttft_s, 0.0))
        self._duration.observe((tag, outcome), max(record.duration_s, 0.0))
        self._tokens.add((tag, "in"), max(record.tokens_in, 0))
        self._tokens.add((tag, "out"), max(record.tokens_out, 0))
        if record.cost_usd is not None and record.cost_usd >= 0:
            self._cost.add((tag, record.model), record.cost_usd)

    def stages(self, tag: str, durations: list[tuple[str, float]]) -> None:
        """Where one settled request's time went, stage by stage (`(stage, seconds)` in order)."""
        observe = self._stages.observe
        for stage, seconds in durations:
            observe((tag, stage), max(seconds, 0.0))

    def retried(self, reason: str) -> None:
        """An upstream call is repeated; `reason` is the error code of the failure (`rate_limited`, ...)."""
        self._retries.labels(label(reason)).inc()

    def fell_back(self, tag: str, from_provider: str, to_provider: str) -> None:
        """A request left an unavailable provider for the next one."""
        self._fallbacks.labels(label(tag), label(from_provider), label(to_provider)).inc()

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition of the registry and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
