"""Reading what the keys spent, from the `<STREAM>_SPEND` counter stream `Limiter.settle` writes:

    <STREAM>.spend.<key id>.m.<model>.<requests|tokens|cost>      since the key was made
    <STREAM>.spend.<key id>.d.<YYYYMMDD>.<model>.<requests|cost>  per UTC day, for the console's chart

Models are one subject token each (base64url, see `model_token`); costs are nano-USD.
"""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from services.gateway.access.counters import Counters, CountersUnavailable
from services.gateway.access.keys import KeyStore

NANO = 1_000_000_000
"""Money is counted in nano-USD: counters are integers, and a few tokens can cost less than a micro-dollar."""
MAX_DAYS = 90


class SpendUnavailable(ConnectionError):
    """NATS did not answer within the deadline."""


def model_token(model: str) -> str:
    """A model name as one subject token: names hold '.', '/' and ':', and a subject token may hold no '.'."""
    return base64.urlsafe_b64encode(model.encode()).decode().rstrip("=")


def token_model(token: str) -> str:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode(errors="replace")


def day_token(at: float) -> str:
    """The UTC day of unix time `at`, as `YYYYMMDD`."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y%m%d")


class SpendReader:
    def __init__(self, counters: Counters, root: str, keys: KeyStore) -> None:
        self._counters = counters
        self._root = root
        self._keys = keys

    async def totals(self) -> dict[str, Any]:
        """Settled totals per key (with a breakdown per model) and per model:

            {"keys": {<key id>: {"name", "revoked", "requests", "tokens", "cost_usd", "models": {<model>: {...}}}},
             "models": {<model>: {"requests", "tokens", "cost_usd"}}}

        Raises:
            SpendUnavailable: NATS did not answer within the deadline.
        """
        totals = await self._read(f"{self._root}.spend.*.m.>")
        keys: dict[str, dict[str, Any]] = {
            r.id: {"name": r.name, "revoked": r.revoked, **_zero(), "models": {}} for r in await self._keys.list()
        }
        models: dict[str, dict[str, Any]] = {}
        for subject, total in totals.items():
            key_id, _, token, what = subject.removeprefix(f"{self._root}.spend.").split(".")
            model = token_model(token)
            key = keys.setdefault(key_id, {"name": None, "revoked": None, **_zero(), "models": {}})
            for bucket in (key, key["models"].setdefault(model, _zero()), models.setdefault(model, _zero())):
                _add(bucket, what, total)
        return {"keys": keys, "models": models}

    async def daily(self, days: int, *, now: float | None = None) -> dict[str, Any]:
        """Requests and cost per UTC day over the last `days` days (today included), per key and per model:

            {"days": ["YYYY-MM-DD", ...],
             "keys": {<key id>: {"name", "days": {"YYYY-MM-DD": {"requests", "cost_usd"}}}},
             "models": {<model>: {"days": {...}}}}

        Raises:
            SpendUnavailable: NATS did not answer within the deadline.
        """
        days = max(1, min(days, MAX_DAYS))
        today = datetime.fromtimestamp(time.time() if now is None else now, UTC).date()
        dates = [today - timedelta(days=back) for back in range(days - 1, -1, -1)]
        names = {r.id: r.name for r in await self._keys.list()}
        keys: dict[str, dict[str, Any]] = {}
        models: dict[str, dict[str, Any]] = {}
        for date in dates:
            label, token = date.isoformat(), date.strftime("%Y%m%d")
            # One filter per day: the subjects of older days are never listed, however long the stream's history.
            for subject, total in (await self._read(f"{self._root}.spend.*.d.{token}.>")).items():
                key_id, _, _, model_tok, what = subject.removeprefix(f"{self._root}.spend.").split(".")
                key = keys.setdefault(key_id, {"name": names.get(key_id), "days": {}})
                model = models.setdefault(token_model(model_tok), {"days": {}})
                for bucket in (key["days"], model["days"]):
                    _add(bucket.setdefault(label, {"requests": 0, "cost_usd": 0.0}), what, total)
        return {"days": [d.isoformat() for d in dates], "keys": keys, "models": models}

    async def _read(self, subjects_filter: str) -> dict[str, int]:
        try:
            return await self._counters.totals(subjects_filter)
        except CountersUnavailable as err:
            raise SpendUnavailable(str(err)) from err


def _add(bucket: dict[str, Any], what: str, total: int) -> None:
    if what == "cost":
        bucket["cost_usd"] += total / NANO
    else:
        bucket[what] = bucket.get(what, 0) + total


def _zero() -> dict[str, Any]:
    return {"requests": 0, "tokens": 0, "cost_usd": 0.0}
