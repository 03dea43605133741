"""The console in a test: consumers, a gateway with an admin key, and an HTTP client for the admin API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import aiohttp

from services.settings import Secret, Settings
from tests.integration.gateway import Gateways, gateways

ADMIN_KEY = "test-admin-key-0123456789abcdef"


@dataclass
class ConsoleStack:
    url: str
    gateways: Gateways
    http: aiohttp.ClientSession
    settings: Settings

    async def call(self, method: str, path: str, *, key: str | None = ADMIN_KEY, **options: Any) -> tuple[int, Any]:
        """An admin API call (`path` under /admin/api/): its status and decoded JSON body."""
        headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
        async with self.http.request(method, f"{self.url}/admin/api/{path}", headers=headers, **options) as response:
            return response.status, await response.json()


@asynccontextmanager
async def console(settings: Settings, *, admin_key: str | None = ADMIN_KEY) -> AsyncIterator[ConsoleStack]:
    settings = replace(settings, admin_key=Secret(admin_key) if admin_key else None)
    async with gateways(settings) as running, aiohttp.ClientSession() as http:
        yield ConsoleStack(running.urls[0], running, http, settings)
