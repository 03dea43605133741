"""Where an hfbus request's time goes, stage by stage, from the consumer's `hfbus_request_stage_seconds` histogram.

The consumer records, per settled request, the seconds from one mark to the next: queued (durable: stored in
the work queue until taken), intake (taken until the handler starts), first_output, answer (first output until
the final is ready), keep (durable: the compare-and-set on the kept finals), publish, ack. The bench reads the
histogram's sums and counts from the consumer's /metrics before and after a round; the difference divided by
the count is the mean of each stage over that round's requests.
"""

from __future__ import annotations

import re

import aiohttp

STAGES = ("queued", "intake", "first_output", "answer", "keep", "publish", "ack")
_LINE = re.compile(r"^hfbus_request_stage_seconds_(sum|count)\{([^}]*)\} (\S+)$", re.MULTILINE)
_STAGE = re.compile(r'stage="([^"]*)"')

Totals = dict[str, tuple[float, float]]
"""stage -> (sum of seconds, count) as scraped."""


async def scrape(url: str) -> Totals:
    """The stage histogram's totals at `url` (a consumer's /metrics); empty when it cannot be read."""
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            async with session.get(url) as response:
                text = await response.text()
    except (aiohttp.ClientError, OSError, TimeoutError):
        return {}
    totals: dict[str, list[float]] = {}
    for kind, labels, value in _LINE.findall(text):
        stage = _STAGE.search(labels)
        if stage is None:
            continue
        entry = totals.setdefault(stage.group(1), [0.0, 0.0])
        entry[0 if kind == "sum" else 1] += float(value)
    return {stage: (pair[0], pair[1]) for stage, pair in totals.items()}


def round_means(before: Totals, after: Totals) -> dict[str, float]:
    """`stage_<name>_ms`: each stage's mean over the requests settled between the two scrapes."""
    out: dict[str, float] = {}
    for stage, (total, count) in after.items():
        total0, count0 = before.get(stage, (0.0, 0.0))
        if count > count0:
            out[f"stage_{stage}_ms"] = (total - total0) / (count - count0) * 1e3
    return out


def render(scenario: str, rounds: dict[str, list[dict[str, float]]]) -> str | None:
    """A table of mean stage times per hfbus system (medians over rounds), or None when none was recorded."""
    from bench.report import metric, table

    columns = [s for s in STAGES if any(f"stage_{s}_ms" in r for runs in rounds.values() for r in runs)]
    systems = [name for name, runs in rounds.items() if any("stage_intake_ms" in r for r in runs)]
    if not columns or not systems:
        return None
    rows = [(name, [metric(rounds, name, f"stage_{s}_ms").fmt(3) for s in columns]) for name in systems]
    title = f"{scenario}: where a request's time goes (mean ms per stage)"
    return table(title, rows, list(columns))
