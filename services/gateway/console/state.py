"""What the console's admin API shares, and its door: the admin key, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from services.bus.defaults import DefaultsBucket
from services.catalog import Catalog
from services.client import HfBus
from services.errors import ServiceError, Unauthorized
from services.gateway.access.guard import KeyGuard
from services.gateway.console.activity import Activity
from services.gateway.errors import ApiError
from services.hf.client import HfClient
from services.hf.hub import Account, whoami
from services.settings import Settings

WHOAMI_TTL_S = 60.0
"""How long a whoami answer is shown before the Hub is asked again (the status screen refreshes often)."""


@dataclass(slots=True)
class TokenCheck:
    """The last whoami: the account, or why it failed (a message without the token), and when."""

    at: float
    account: Account | None = None
    error: str | None = None
    code: str | None = None


@dataclass(slots=True)
class Console:
    settings: Settings
    bus: HfBus
    catalog: Catalog
    guard: KeyGuard
    defaults: DefaultsBucket
    activity: Activity
    hub: HfClient
    _admin_digest: bytes | None = None
    _token_check: TokenCheck | None = field(default=None)

    @classmethod
    async def open(
        cls, stack: AsyncExitStack, settings: Settings, bus: HfBus, catalog: Catalog, guard: KeyGuard
    ) -> Console:
        """Everything the admin API needs, torn down by `stack`: the events subscription and a Hub client."""
        hub = await stack.enter_async_context(HfClient(settings))
        activity = Activity()
        await activity.start(bus.nc, settings.subjects)
        stack.push_async_callback(activity.stop)
        defaults = await DefaultsBucket.open(bus.nc, settings)
        digest = _digest(settings.admin_key.reveal()) if settings.admin_key is not None else None
        return cls(settings, bus, catalog, guard, defaults, activity, hub, digest)

    def check_admin(self, request: web.Request) -> None:
        """Raise a 401 unless the request carries `Authorization: Bearer <HFBUS_ADMIN_KEY>`; 503 with no key set.

        Digests of equal length are compared with `hmac.compare_digest`, so the time taken says nothing about the
        key, not even its length. The presented value is never logged nor echoed.
        """
        if self._admin_digest is None:
            raise ApiError(
                503,
                "the console is off: set HFBUS_ADMIN_KEY (make run generates one)",
                type="server_error",
                code="console_disabled",
            )
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(_digest(given.strip()), self._admin_digest):
            raise ApiError(401, "wrong or missing admin key", type="authentication_error", code="invalid_admin_key")

    async def token_status(self, *, refresh: bool = False) -> dict[str, Any]:
        """Whether a HuggingFace token is set, and what the Hub's whoami said of it (cached `WHOAMI_TTL_S`)."""
        if self.settings.hf_token is None:
            return {"configured": False, "valid": None}
        check = self._token_check
        if refresh or check is None or time.time() - check.at > WHOAMI_TTL_S:
            check = await self._whoami()
        account = None
        if check.account is not None:
            account = {"name": check.account.name, "type": check.account.type, "fullname": check.account.fullname}
            account |= {"token_name": check.account.token_name, "token_role": check.account.token_role}
        return {
            "configured": True,
            "valid": check.account is not None if check.code != "unreachable" else None,
            "account": account,
            "error": check.error,
            "checked_at": check.at,
        }

    async def _whoami(self) -> TokenCheck:
        now = time.time()
        try:
            check = TokenCheck(now, account=await whoami(self.hub, self.settings.hub_url))
        except Unauthorized as err:
            check = TokenCheck(now, error=err.message, code=err.code.value)
            self.activity.note_refusal(err.code.value, at=now, source="the Hub's whoami")
        except ServiceError as err:
            check = TokenCheck(now, error=err.message, code="unreachable" if err.retryable else err.code.value)
            if err.code.value == "payment_required":
                self.activity.note_refusal(err.code.value, at=now, source="the Hub's whoami")
        self._token_check = check
        return check


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


CONSOLE: web.AppKey[Console] = web.AppKey("console", Console)


def console_of(request: web.Request) -> Console:
    """The console, once the request has shown the admin key."""
    console = request.app[CONSOLE]
    console.check_admin(request)
    return console
