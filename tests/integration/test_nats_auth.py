"""NATS security: consumers serve a chat behind every kind of nats-server authentication, and refuse clearly.

Each test starts its own nats-server demanding one kind of credential (user/password, token, nkey, creds file
with an operator JWT chain, mutual TLS). The right credential serves a chat end to end; a wrong or missing one
fails `services.bus.connection.connect` at once with an error naming the server and the kind of credential,
and no secret shows in that error, its traceback or the logs. The last test runs the example permissions of
docs/nats-permissions.conf as operators will copy them.
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import socket
import ssl
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import anyio
import openai
import pytest

from schemas import ChatResult, Tag
from schemas.media import MediaResult
from services.bus import natsserver
from services.bus.connection import connect
from services.client import HfBus
from services.dev.fake_router import FakeRouter, expected_text
from services.gateway.access.keys import KeyStore
from services.gateway.app import serve
from services.settings import Mode, NatsAuth, Secret, Settings
from tests.conftest import eventually, running
from tests.integration import certs

pytestmark = pytest.mark.integration

PERMISSIONS = Path(__file__).resolve().parents[2] / "docs" / "nats-permissions.conf"
REFUSAL_WITHIN = 15.0
"""Refusals come at once; only a refused client certificate may need a few attempts (see `_tls`)."""


def q(value: str | Path) -> str:
    """A double-quoted nats-server config string (JSON quoting is valid there)."""
    return json.dumps(str(value))


@dataclass(frozen=True)
class Recipe:
    """How to secure a nats-server with one kind of credential, the right credential, and ways to get it wrong."""

    config: str
    """nats-server config text demanding the credential."""
    right: NatsAuth
    publisher: dict[str, Any]
    """The right credential as nats-py connect options, for the HfBus publisher."""
    wrong: dict[str, NatsAuth]
    secrets: list[str]
    """Every secret string of the recipe, right and wrong ones: none may appear in an error or a log line."""


@dataclass(frozen=True)
class Secured:
    """A running nats-server built from a recipe."""

    kind: str
    server: natsserver.NatsServer
    recipe: Recipe


def _user_password(tmp: Path) -> Recipe:
    password, guess = "pw-" + secrets.token_urlsafe(18), "pw-" + secrets.token_urlsafe(18)
    config = f"authorization {{ user: hfbus, password: {q(password)} }}\n"
    right = NatsAuth(user="hfbus", password=Secret(password))
    wrong = {
        "wrong password": NatsAuth(user="hfbus", password=Secret(guess)),
        "missing": NatsAuth(),
    }
    return Recipe(config, right, {"user": "hfbus", "password": password}, wrong, [password, guess])


def _token(tmp: Path) -> Recipe:
    token, guess = "tk-" + secrets.token_urlsafe(24), "tk-" + secrets.token_urlsafe(24)
    config = f"authorization {{ token: {q(token)} }}\n"
    wrong = {"wrong token": NatsAuth(token=Secret(guess)), "missing": NatsAuth()}
    return Recipe(config, NatsAuth(token=Secret(token)), {"token": token}, wrong, [token, guess])


def _nkey(tmp: Path) -> Recipe:
    user, stranger = certs.new_nkey(certs.USER), certs.new_nkey(certs.USER)
    seed_file = str(certs.write_seed(tmp / "user.nk", user))
    config = f"authorization {{ users = [ {{ nkey: {q(user.public)} }} ] }}\n"
    wrong = {
        "unknown nkey": NatsAuth(nkey_seed_file=str(certs.write_seed(tmp / "stranger.nk", stranger))),
        "missing": NatsAuth(),
    }
    right = NatsAuth(nkey_seed_file=seed_file)
    return Recipe(config, right, {"nkeys_seed": seed_file}, wrong, [user.seed, stranger.seed])


def _creds(tmp: Path) -> Recipe:
    """Decentralized auth: the server trusts an operator; accounts come from a MEMORY resolver."""
    operator, system, account = (
        certs.new_nkey(certs.OPERATOR),
        certs.new_nkey(certs.ACCOUNT),
        certs.new_nkey(certs.ACCOUNT),
    )
    user, stranger, rogue_account = (
        certs.new_nkey(certs.USER),
        certs.new_nkey(certs.USER),
        certs.new_nkey(certs.ACCOUNT),
    )
    preload = {
        account.public: certs.account_jwt(operator, account),
        system.public: certs.system_account_jwt(operator, system),  # JetStream needs one in operator mode
    }
    config = (
        f"operator: {q(certs.operator_jwt(operator))}\n"
        f"system_account: {q(system.public)}\n"
        "resolver: MEMORY\n"
        f"resolver_preload: {{ {', '.join(f'{key}: {q(jwt)}' for key, jwt in preload.items())} }}\n"
    )
    creds_file = str(certs.write_creds(tmp / "user.creds", certs.user_jwt(account, user), user))
    # Well-formed, but signed by an account the operator never issued.
    rogue = certs.write_creds(tmp / "rogue.creds", certs.user_jwt(rogue_account, stranger), stranger)
    wrong = {"unknown account": NatsAuth(creds_file=str(rogue)), "missing": NatsAuth()}
    right = NatsAuth(creds_file=creds_file)
    return Recipe(config, right, {"user_credentials": creds_file}, wrong, [user.seed, stranger.seed])


def _tls(tmp: Path) -> Recipe:
    """Mutual TLS: the server's certificate is checked against the test CA, and it checks the client's."""
    tls, other = certs.make_tls(tmp / "tls"), certs.make_tls(tmp / "other-ca")
    config = (
        f"tls {{ cert_file: {q(tls.server_cert)}, key_file: {q(tls.server_key)}, ca_file: {q(tls.ca)},"
        " verify: true, timeout: 2 }\n"
    )
    right = NatsAuth(tls_ca=str(tls.ca), tls_cert=str(tls.client_cert), tls_key=str(tls.client_key))
    context = ssl.create_default_context(cafile=str(tls.ca))
    context.load_cert_chain(str(tls.client_cert), str(tls.client_key))
    wrong = {
        "missing": NatsAuth(),  # the system CAs do not know the test CA
        "no client certificate": NatsAuth(tls_ca=str(tls.ca)),
        # TLS 1.3 refuses a client certificate after the handshake: the refusal is an alert or a reset
        # connection, whichever the client reads first, so this one may need a few attempts.
        "client certificate of another CA": replace(
            right, tls_cert=str(other.client_cert), tls_key=str(other.client_key)
        ),
    }
    key_lines = [
        line
        for path in (tls.client_key, other.client_key)
        for line in path.read_text().splitlines()
        if "---" not in line
    ]
    return Recipe(config, right, {"tls": context}, wrong, key_lines)


KINDS = {"user/password": _user_password, "token": _token, "nkey": _nkey, "creds": _creds, "tls": _tls}
WRONG = [
    ("user/password", "wrong password"),
    ("user/password", "missing"),
    ("token", "wrong token"),
    ("token", "missing"),
    ("nkey", "unknown nkey"),
    ("nkey", "missing"),
    ("creds", "unknown account"),
    ("creds", "missing"),
    ("tls", "missing"),
    ("tls", "no client certificate"),
    ("tls", "client certificate of another CA"),
]


@pytest.fixture
def secured(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Secured]:
    """A nats-server of its own, demanding the credential kind the test is parametrized with."""
    kind: str = request.param
    recipe = KINDS[kind](tmp_path)
    server = natsserver.start(tmp_path / "server", config=recipe.config)
    try:
        yield Secured(kind, server, recipe)
    finally:
        server.stop()


def _assert_no_secret(secured: Secured, *texts: str) -> None:
    for secret in secured.recipe.secrets:
        for text in texts:
            assert secret not in text


@pytest.mark.parametrize("secured", list(KINDS), indirect=True)
async def test_consumers_serve_a_chat_with_the_right_credential(
    secured: Secured, settings: Settings, router: FakeRouter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url, recipe = secured.server.url, secured.recipe
    settings = replace(settings, nats_url=url, nats_auth=recipe.right)
    async with (
        running(settings),
        HfBus.connect(url, prefix=settings.prefix, allow_reconnect=False, **recipe.publisher) as bus,
    ):
        with anyio.fail_after(10):
            result = await bus.chat("hello over a secured bus", model="org/model", max_tokens=8).result()

    assert isinstance(result, ChatResult)
    assert result.text == expected_text([{"role": "user", "content": "hello over a secured bus"}], 8)
    _assert_no_secret(secured, caplog.text)


@pytest.mark.parametrize(("secured", "case"), WRONG, indirect=["secured"], ids=[f"{k}-{c}" for k, c in WRONG])
async def test_a_wrong_or_missing_credential_fails_clearly_without_the_secret(
    secured: Secured,
    case: str,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = replace(
        settings,
        nats_url=secured.server.url,
        nats_auth=secured.recipe.wrong[case],
        connect_timeout_s=REFUSAL_WITHIN - 5,
    )
    with anyio.fail_after(REFUSAL_WITHIN), pytest.raises((PermissionError, ConnectionError)) as caught:
        await connect(settings)

    text = str(caught.value)
    assert secured.server.url in text
    if secured.kind == "tls":
        assert isinstance(caught.value, ConnectionError) and "TLS" in text
        expected_hint = "NATS_TLS_CA" if case == "missing" else "NATS_TLS_CERT"
        assert expected_hint in text
    else:
        assert isinstance(caught.value, PermissionError) and "refused the credentials" in text
        assert ("no credentials configured" if case == "missing" else "offered") in text
    captured = capsys.readouterr()
    everything = "".join(traceback.format_exception(caught.value)) + caplog.text + captured.out + captured.err
    _assert_no_secret(secured, everything)


# ------------------------------------------------------------------------------------ example permissions


@dataclass
class PermissionsServer:
    server: natsserver.NatsServer
    publisher_password: str
    consumer_password: str
    gateway_password: str


@pytest.fixture
def permissions_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PermissionsServer]:
    """A nats-server whose authorization is exactly docs/nats-permissions.conf (included, byte for byte)."""
    publisher_password, consumer_password = "1D" + secrets.token_urlsafe(18), "2E" + secrets.token_urlsafe(18)
    # The example takes its passwords from the server's environment, double-quoted as its comment says (a bare
    # value is parsed as config text: one starting with a digit would be read as a number).
    monkeypatch.setenv("HFBUS_PUBLISHER_PASSWORD", json.dumps(publisher_password))
    monkeypatch.setenv("HFBUS_CONSUMER_PASSWORD", json.dumps(consumer_password))
    for tenant in ("ALICE", "BOB"):  # the example's tenants (tests/integration/test_tenants.py)
        monkeypatch.setenv(f"HFBUS_{tenant}_PASSWORD", json.dumps(secrets.token_urlsafe(18)))
    gateway_password = "3F" + secrets.token_urlsafe(18)
    monkeypatch.setenv("HFBUS_GATEWAY_PASSWORD", json.dumps(gateway_password))
    store = tmp_path / "server"
    store.mkdir()
    # An include resolves relative to the including file, so the example sits beside the generated config.
    shutil.copyfile(PERMISSIONS, store / PERMISSIONS.name)
    server = natsserver.start(store, config=f"include {q(PERMISSIONS.name)}\n")
    try:
        yield PermissionsServer(server, publisher_password, consumer_password, gateway_password)
    finally:
        server.stop()


@pytest.mark.parametrize("mode", ["durable", "core"])
async def test_the_example_permissions_serve_requests_and_keep_publishers_off_the_work_queue(
    mode: Mode,
    permissions_server: PermissionsServer,
    settings: Settings,
    router: FakeRouter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    url = permissions_server.server.url
    settings = replace(
        settings,
        nats_url=url,
        nats_auth=NatsAuth(user="consumer", password=Secret(permissions_server.consumer_password)),
        mode=mode,
        prefix="ai",  # the example is written for the default prefix, stream and bucket
        inline_media_bytes=0,  # every media result goes through the object store
    )
    refusals: list[str] = []

    async def on_error(exc: Exception) -> None:
        refusals.append(str(exc).lower())  # nats-py lowercases the server's -ERR text

    publisher: dict[str, Any] = {
        "user": "publisher",
        "password": permissions_server.publisher_password,
        "error_cb": on_error,
    }
    router.job_polls = 1
    async with running(settings) as app, HfBus.connect(url, prefix="ai", allow_reconnect=False, **publisher) as bus:
        assert bus.mode == mode, "in durable mode the publisher sees the work-queue stream"

        # The publisher may not take requests: neither pull from a durable consumer nor subscribe to a request subject.
        nc = bus.nc
        await nc.publish(f"$JS.API.CONSUMER.MSG.NEXT.HFBUS.hfbus-{Tag.CHAT}", b'{"batch":1}', reply=nc.new_inbox())
        await nc.subscribe(f"ai.{Tag.CHAT}")
        await nc.flush(timeout=5)
        await eventually(lambda: len(refusals) >= 2)
        assert any(
            "permissions violation for publish" in r and "$js.api.consumer.msg.next.hfbus" in r for r in refusals
        )
        assert any("permissions violation for subscription" in r and f'"ai.{Tag.CHAT}"' in r for r in refusals)

        # ... while the consumer takes a durable chat it published, and a media result reaches it via the object store.
        with anyio.fail_after(30):
            chat = await bus.chat("permitted", model="org/model", max_tokens=8).result()
            image = await bus.image("a permitted lighthouse", model="black-forest-labs/FLUX.1-dev").result()
            data = await bus.download(image.media[0])

    assert chat.text == expected_text([{"role": "user", "content": "permitted"}], 8)
    assert app.runners[Tag.CHAT].counters.handled >= 1
    assert app.defaults.available, "the consumer may watch the per-tag defaults the console sets"
    assert isinstance(image, MediaResult) and image.media[0].bucket == settings.media_bucket and data
    assert "Permissions Violation" not in caplog.text and "permissions violation" not in caplog.text
    assert "no JetStream object store" not in caplog.text
    assert len(refusals) == 2, refusals
    for password in (permissions_server.publisher_password, permissions_server.consumer_password):
        assert password not in caplog.text and not any(password.lower() in r for r in refusals)


async def test_an_unreachable_server_fails_after_the_connect_timeout_instead_of_waiting_forever(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:  # a port nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"nats://hfbus:pw-unreachable@127.0.0.1:{port}"
    settings = replace(settings, nats_url=url, connect_timeout_s=1.0)
    with anyio.fail_after(5), pytest.raises(TimeoutError) as caught:
        await connect(settings)

    assert f"nats://127.0.0.1:{port} within 1s" in str(caught.value)
    assert "cannot connect to NATS" in caplog.text, "each failed attempt is logged"
    assert "pw-unreachable" not in str(caught.value) + caplog.text


async def test_the_gateway_runs_with_the_example_permissions_of_its_own_user(
    permissions_server: PermissionsServer, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = permissions_server.server.url
    consumer = replace(
        settings,
        nats_url=url,
        nats_auth=NatsAuth(user="consumer", password=Secret(permissions_server.consumer_password)),
        mode="durable",
        prefix="ai",
    )
    gateway_settings = replace(
        consumer,
        nats_auth=NatsAuth(user="gateway", password=Secret(permissions_server.gateway_password)),
        gateway_addr="127.0.0.1:0",
    )
    async with running(consumer), anyio.create_task_group() as tg:
        base = await tg.start(serve, gateway_settings)
        nc = await connect(gateway_settings, name="keys")
        try:
            key = await (await KeyStore.open(nc, gateway_settings)).create("permitted", rpm=100, budget_usd=5.0)
        finally:
            await nc.close()
        client = openai.AsyncOpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=30)
        with anyio.fail_after(30):
            stream = await client.chat.completions.create(
                model="org/model", messages=[{"role": "user", "content": "permitted"}], stream=True, max_tokens=4
            )
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
            image = await client.images.generate(prompt="a lighthouse", model="flux.1-dev", response_format="url")
        await client.close()
        tg.cancel_scope.cancel()

    assert text == expected_text([{"role": "user", "content": "permitted"}], 4)
    assert image.data and image.data[0].url
    assert "permissions violation" not in caplog.text.lower()
    assert permissions_server.gateway_password not in caplog.text
