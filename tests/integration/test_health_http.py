"""The health and metrics endpoint on a real local socket."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from services.observability import HealthServer, Metrics, RequestRecord

pytestmark = pytest.mark.integration


class Readiness:
    """A ready() callable whose answer the test changes."""

    def __init__(self) -> None:
        self.state = (False, "not connected to NATS")

    def __call__(self) -> tuple[bool, str]:
        return self.state


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session


async def test_healthz_answers_while_the_server_runs(http: aiohttp.ClientSession) -> None:
    async with HealthServer("127.0.0.1:0", Metrics(), Readiness()) as server:
        assert server.port > 0
        async with http.get(f"http://127.0.0.1:{server.port}/healthz") as response:
            assert response.status == 200
            assert orjson.loads(await response.read()) == {"status": "ok"}
    assert server.port == 0


async def test_readyz_follows_the_ready_callable(http: aiohttp.ClientSession) -> None:
    readiness = Readiness()
    async with HealthServer("127.0.0.1:0", Metrics(), readiness) as server:
        url = f"http://127.0.0.1:{server.port}/readyz"
        async with http.get(url) as response:
            assert response.status == 503
            assert response.content_type == "application/json"
            assert orjson.loads(await response.read()) == {"status": "not ready", "reason": "not connected to NATS"}

        readiness.state = (True, "connected; 2 subscriptions live")
        async with http.get(url) as response:
            assert response.status == 200
            assert orjson.loads(await response.read())["status"] == "ready"

        readiness.state = (False, "draining")
        async with http.get(url) as response:
            assert response.status == 503
            assert orjson.loads(await response.read())["reason"] == "draining"


async def test_readyz_is_503_when_the_check_itself_fails(http: aiohttp.ClientSession) -> None:
    def broken() -> tuple[bool, str]:
        raise RuntimeError("no connection object yet")

    async with HealthServer("127.0.0.1:0", Metrics(), broken) as server:
        async with http.get(f"http://127.0.0.1:{server.port}/readyz") as response:
            assert response.status == 503
            assert orjson.loads(await response.read())["reason"] == "the readiness check failed"


async def test_metrics_serves_the_prometheus_exposition(http: aiohttp.ClientSession) -> None:
    metrics = Metrics()
    async with HealthServer("127.0.0.1:0", metrics, Readiness()) as server:
        metrics.started("chat")
        metrics.finished(
            RequestRecord(
                request_id="r1", tag="chat", model="m", provider="p", outcome="ok", attempt=1, ttft_s=0.1, duration_s=1
            )
        )
        async with http.get(f"http://127.0.0.1:{server.port}/metrics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
            body = await response.text()
    requests = {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name == "hfbus_requests_total"
    }
    assert requests == {(("model", "m"), ("outcome", "ok"), ("provider", "p"), ("tag", "chat")): 1}


async def test_probes_write_no_access_log(http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with HealthServer("127.0.0.1:0", Metrics(), Readiness()) as server:
        for path in ("/healthz", "/readyz", "/metrics"):
            async with http.get(f"http://127.0.0.1:{server.port}{path}") as response:
                await response.read()
    assert [r for r in caplog.records if r.name.startswith("aiohttp.access")] == []


async def test_a_taken_port_fails_with_the_variable_name() -> None:
    async with HealthServer("127.0.0.1:0", Metrics(), Readiness()) as first:
        second = HealthServer(f"127.0.0.1:{first.port}", Metrics(), Readiness())
        with pytest.raises(OSError, match="HFBUS_HTTP_ADDR"):
            await second.__aenter__()


@pytest.mark.parametrize("addr", ["off", "OFF", ""])
async def test_off_disables_the_server(addr: str) -> None:
    async with HealthServer(addr, Metrics(), Readiness()) as server:
        assert not server.enabled
        assert server.port == 0
