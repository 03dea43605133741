"""Metric series a request updates, kept as plain numbers and turned into Prometheus families when scraped.

Why not `prometheus_client`'s own children: each `inc()` / `observe()` takes a lock and walks its own checks,
about 1 µs a call, and a settled request makes thirteen of them. A consumer runs one event loop, so a dict
update is enough; the cost moves to the scrape, which happens every few seconds, not per request.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import Literal

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

MAX_LABEL_CHARS = 100
"""Label values are cut to this length, so one odd model name cannot blow up a series' size."""

Key = tuple[str | None, ...]


def label(value: str | None) -> str:
    return "" if value is None else str(value)[:MAX_LABEL_CHARS]


class Histogram:
    """One histogram series: a count per bucket (not cumulative until exposed) and the sum."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        # `le` buckets: a value equal to a bound belongs to that bound's bucket, which bisect_left finds.
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value


class Family:
    """The series of one counter or gauge by label values, as given (cut to `MAX_LABEL_CHARS` when exposed)."""

    __slots__ = ("doc", "kind", "labels", "name", "series")

    def __init__(self, kind: Literal["counter", "gauge"], name: str, doc: str, labels: Sequence[str]) -> None:
        self.kind = kind
        self.name = name
        self.doc = doc
        self.labels = list(labels)
        self.series: dict[Key, float] = {}

    def add(self, key: Key, amount: float = 1.0) -> None:
        series = self.series
        series[key] = series.get(key, 0.0) + amount


class HistogramFamily:
    """The histograms of one metric by label values, all with the same bucket bounds."""

    __slots__ = ("bounds", "doc", "histograms", "labels", "name")

    def __init__(self, name: str, doc: str, labels: Sequence[str], bounds: Sequence[float]) -> None:
        self.name = name
        self.doc = doc
        self.labels = list(labels)
        self.bounds = tuple(bounds)
        self.histograms: dict[Key, Histogram] = {}

    def observe(self, key: Key, value: float) -> None:
        histogram = self.histograms.get(key)
        if histogram is None:
            histogram = self.histograms[key] = Histogram(self.bounds)
        histogram.observe(value)


class Collector:
    """Exposes families to a `prometheus_client` registry (`registry.register(collector)`)."""

    def __init__(self, families: Sequence[Family | HistogramFamily]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        for family in self._families:
            if isinstance(family, HistogramFamily):
                yield _histogram(family)
                continue
            merged: dict[tuple[str, ...], float] = {}
            for key, value in family.series.items():
                labels = tuple(label(v) for v in key)
                merged[labels] = merged.get(labels, 0.0) + value
            metric: CounterMetricFamily | GaugeMetricFamily
            if family.kind == "counter":
                metric = CounterMetricFamily(family.name, family.doc, labels=family.labels)
            else:
                metric = GaugeMetricFamily(family.name, family.doc, labels=family.labels)
            for labels, value in merged.items():
                metric.add_metric(list(labels), value)
            yield metric


def _histogram(family: HistogramFamily) -> HistogramMetricFamily:
    merged: dict[tuple[str, ...], Histogram] = {}
    for key, histogram in family.histograms.items():
        labels = tuple(label(v) for v in key)
        into = merged.get(labels)
        if into is None:
            into = merged[labels] = Histogram(family.bounds)
        into.counts = [a + b for a, b in zip(into.counts, histogram.counts, strict=True)]
        into.total += histogram.total
    metric = HistogramMetricFamily(family.name, family.doc, labels=family.labels)
    for labels, histogram in merged.items():
        cumulative, buckets = 0, []
        for bound, count in zip([*family.bounds, float("inf")], histogram.counts, strict=True):
            cumulative += count
            buckets.append(("+Inf" if bound == float("inf") else repr(float(bound)), float(cumulative)))
        metric.add_metric(list(labels), buckets, histogram.total)
    return metric
