"""The gateway's door keeper: a bearer virtual key, its model list and limits, and the settlement of each request.

A request reserves what it may cost (its `max_tokens` priced from the catalog, one image, ...) before it runs;
its final output replaces the reservation with what it really cost, even when the client hung up first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError

from schemas import Error, Result, Tag
from services.catalog import Catalog, CatalogError, UnknownModelError, cost_usd
from services.gateway.access.keys import KeyRecord, KeyStore
from services.gateway.access.limits import Admission, Limiter, LimitExceeded, LimitsUnavailable, ModelNotAllowed
from services.gateway.errors import ApiError
from services.settings import Settings

_UNAVAILABLE = ApiError(
    503, "the gateway cannot reach its key store; try again", type="server_error", code="service_unavailable"
)


@dataclass(slots=True)
class KeyPass:
    """One admitted request."""

    key_name: str
    model: str
    admission: Admission
    limiter: Limiter

    @property
    def headers(self) -> dict[str, str]:
        return self.admission.headers()

    async def settle(self, final: Result | Error) -> None:
        usage = getattr(final, "usage", None)
        tokens = getattr(usage, "total_tokens", 0) if usage is not None else 0
        model = final.model if isinstance(final, Result) and final.model else self.model
        await self.limiter.settle(self.admission, tokens=tokens, cost_usd=final.cost_usd, model=model)


class KeyGuard:
    """Virtual keys (`KeyStore`) and their limits (`Limiter`), both kept in NATS for every gateway instance."""

    def __init__(self, keys: KeyStore, limiter: Limiter, catalog: Catalog) -> None:
        self.keys = keys
        self.limiter = limiter
        self._catalog = catalog

    @classmethod
    async def open(cls, nc: NATS, settings: Settings, catalog: Catalog) -> KeyGuard:
        keys = await KeyStore.open(nc, settings)
        limiter = Limiter(nc, settings, keys)
        await limiter.ensure_streams()
        return cls(keys, limiter, catalog)

    async def authenticate(self, authorization: str | None) -> str:
        return (await self._record(authorization)).name

    async def admit(self, authorization: str | None, *, model: str, tag: Tag, reserve_tokens: int) -> KeyPass:
        record = await self._record(authorization)
        try:
            admission = await self.limiter.admit(
                record, model=model, reserve_tokens=reserve_tokens, reserve_usd=self._price(tag, model, reserve_tokens)
            )
        except ModelNotAllowed:
            raise ApiError(
                403,
                f"this key may not use the model `{model}`",
                type="permission_error",
                param="model",
                code="model_not_allowed",
            ) from None
        except LimitExceeded as exc:
            raise _refusal(exc) from None
        except LimitsUnavailable:
            raise _UNAVAILABLE from None
        return KeyPass(record.name, model, admission, self.limiter)

    async def _record(self, authorization: str | None) -> KeyRecord:
        scheme, _, key = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise _unauthorized("no API key: send `Authorization: Bearer <key>`")
        try:
            record = await self.keys.lookup(key.strip())
        except NatsError:
            raise _UNAVAILABLE from None
        if record is None:
            # Never echo the key: it may be a real secret of another system pasted by mistake.
            raise _unauthorized("the API key is unknown or revoked")
        await self.keys.touch(record)
        return record

    def _price(self, tag: Tag, model: str, tokens: int) -> float:
        """What the request may cost at most, for the budget's reservation (0 when the catalog has no price)."""
        try:
            entry = self._catalog.resolve(tag, model or None).entry
        except (UnknownModelError, CatalogError, ValueError):
            return 0.0
        most = cost_usd(entry, completion_tokens=tokens, tokens=tokens, images=1, videos=1, characters=tokens * 4)
        return most or 0.0


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, message, type="authentication_error", code="invalid_api_key")


def _refusal(exc: LimitExceeded) -> ApiError:
    headers = exc.rates.headers()
    if exc.kind == "budget":
        headers["x-should-retry"] = "false"
        return ApiError(429, str(exc), type="insufficient_quota", code="insufficient_quota", headers=headers)
    if exc.retry_after_s is not None:
        headers["retry-after"] = str(max(1, math.ceil(exc.retry_after_s)))
    else:
        headers["x-should-retry"] = "false"
    return ApiError(429, str(exc), type="rate_limit_error", code="rate_limit_exceeded", headers=headers)
