"""Limits held in NATS: exact across gateway instances on separate connections, reservations settled by usage.

Every limiter here reads one fixed clock, so all admits of a test fall in one window whenever the test runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import anyio
import pytest
from nats.aio.client import Client as NATS

from services.bus.natsserver import NatsServer
from services.gateway.access.keys import KeyRecord, KeyStore
from services.gateway.access.limits import Admission, Limiter, LimitExceeded, LimitsUnavailable, ModelNotAllowed
from services.settings import Settings

pytestmark = pytest.mark.integration

NOW = 1_800_000_030.0
"""30 s into a window: its reset is 30 s away."""
MODEL = "meta-llama/Llama-3.1-8B-Instruct"


@pytest.fixture
def gw_settings(nats_server: NatsServer, prefix: str) -> Settings:
    return Settings(nats_url=nats_server.url, prefix=prefix)


@pytest.fixture
async def connections(nats_server: NatsServer) -> AsyncIterator[list[NATS]]:
    """Two connections: two gateway instances."""
    opened = []
    for _ in range(2):
        connection = NATS()
        await connection.connect(nats_server.url)
        opened.append(connection)
    yield opened
    for connection in opened:
        await connection.close()


@pytest.fixture
async def instances(connections: list[NATS], gw_settings: Settings) -> list[tuple[KeyStore, Limiter]]:
    made = []
    for connection in connections:
        keys = await KeyStore.open(connection, gw_settings)
        limiter = Limiter(connection, gw_settings, keys, clock=lambda: NOW)
        await limiter.ensure_streams()
        made.append((keys, limiter))
    return made


async def new_key(keys: KeyStore, **limits: object) -> KeyRecord:
    record = await keys.lookup(await keys.create("k", **limits))  # type: ignore[arg-type]
    assert record is not None
    return record


async def admit(limiter: Limiter, record: KeyRecord, tokens: int = 0, usd: float = 0.0) -> Admission:
    return await limiter.admit(record, model=MODEL, reserve_tokens=tokens, reserve_usd=usd)


async def test_two_instances_sharing_a_key_admit_exactly_its_rpm(instances: list[tuple[KeyStore, Limiter]]) -> None:
    record = await new_key(instances[0][0], rpm=10)
    admitted: list[Admission] = []
    refused: list[LimitExceeded] = []

    async def one(limiter: Limiter) -> None:
        try:
            admitted.append(await admit(limiter, record))
        except LimitExceeded as err:
            refused.append(err)

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            for index in range(30):
                tg.start_soon(one, instances[index % 2][1])

    assert len(admitted) == 10 and len(refused) == 20
    assert sorted(a.rates.remaining_requests or 0 for a in admitted) == list(range(10))
    assert {(e.kind, e.retry_after_s) for e in refused} == {("requests", 30)}
    assert refused[0].headers() == {
        "x-ratelimit-limit-requests": "10",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "30s",
    }
    assert "k" in str(refused[0]) and record.key_hash not in str(refused[0])


async def test_tokens_per_minute_count_reservations_until_settled_with_actual_usage(
    instances: list[tuple[KeyStore, Limiter]],
) -> None:
    (_, first), (_, second) = instances
    record = await new_key(instances[0][0], tpm=100)

    held = await admit(first, record, tokens=60)
    assert held.headers()["x-ratelimit-remaining-tokens"] == "40"
    with pytest.raises(LimitExceeded) as over:
        await admit(second, record, tokens=60)
    assert (over.value.kind, over.value.retry_after_s) == ("tokens", 30)

    await first.settle(held, tokens=15, cost_usd=None, model=MODEL)
    # The refused reservation was taken back and the settled one shrank to its usage: 15 + 60 fits in 100.
    after = await admit(second, record, tokens=60)
    assert after.headers()["x-ratelimit-remaining-tokens"] == "25"


async def test_a_request_larger_than_the_whole_tpm_is_refused_with_no_retry(
    instances: list[tuple[KeyStore, Limiter]],
) -> None:
    record = await new_key(instances[0][0], tpm=100)

    with pytest.raises(LimitExceeded) as over:
        await admit(instances[0][1], record, tokens=101)

    assert (over.value.kind, over.value.retry_after_s) == ("tokens", None)


async def test_a_budget_admits_against_spent_plus_reserved_and_settles_by_cost(
    instances: list[tuple[KeyStore, Limiter]],
) -> None:
    (_, first), (_, second) = instances
    record = await new_key(instances[0][0], budget_usd=1.0)

    held = await admit(first, record, usd=0.6)
    with pytest.raises(LimitExceeded) as over:
        await admit(second, record, usd=0.6)
    assert (over.value.kind, over.value.retry_after_s) == ("budget", None)

    await first.settle(held, tokens=100, cost_usd=0.1, model=MODEL)
    await admit(second, record, usd=0.6)  # 0.1 spent + 0.6 reserved
    await admit(first, record, usd=0.3)  # exactly the budget
    with pytest.raises(LimitExceeded):
        await admit(second, record, usd=0.000001)


async def test_the_budget_wins_over_a_rate_limit_when_both_refuse(instances: list[tuple[KeyStore, Limiter]]) -> None:
    record = await new_key(instances[0][0], rpm=1, budget_usd=0.5)
    await admit(instances[0][1], record, usd=0.5)

    with pytest.raises(LimitExceeded) as over:
        await admit(instances[1][1], record, usd=0.1)

    assert over.value.kind == "budget"


async def test_settle_counts_once_and_spend_is_reported_per_key_and_model(
    instances: list[tuple[KeyStore, Limiter]],
) -> None:
    (keys, first), (_, second) = instances
    record = await new_key(keys, rpm=100, tpm=10_000, budget_usd=5.0)
    other = "Qwen/Qwen3-8B:fastest"

    one = await admit(first, record, tokens=500, usd=0.5)
    await first.settle(one, tokens=120, cost_usd=0.25, model=MODEL)
    await first.settle(one, tokens=120, cost_usd=0.25, model=MODEL)
    two = await second.admit(record, model=other, reserve_tokens=500, reserve_usd=0.5)
    await second.settle(two, tokens=30, cost_usd=None, model=other)
    unlimited = await new_key_named(keys, "free")
    await second.settle(await admit(second, unlimited), tokens=7, cost_usd=0.001, model=MODEL)

    spend = await first.spend()

    mine = spend["keys"][record.id]
    assert (mine["name"], mine["requests"], mine["tokens"], mine["cost_usd"]) == ("k", 2, 150, pytest.approx(0.25))
    assert mine["models"][other] == {"requests": 1, "tokens": 30, "cost_usd": 0.0}
    assert spend["keys"][unlimited.id]["tokens"] == 7
    assert spend["models"][MODEL] == {"requests": 2, "tokens": 127, "cost_usd": pytest.approx(0.251)}
    # What was settled is what the budget holds now: 5 - 0.25 = 4.75 can still be reserved, not a cent more.
    await admit(first, record, usd=4.75)
    with pytest.raises(LimitExceeded):
        await admit(first, record, usd=0.01)


async def new_key_named(keys: KeyStore, name: str) -> KeyRecord:
    record = await keys.lookup(await keys.create(name))
    assert record is not None
    return record


async def test_a_key_limited_to_some_models_is_refused_others_before_anything_is_counted(
    instances: list[tuple[KeyStore, Limiter]],
) -> None:
    record = await new_key(instances[0][0], rpm=1, models=[MODEL])

    with pytest.raises(ModelNotAllowed):
        await instances[0][1].admit(record, model="Qwen/Qwen3-8B", reserve_tokens=1, reserve_usd=0.0)
    await admit(instances[0][1], record)


async def test_a_cancelled_caller_still_settles_so_a_client_that_hangs_up_is_billed(
    instances: list[tuple[KeyStore, Limiter]],
) -> None:
    keys, limiter = instances[0]
    record = await new_key(keys, tpm=1000)
    admission = await admit(limiter, record, tokens=500)

    with anyio.CancelScope() as hung_up:
        hung_up.cancel()
        await limiter.settle(admission, tokens=40, cost_usd=0.002, model=MODEL)

    assert (await limiter.spend())["keys"][record.id]["tokens"] == 40
    assert (await admit(limiter, record, tokens=960)).rates.remaining_tokens == 0


async def test_without_nats_streams_admit_fails_within_its_deadline_and_settle_only_logs(
    instances: list[tuple[KeyStore, Limiter]], nc: NATS, gw_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    keys, limiter = instances[0]
    record = await new_key(keys, rpm=5, budget_usd=1.0)
    admission = await admit(limiter, record, usd=0.5)
    # Another prefix's limiter whose streams were never made: every increment goes unanswered.
    elsewhere = Limiter(nc, replace(gw_settings, prefix=gw_settings.prefix + "x"), keys, deadline_s=0.3)

    with anyio.fail_after(10):
        with pytest.raises(LimitsUnavailable):
            await elsewhere.admit(record, model=MODEL, reserve_tokens=0, reserve_usd=0.1)
        await elsewhere.settle(admission, tokens=1, cost_usd=0.1, model=MODEL)

    assert admission.settled
    assert any("could not settle" in r.getMessage() for r in caplog.records)


async def test_a_request_settled_after_its_window_ended_is_billed_without_touching_the_new_window(
    nc: NATS, gw_settings: Settings
) -> None:
    now = [NOW]
    keys = await KeyStore.open(nc, gw_settings)
    limiter = Limiter(nc, gw_settings, keys, clock=lambda: now[0])
    await limiter.ensure_streams()
    record = await new_key(keys, tpm=100)
    admission = await admit(limiter, record, tokens=100)

    now[0] += 60  # the next window
    await limiter.settle(admission, tokens=90, cost_usd=0.0, model=MODEL)

    assert (await admit(limiter, record, tokens=100)).rates.remaining_tokens == 0
    assert (await limiter.spend())["keys"][record.id]["tokens"] == 90


async def test_spend_is_also_counted_per_utc_day_for_the_console_chart(
    instances: list[tuple[KeyStore, Limiter]],
) -> None:
    keys, limiter = instances[0]
    record = await new_key(keys)
    await limiter.settle(await admit(limiter, record), tokens=10, cost_usd=0.5, model=MODEL)
    await limiter.settle(await admit(limiter, record), tokens=10, cost_usd=0.25, model="other/model")

    daily = await limiter.spending.daily(3, now=NOW)

    today = datetime.fromtimestamp(NOW, UTC).date()
    assert daily["days"] == [(today - timedelta(days=d)).isoformat() for d in (2, 1, 0)]
    mine = daily["keys"][record.id]
    assert mine["name"] == "k" and set(mine["days"]) == {today.isoformat()}
    assert mine["days"][today.isoformat()] == {"requests": 2, "cost_usd": pytest.approx(0.75)}
    assert daily["models"]["other/model"]["days"][today.isoformat()]["cost_usd"] == pytest.approx(0.25)
    assert (await limiter.spending.daily(3, now=NOW + 3 * 86400))["keys"] == {}
