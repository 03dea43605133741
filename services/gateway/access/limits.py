"""Requests per minute, tokens per minute and budgets per virtual key, exact across every gateway instance.

The state lives in two JetStream counter streams (nats-server 2.12+; see `counters.py`), not in process memory,
so two instances sharing a key at 10 rpm let 10 requests through, not 20:

    <STREAM>_RATES  <STREAM>.rate.<key id>.rpm.<window start>   requests admitted in a fixed 60 s window
                    <STREAM>.rate.<key id>.tpm.<window start>   tokens reserved in it, corrected at settle
                    (max_age 2 windows: old windows vanish by themselves)
    <STREAM>_SPEND  <STREAM>.spend.<key id>.budget              nano-USD spent + reserved (never expires)
                    <STREAM>.spend.<key id>.m.<model>.<what>    settled requests, tokens, nano-USD per model
                    <STREAM>.spend.<key id>.d.<day>.<model>.<what>  settled requests, nano-USD per UTC day
                                                                (read by `spend.py`, for the console's chart)

Why counters and not KV compare-and-set: an admit is one increment per limit whose ack returns the new total,
whatever the contention; with compare-and-set, N instances racing for one key cost O(N) rounds each (every loser
reads and retries), which is worst exactly when a key is busiest. A counter cannot refuse an increment, so the
exact limit is: add, compare the total with the limit, take it back when over. The admitted request whose unit
landed last saw a total that held every admitted unit (admitted units are never taken back), so no more than the
limit is ever admitted. The price is on the other side only: while a refused unit is not yet taken back, a
concurrent request may be refused too, and a request refused by one limit briefly holds a unit of the others.

Windows are keyed by wall-clock start, so instances whose clocks disagree count a boundary request in different
windows; keep clocks synced (NTP). A reservation outlives a gateway that dies between admit and settle: in a
window that is harmless (it ends), in a budget it stays counted as spent (it errs on the side of refusing).
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError

from services.gateway.access.counters import Counters, CountersUnavailable, ensure_counter_stream
from services.gateway.access.keys import KeyRecord, KeyStore
from services.gateway.access.rates import RateState
from services.gateway.access.spend import NANO, SpendReader, SpendUnavailable, day_token, model_token
from services.settings import Settings

logger = logging.getLogger(__name__)

WINDOW_S = 60

Kind = Literal["requests", "tokens", "budget"]


class LimitsUnavailable(ConnectionError):
    """NATS could not count in time; the request was neither admitted nor charged."""


class ModelNotAllowed(PermissionError):
    """The key's `models` list does not include the model asked for."""


class LimitExceeded(Exception):
    """A request refused by one of its key's limits; nothing of it stays counted."""

    def __init__(self, kind: Kind, message: str, *, retry_after_s: float | None, rates: RateState) -> None:
        super().__init__(message)
        self.kind: Kind = kind
        self.retry_after_s = retry_after_s
        """Seconds until the window that refused it ends; None when waiting cannot help (budget, a request
        larger than the whole tokens-per-minute limit)."""
        self.rates = rates

    def headers(self) -> dict[str, str]:
        return self.rates.headers()


@dataclass(slots=True)
class Admission:
    """One admitted request's reservation; `Limiter.settle` must follow it exactly once (call it in a `finally`)."""

    id: str
    key_id: str
    window: int
    reserved_tokens: int
    reserved_nano: int
    counted_tokens: bool
    counted_budget: bool
    rates: RateState
    settled: bool = field(default=False)

    def headers(self) -> dict[str, str]:
        return self.rates.headers()


@dataclass(frozen=True, slots=True)
class _Count:
    kind: Kind
    subject: str
    delta: int
    limit: int


class Limiter:
    """Admits and settles requests against their key's limits; one per gateway process, any number of processes."""

    def __init__(
        self,
        nc: NATS,
        settings: Settings,
        keys: KeyStore,
        *,
        deadline_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`clock` (wall-clock seconds) picks the window; every instance must read the same time, so only tests
        pass one of their own."""
        self._clock = clock
        root = settings.subjects.stream
        self._root = root
        self._keys = keys
        self._rates = Counters(nc, f"{root}_RATES", deadline_s=deadline_s)
        self._spend = Counters(nc, f"{root}_SPEND", deadline_s=deadline_s)
        self._nc = nc
        self._settings = settings
        self.spending = SpendReader(self._spend, root, keys)
        """Per key, per model and per day: what `settle` counted."""

    async def ensure_streams(self) -> None:
        """Create (or update) the two counter streams; idempotent, every instance may call it at start."""
        root, replicas = self._root, self._settings.replicas
        await ensure_counter_stream(
            self._nc, f"{root}_RATES", [f"{root}.rate.>"], replicas=replicas, max_age_s=2 * WINDOW_S, dedupe_s=WINDOW_S
        )
        await ensure_counter_stream(
            self._nc, f"{root}_SPEND", [f"{root}.spend.>"], replicas=replicas, max_age_s=None, dedupe_s=2 * WINDOW_S
        )

    async def admit(self, record: KeyRecord, *, model: str, reserve_tokens: int, reserve_usd: float) -> Admission:
        """Count one request and reserve its tokens and cost, or refuse it with nothing left counted.

        `reserve_tokens` is what the request may use at most (prompt estimate + `max_tokens`), `reserve_usd` its
        price at that size; `settle` replaces both by what it used.

        Raises:
            ModelNotAllowed: the key may not use `model`.
            LimitExceeded: over requests or tokens per minute, or over budget (spent + reserved + this one).
            LimitsUnavailable: NATS could not count within the deadline.
        """
        if not record.allows(model):
            raise ModelNotAllowed(f"key {record.name!r} may not use model {model!r}")
        now = self._clock()
        window = int(now // WINDOW_S * WINDOW_S)
        reset_s = window + WINDOW_S - now
        reserve_tokens = max(0, reserve_tokens)
        reserved_nano = _nano(reserve_usd)
        counts: list[_Count] = []
        if record.rpm is not None:
            counts.append(_Count("requests", self._rate_subject(record.id, "rpm", window), 1, record.rpm))
        if record.tpm is not None:
            if reserve_tokens > record.tpm:
                raise LimitExceeded(
                    "tokens",
                    f"the request may use {reserve_tokens} tokens, more than key {record.name!r} allows per minute"
                    f" ({record.tpm}); lower max_tokens",
                    retry_after_s=None,
                    rates=RateState(limit_tokens=record.tpm, remaining_tokens=0, reset_tokens_s=reset_s),
                )
            counts.append(_Count("tokens", self._rate_subject(record.id, "tpm", window), reserve_tokens, record.tpm))
        if record.budget_usd is not None:
            counts.append(_Count("budget", self._budget_subject(record.id), reserved_nano, _nano(record.budget_usd)))

        admission_id = secrets.token_hex(12)
        # Shielded: once an increment may have landed, it must be either taken back or handed to the caller.
        with anyio.CancelScope(shield=True):
            totals = await self._add_all([(c.subject, c.delta) for c in counts], admission_id, "a")
            if any(isinstance(total, Exception) for total in totals):
                await self._take_back(counts, totals, admission_id)
                raise LimitsUnavailable("the limits could not be counted in time; try again") from next(
                    t for t in totals if isinstance(t, Exception)
                )
            over = [c for c, t in zip(counts, totals, strict=True) if isinstance(t, int) and t > c.limit]
            if over:
                await self._take_back(counts, totals, admission_id)
        rates = _rate_state(counts, totals, reset_s)
        if over:
            refused = min(over, key=lambda c: ("budget", "requests", "tokens").index(c.kind))
            raise LimitExceeded(
                refused.kind,
                _refusal(refused, record),
                retry_after_s=None if refused.kind == "budget" else math.ceil(reset_s),
                rates=rates,
            )
        return Admission(
            id=admission_id,
            key_id=record.id,
            window=window,
            reserved_tokens=reserve_tokens if record.tpm is not None else 0,
            reserved_nano=reserved_nano if record.budget_usd is not None else 0,
            counted_tokens=record.tpm is not None,
            counted_budget=record.budget_usd is not None,
            rates=rates,
        )

    async def settle(self, admission: Admission, *, tokens: int, cost_usd: float | None, model: str) -> None:
        """Replace the reservation by what the request used and add it to the key's and the model's spend.

        Runs once per admission (a second call does nothing), shielded from cancellation so a client that hangs
        up is still billed; never raises: a failure is logged, and the reservation then stays counted.
        `cost_usd` None (a model without a price) counts as 0.
        """
        if admission.settled:
            return
        admission.settled = True
        tokens = max(0, tokens)
        cost_nano = _nano(cost_usd or 0.0)
        writes: list[tuple[str, int]] = []
        if admission.counted_tokens and self._clock() < admission.window + WINDOW_S:
            # A window already over limits nothing any more: leave it to age out.
            writes.append(
                (self._rate_subject(admission.key_id, "tpm", admission.window), tokens - admission.reserved_tokens)
            )
        if admission.counted_budget:
            writes.append((self._budget_subject(admission.key_id), cost_nano - admission.reserved_nano))
        spent = f"{self._root}.spend.{admission.key_id}.m.{model_token(model)}"
        writes += [(f"{spent}.requests", 1), (f"{spent}.tokens", tokens), (f"{spent}.cost", cost_nano)]
        daily = f"{self._root}.spend.{admission.key_id}.d.{day_token(self._clock())}.{model_token(model)}"
        writes += [(f"{daily}.requests", 1), (f"{daily}.cost", cost_nano)]
        with anyio.CancelScope(shield=True):
            results = await self._add_all([w for w in writes if w[1]], admission.id, "s")
        if failed := [r for r in results if isinstance(r, Exception)]:
            logger.error("could not settle request %s of key %s: %s", admission.id, admission.key_id, failed[0])

    async def spend(self) -> dict[str, Any]:
        """Settled totals per key and per model (see `SpendReader.totals`), for `hfbus keys list` and the console.

        Raises:
            LimitsUnavailable: NATS did not answer within the deadline.
        """
        try:
            return await self.spending.totals()
        except SpendUnavailable as err:
            raise LimitsUnavailable(str(err)) from err

    async def _add_all(self, increments: list[tuple[str, int]], admission_id: str, stage: str) -> list[int | Exception]:
        """Every (subject, delta) at once; each slot holds the new total or the failure, so one failure loses none
        of the others. Message ids derive from the admission, so a retried increment counts once."""
        results: list[int | Exception] = [0] * len(increments)

        async def add(index: int, subject: str, delta: int) -> None:
            counters = self._spend if subject.startswith(f"{self._root}.spend.") else self._rates
            try:
                results[index] = await counters.add(subject, delta, msg_id=f"{admission_id}.{stage}{index}")
            except (CountersUnavailable, NatsError) as err:  # handed back in the slot, reported by the caller
                results[index] = err

        # `gather`, not a task group: anyio's spawn per increment cost more than the increment (each `add` keeps
        # its own failure, so nothing is left to cancel).
        await asyncio.gather(*(add(index, subject, delta) for index, (subject, delta) in enumerate(increments)))
        return results

    async def _take_back(self, counts: list[_Count], totals: list[int | Exception], admission_id: str) -> None:
        undo = [(c.subject, -c.delta) for c, t in zip(counts, totals, strict=True) if isinstance(t, int) and c.delta]
        results = await self._add_all(undo, admission_id, "u")
        if any(isinstance(r, Exception) for r in results):
            logger.error("could not take back a refused request's counts (%s); they stay counted", admission_id)

    def _rate_subject(self, key_id: str, what: str, window: int) -> str:
        return f"{self._root}.rate.{key_id}.{what}.{window}"

    def _budget_subject(self, key_id: str) -> str:
        return f"{self._root}.spend.{key_id}.budget"


def _rate_state(counts: list[_Count], totals: list[int | Exception], reset_s: float) -> RateState:
    values: dict[str, Any] = {}
    for count, total in zip(counts, totals, strict=True):
        if count.kind != "budget" and isinstance(total, int):
            values[f"limit_{count.kind}"] = count.limit
            values[f"remaining_{count.kind}"] = max(0, count.limit - total)
            values[f"reset_{count.kind}_s"] = reset_s
    return RateState(**values)


def _refusal(count: _Count, record: KeyRecord) -> str:
    if count.kind == "budget":
        return f"key {record.name!r} has used its budget of ${record.budget_usd:g}"
    per = "requests" if count.kind == "requests" else "tokens"
    return f"key {record.name!r} is over its limit of {count.limit} {per} per minute"


def _nano(usd: float) -> int:
    return max(0, round(usd * NANO)) if math.isfinite(usd) else 0
