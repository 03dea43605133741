"""Running the gateway in a test: consumers, one or more gateway instances, and SDK clients holding a key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import anyio
import nats
import openai

from services.gateway.access.keys import KeyStore
from services.gateway.access.limits import Limiter
from services.gateway.app import serve
from services.settings import Settings
from tests.conftest import running

KEY_NAME = "tests"


@dataclass
class Gateways:
    urls: list[str]
    key: str
    keys: KeyStore
    limiter: Limiter

    async def spend(self, *, within: float, at_least_tokens: int) -> dict[str, Any]:
        """The test key's spend once its settled tokens reach `at_least_tokens` (settling follows the answer)."""
        with anyio.fail_after(within):
            while True:
                spend = (await self.limiter.spend())["keys"]
                mine = next((s for s in spend.values() if s["name"] == KEY_NAME), None)
                if mine is not None and mine["tokens"] >= at_least_tokens:
                    return dict(mine)
                await anyio.sleep(0.05)

    def client(self, index: int = 0, *, key: str | None = None) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=f"{self.urls[index]}/v1", api_key=key or self.key, max_retries=0, timeout=30)


@asynccontextmanager
async def gateways(settings: Settings, *, instances: int = 1, **key_limits: Any) -> AsyncIterator[Gateways]:
    """Consumers, `instances` gateways on the same bus, and a fresh virtual key (`rpm=`, `tpm=`, ...)."""
    settings = replace(settings, gateway_addr="127.0.0.1:0")
    async with running(settings), anyio.create_task_group() as tg:
        urls = [await tg.start(serve, settings) for _ in range(instances)]
        nc = await nats.connect(settings.nats_url)
        try:
            keys = await KeyStore.open(nc, settings)
            key = await keys.create(KEY_NAME, **key_limits)
            yield Gateways(urls, key, keys, Limiter(nc, settings, keys))
        finally:
            await nc.close()
            tg.cancel_scope.cancel()


@asynccontextmanager
async def gateway(settings: Settings, **key_limits: Any) -> AsyncIterator[openai.AsyncOpenAI]:
    """One gateway and an SDK client with a fresh key."""
    async with gateways(settings, **key_limits) as running_gateways:
        client = running_gateways.client()
        try:
            yield client
        finally:
            await client.close()
