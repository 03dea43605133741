"""Virtual keys in NATS KV: shown once, stored only as a hash, one live key per name, revocation that sticks."""

from __future__ import annotations

import re

import anyio
import msgspec
import pytest
from nats.aio.client import Client as NATS

from services.bus.natsserver import NatsServer
from services.gateway.access.keys import DuplicateKeyName, KeyRecord, KeyStore, KeyStoreError, bucket_name, hash_key
from services.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def gw_settings(nats_server: NatsServer, prefix: str) -> Settings:
    return Settings(nats_url=nats_server.url, prefix=prefix)


@pytest.fixture
async def store(nc: NATS, gw_settings: Settings) -> KeyStore:
    return await KeyStore.open(nc, gw_settings)


async def stored_bytes(nc: NATS, settings: Settings) -> bytes:
    """Every message the bucket's stream holds, history included."""
    js = nc.jetstream()
    stream = f"KV_{bucket_name(settings)}"
    info = await js.stream_info(stream)
    found = b""
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg(stream, seq)
        found += (msg.subject or "").encode() + (msg.data or b"")
    return found


async def test_a_new_key_is_returned_once_and_only_its_hash_is_stored(
    store: KeyStore, nc: NATS, gw_settings: Settings
) -> None:
    key = await store.create("team-a", rpm=10, tpm=1000, budget_usd=2.5, models=["llama"])

    assert re.fullmatch(r"hfb-[A-Za-z0-9_-]{43}", key)
    record = await store.lookup(key)
    assert record is not None
    assert (record.name, record.rpm, record.tpm, record.budget_usd, record.models) == (
        "team-a",
        10,
        1000,
        2.5,
        ["llama"],
    )
    assert record.key_hash == hash_key(key) and not record.revoked and record.last_used is None
    assert key.encode() not in await stored_bytes(nc, gw_settings)
    assert key not in repr(record) and key not in msgspec.json.encode(record).decode()


async def test_unknown_malformed_and_revoked_keys_are_not_found(store: KeyStore) -> None:
    key = await store.create("team-b")

    assert await store.lookup("hfb-" + "x" * 43) is None
    assert await store.lookup("not a key") is None
    assert await store.lookup(key[:-1]) is None
    assert await store.revoke("team-b") is True
    assert await store.lookup(key) is None
    assert await store.revoke("team-b") is False
    assert await store.revoke("nobody") is False


async def test_a_live_name_is_refused_and_a_revoked_one_can_be_reused(store: KeyStore) -> None:
    first = await store.create("team-c", rpm=1)
    with pytest.raises(DuplicateKeyName) as refused:
        await store.create("team-c")
    assert "team-c" in str(refused.value) and first not in str(refused.value)

    await store.revoke("team-c")
    second = await store.create("team-c", rpm=2)

    assert await store.lookup(first) is None
    renewed = await store.lookup(second)
    assert renewed is not None and renewed.rpm == 2
    listed = await store.list()
    assert sorted((r.name, r.rpm, r.revoked) for r in listed) == [("team-c", 1, True), ("team-c", 2, False)]


async def test_concurrent_creates_of_one_name_make_exactly_one_key(
    nats_server: NatsServer, gw_settings: Settings
) -> None:
    outcomes: list[str | Exception] = []
    connections = [NATS() for _ in range(2)]
    for connection in connections:
        await connection.connect(nats_server.url)
    try:
        stores = [await KeyStore.open(connection, gw_settings) for connection in connections]

        async def create(store: KeyStore) -> None:
            try:
                outcomes.append(await store.create("shared"))
            except DuplicateKeyName as err:
                outcomes.append(err)

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                for index in range(6):
                    tg.start_soon(create, stores[index % 2])
        live = [await stores[0].lookup(o) for o in outcomes if isinstance(o, str)]
    finally:
        for connection in connections:
            await connection.close()

    assert len(live) == 1 and live[0] is not None
    assert sum(isinstance(o, DuplicateKeyName) for o in outcomes) == 5


async def test_touch_records_last_use_at_most_once_per_interval_and_never_revives_a_key(
    store: KeyStore, nc: NATS, gw_settings: Settings
) -> None:
    key = await store.create("team-d")
    record = await store.lookup(key)
    assert record is not None
    kv = await nc.jetstream().key_value(bucket_name(gw_settings))

    async def revision() -> int:
        return (await kv.get(f"k.{record.key_hash}")).revision or 0

    await store.touch(record)
    touched = await store.lookup(key)
    assert touched is not None and touched.last_used is not None
    after_first = await revision()
    await store.touch(touched)
    assert await revision() == after_first

    await store.revoke("team-d")
    other_process = await KeyStore.open(nc, gw_settings)  # its own once-per-interval memory, the same bucket
    await other_process.touch(touched)

    (kept,) = await store.list()
    assert kept.revoked and await store.lookup(key) is None


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("", {}),
        ("has space", {}),
        ("-dash-first", {}),
        ("ok", {"rpm": 0}),
        ("ok", {"tpm": -1}),
        ("ok", {"budget_usd": -0.01}),
        ("ok", {"budget_usd": float("nan")}),
        ("ok", {"models": []}),
        ("ok", {"models": [" "]}),
    ],
)
async def test_bad_names_and_limits_are_refused_before_anything_is_stored(
    store: KeyStore, name: str, options: dict[str, object]
) -> None:
    with pytest.raises(KeyStoreError):
        await store.create(name, **options)  # type: ignore[arg-type]
    assert await store.list() == []


def test_a_key_may_use_its_models_with_any_routing_suffix() -> None:
    record = KeyRecord(name="n", id="i", key_hash="h", created=0, models=["meta-llama/Llama-3.1-8B-Instruct"])

    assert record.allows("meta-llama/Llama-3.1-8B-Instruct")
    assert record.allows("meta-llama/Llama-3.1-8B-Instruct:fastest")
    assert not record.allows("Qwen/Qwen3-8B")
    assert KeyRecord(name="n", id="i", key_hash="h", created=0).allows("anything")
