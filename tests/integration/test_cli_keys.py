"""`hfbus keys create|list|revoke` as a person (or a script) runs them: the key once on stdout, never again."""

from __future__ import annotations

import os
import sys
from dataclasses import replace

import anyio
import pytest
from nats.aio.client import Client as NATS

from services.bus.natsserver import NatsServer, free_ports
from services.gateway.access.keys import KeyStore
from services.gateway.access.limits import Limiter
from services.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def gw_settings(nats_server: NatsServer, prefix: str) -> Settings:
    return Settings(nats_url=nats_server.url, prefix=prefix)


async def hfbus(settings: Settings, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "NATS_URL": settings.nats_url, "HFBUS_PREFIX": settings.prefix, "HFBUS_CONNECT_TIMEOUT": "2"}
    with anyio.fail_after(30):
        done = await anyio.run_process([sys.executable, "-m", "services", "keys", *args], env=env, check=False)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def test_create_prints_the_key_last_and_it_works(gw_settings: Settings, nc: NATS) -> None:
    status, stdout, stderr = await hfbus(
        gw_settings, "create", "--name", "ci-bot", "--rpm", "10", "--budget-usd", "2.5", "--models", "a/b, c/d"
    )

    assert status == 0, stderr
    key = stdout.splitlines()[-1]
    assert key.startswith("hfb-") and key not in stderr and "ci-bot" in stderr
    record = await (await KeyStore.open(nc, gw_settings)).lookup(key)
    assert record is not None
    assert (record.name, record.rpm, record.tpm, record.budget_usd, record.models) == (
        "ci-bot",
        10,
        None,
        2.5,
        ["a/b", "c/d"],
    )


async def test_list_shows_limits_and_spend_but_never_the_key_or_its_hash(gw_settings: Settings, nc: NATS) -> None:
    store = await KeyStore.open(nc, gw_settings)
    key = await store.create("spender", tpm=5000)
    record = await store.lookup(key)
    assert record is not None
    limiter = Limiter(nc, gw_settings, store)
    await limiter.ensure_streams()
    admission = await limiter.admit(record, model="m", reserve_tokens=100, reserve_usd=0.01)
    await limiter.settle(admission, tokens=42, cost_usd=0.003, model="m")
    await store.touch(record)

    status, stdout, stderr = await hfbus(gw_settings, "list")

    assert status == 0, stderr
    header, row = stdout.splitlines()
    assert header.split()[:3] == ["NAME", "STATE", "RPM"]
    assert row.split()[:5] == ["spender", "live", "unlimited", "5000", "unlimited"]
    assert "$0.003000" in row and " 42 " in row and "never" not in row
    assert key not in stdout + stderr and record.key_hash not in stdout + stderr


async def test_list_with_no_keys_prints_the_header_only(gw_settings: Settings) -> None:
    status, stdout, _ = await hfbus(gw_settings, "list")

    assert status == 0
    assert stdout.split()[0] == "NAME" and len(stdout.splitlines()) == 1


async def test_revoke_ends_a_key_and_an_unknown_name_is_one_line_and_exit_1(gw_settings: Settings, nc: NATS) -> None:
    store = await KeyStore.open(nc, gw_settings)
    key = await store.create("leaving")

    status, _, stderr = await hfbus(gw_settings, "revoke", "leaving")
    assert status == 0, stderr
    assert await store.lookup(key) is None

    status, stdout, stderr = await hfbus(gw_settings, "revoke", "leaving")
    assert status == 1 and stdout == ""
    assert stderr.splitlines() == ["hfbus: no live key named 'leaving'"]


async def test_a_duplicate_name_or_bad_limit_is_one_line_and_exit_1(gw_settings: Settings, nc: NATS) -> None:
    await (await KeyStore.open(nc, gw_settings)).create("taken")

    for args in (["--name", "taken"], ["--name", "fresh", "--rpm", "0"]):
        status, stdout, stderr = await hfbus(gw_settings, "create", *args)
        assert status == 1 and stdout == ""
        assert len(stderr.splitlines()) == 1 and stderr.startswith("hfbus: ") and "Traceback" not in stderr


async def test_an_unreachable_nats_server_is_one_line_and_exit_1(gw_settings: Settings) -> None:
    (closed_port,) = free_ports(1)

    status, _, stderr = await hfbus(replace(gw_settings, nats_url=f"nats://127.0.0.1:{closed_port}"), "list")

    assert status == 1
    (line,) = stderr.splitlines()
    assert line.startswith("hfbus: ") and "NATS" in line
