"""What operators see of a running consumer: metrics, readiness and one log line per finished request."""

from __future__ import annotations

import logging

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.client import HfBus
from services.dev.fake_router import FakeRouter, Fault
from services.settings import Settings
from tests.conftest import running

pytestmark = pytest.mark.integration


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics_health_and_request_logs_follow_the_traffic(
    settings: Settings, router: FakeRouter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="services.consumer.runner")
    router.faults.append(Fault.status(402))
    async with running(settings) as app, HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
        refused = [o async for o in bus.chat("hi")]
        paid = await bus.chat("hi", model="deepseek-ai/DeepSeek-R1", max_tokens=10).result()
        base = f"http://127.0.0.1:{app.http_port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/readyz") as ready:
                ready_status = ready.status
            async with http.get(f"{base}/healthz") as health:
                health_status = health.status
            async with http.get(f"{base}/metrics") as response:
                text = await response.text()

    assert refused[-1].code == "payment_required"
    assert app.http_port > 0 and ready_status == 200 and health_status == 200
    metrics = samples(text)
    ok = (
        "hfbus_requests_total",
        frozenset({("tag", "chat"), ("model", paid.model), ("provider", "fake-provider"), ("outcome", "ok")}),
    )
    assert metrics[ok] == 1
    assert any(name == "hfbus_requests_total" and ("outcome", "payment_required") in labels for name, labels in metrics)
    assert metrics[("hfbus_tokens_total", frozenset({("tag", "chat"), ("direction", "out")}))] >= 10
    assert metrics[("hfbus_cost_usd_total", frozenset({("tag", "chat"), ("model", paid.model)}))] > 0
    assert metrics[("hfbus_time_to_first_token_seconds_count", frozenset({("tag", "chat")}))] >= 1
    finished = [r for r in caplog.records if r.getMessage() == "request finished"]
    fields = [r.__dict__["hfbus"] for r in finished]
    assert {f["outcome"] for f in fields} >= {"ok", "payment_required"}
    assert all(
        {"id", "tag", "model", "provider", "ttft_ms", "duration_ms", "tokens_out", "cost_usd"} <= set(f) for f in fields
    )
    # What HuggingFace support asks for: the router's id of the call, in the result and in its log line.
    assert paid.router_request_id is not None and paid.router_request_id == router.request_ids[-1]
    assert [f["router_request_id"] for f in fields if f["id"] == paid.id] == [paid.router_request_id]
