"""The console's admin API: the admin key guards every route, and each screen's data is right."""

from __future__ import annotations

import time

import anyio
import pytest

from services.dev.fake_router import FakeRouter
from services.dev.fake_router.faults import Fault
from services.dev.fake_router.hub import ACCOUNT
from services.settings import Settings
from tests.conftest import HF_TOKEN
from tests.integration.console import ADMIN_KEY, ConsoleStack, console

pytestmark = pytest.mark.integration

ROUTES = [
    ("POST", "session"),
    ("GET", "status"),
    ("GET", "consumers"),
    ("GET", "models"),
    ("GET", "models/lookup?id=deepseek-ai/DeepSeek-R1"),
    ("PUT", "defaults/chat"),
    ("DELETE", "defaults/chat"),
    ("GET", "keys"),
    ("POST", "keys"),
    ("DELETE", "keys/anyone"),
    ("GET", "spend"),
    ("GET", "activity"),
    ("GET", "requests"),
    ("POST", "playground-key"),
]


async def wait_for(stack: ConsoleStack, path: str, check: object, *, within: float = 10.0) -> object:
    """GET `path` until `check(body)` holds; fail after `within` seconds."""
    with anyio.fail_after(within):
        while True:
            status, body = await stack.call("GET", path)
            if status == 200 and check(body):  # type: ignore[operator]
                return body
            await anyio.sleep(0.05)


async def test_every_admin_route_refuses_a_missing_or_wrong_key_without_echoing_it(settings: Settings) -> None:
    async with console(settings) as stack:
        for method, path in ROUTES:
            for key in (None, "wrong-key-but-long-enough", ADMIN_KEY + "x", ADMIN_KEY[:-1]):
                status, body = await stack.call(method, path, key=key)
                assert status == 401, (method, path, key)
                assert body["error"]["code"] == "invalid_admin_key"
                assert key is None or key not in str(body)
        status, _ = await stack.call("POST", "session")
        assert status == 200
        # A virtual key is not an admin key.
        status, _ = await stack.call("GET", "status", key=stack.gateways.key)
        assert status == 401


async def test_without_an_admin_key_the_console_is_off(settings: Settings) -> None:
    async with console(settings, admin_key=None) as stack:
        status, body = await stack.call("GET", "status", key="anything-at-all-here")
        async with stack.http.get(f"{stack.url}/console/") as page:
            html = await page.text()
            csp = page.headers["Content-Security-Policy"]

    assert status == 503 and body["error"]["code"] == "console_disabled"
    assert 'type="password"' in html and "Admin key" in html and "Sign in" in html
    assert "default-src 'self'" in csp and "unsafe-inline" not in csp


async def test_status_reports_the_token_account_nats_and_the_last_refusal(
    settings: Settings, router: FakeRouter
) -> None:
    async with console(settings) as stack:
        _, first = await stack.call("GET", "status")
        router.faults.append(Fault.status(401))
        _, refused = await stack.call("GET", "status?refresh=1")

    hf = first["huggingface"]
    assert hf["configured"] is True and hf["valid"] is True and hf["account"]["name"] == ACCOUNT
    assert first["nats"]["connected"] is True and first["nats"]["jetstream"] is True
    assert first["nats"]["server_version"].count(".") == 2 and first["nats"]["mode"] in ("core", "durable")
    assert refused["huggingface"]["valid"] is False
    assert refused["huggingface"]["last_refusals"]["unauthorized"]["source"] == "the Hub's whoami"
    assert HF_TOKEN not in str(first) + str(refused)


async def test_consumers_are_listed_with_their_tags_and_counters(settings: Settings) -> None:
    async with console(settings) as stack:
        client = stack.gateways.client()
        await client.chat.completions.create(model="deepseek-r1", messages=[{"role": "user", "content": "hi"}])
        body = await wait_for(
            stack, "consumers", lambda b: any(e["requests"] for c in b["consumers"] for e in c["endpoints"])
        )
        await client.close()

    (only,) = body["consumers"]  # type: ignore[index]
    assert "chat" in only["tags"] and only["mode"] == settings.mode
    chat = next(e for e in only["endpoints"] if e["tag"] == "chat")
    assert chat["requests"] == 1 and chat["errors"] == 0 and chat["in_flight"] == 0


async def test_a_strategy_set_in_the_console_reaches_the_consumer_and_the_upstream_model_string(
    settings: Settings, router: FakeRouter
) -> None:
    async with console(settings) as stack:
        status, saved = await stack.call("PUT", "defaults/chat", json={"strategy": "cheapest"})
        assert status == 200
        await wait_for(stack, "consumers", lambda b: b["consumers"][0]["defaults_revision"] >= saved["revision"])
        client = stack.gateways.client()
        await client.chat.completions.create(model="deepseek-r1", messages=[{"role": "user", "content": "hi"}])
        await client.close()
        _, models = await stack.call("GET", "models")
        refused = [
            await stack.call("PUT", "defaults/text2pic", json={"strategy": "fastest"}),
            await stack.call("PUT", "defaults/text2pic", json={"strategy": "no-such-provider"}),
            await stack.call("PUT", "defaults/chat", json={"model": "deepseek-r1:groq"}),
            await stack.call("PUT", "defaults/chat", json={"model": "no-such-model"}),
            await stack.call("PUT", "defaults/nosuchtag", json={}),
        ]

    assert router.requests[-1].json()["model"] == "deepseek-ai/DeepSeek-R1:cheapest"
    chat = next(t for t in models["tags"] if t["tag"] == "chat")
    assert chat["strategy"] == "cheapest" and chat["revision"] == saved["revision"]
    assert [status for status, _ in refused] == [400, 400, 400, 400, 404]


async def test_a_model_lookup_shows_the_hub_mapping_and_the_catalog_price(settings: Settings) -> None:
    async with console(settings) as stack:
        _, found = await stack.call("GET", "models/lookup?id=black-forest-labs/FLUX.1-dev")
        missing, _ = await stack.call("GET", "models/lookup?id=nobody/nothing")
        malformed, _ = await stack.call("GET", "models/lookup?id=not-an-id")

    by_provider = {p["provider"]: p for p in found["providers"]}
    assert by_provider["fal-ai"] == {
        "provider": "fal-ai",
        "provider_model": "fal-ai/flux/dev",
        "task": "text-to-image",
        "status": "live",
        "adapter": True,
    }
    assert by_provider["nscale"]["status"] == "staging"
    assert found["catalog"][0]["prices"]["per_image"] is not None
    assert (missing, malformed) == (404, 400)


async def test_a_key_is_shown_once_listed_without_secrets_and_revoked(settings: Settings) -> None:
    async with console(settings) as stack:
        status, made = await stack.call("POST", "keys", json={"name": "team-x", "rpm": 5, "budget_usd": 1.5})
        duplicate, _ = await stack.call("POST", "keys", json={"name": "team-x"})
        bad, _ = await stack.call("POST", "keys", json={"name": "bad name!"})
        _, listed = await stack.call("GET", "keys")
        revoked, _ = await stack.call("DELETE", "keys/team-x")
        again, _ = await stack.call("DELETE", "keys/team-x")
        client = stack.gateways.client(key=made["key"])
        with pytest.raises(Exception, match="401"):
            await client.models.list()
        await client.close()
        _, after = await stack.call("GET", "keys")

    assert status == 201 and made["key"].startswith("hfb-")
    assert (duplicate, bad, revoked, again) == (409, 400, 200, 404)
    mine = next(k for k in listed["keys"] if k["name"] == "team-x")
    assert (mine["rpm"], mine["budget_usd"], mine["revoked"]) == (5, 1.5, False)
    assert made["key"] not in str(listed) and "key_hash" not in mine
    assert next(k for k in after["keys"] if k["name"] == "team-x")["revoked"] is True


async def test_spend_per_day_activity_and_the_live_tail_follow_a_request(settings: Settings) -> None:
    async with console(settings) as stack:
        client = stack.gateways.client()
        answer = await client.chat.completions.create(
            model="deepseek-r1", messages=[{"role": "user", "content": "hello there"}]
        )
        await client.close()
        request_id = answer.id.removeprefix("chatcmpl-")
        tail = await wait_for(stack, "requests", lambda b: any(e["id"] == request_id for e in b["events"]))
        spend = await wait_for(stack, "spend?days=7", lambda b: bool(b["keys"]))
        _, activity = await stack.call("GET", "activity")
        _, newer = await stack.call("GET", f"requests?after={tail['last']}")  # type: ignore[index]

    event = next(e for e in tail["events"] if e["id"] == request_id)  # type: ignore[index]
    assert event["tag"] == "chat" and event["outcome"] == "ok" and event["completion_tokens"] > 0
    assert event["model"] == "deepseek-ai/DeepSeek-R1:fastest" and event["cost_usd"] > 0
    assert newer["events"] == []
    today = time.strftime("%Y-%m-%d", time.gmtime())
    (row,) = spend["keys"].values()  # type: ignore[index]
    assert row["name"] == "tests" and row["days"][today]["requests"] == 1 and row["days"][today]["cost_usd"] > 0
    assert len(spend["days"]) == 7 and spend["days"][-1] == today  # type: ignore[index]
    assert activity["totals"]["chat"] == {"requests": 1, "errors": 0}
    assert len(activity["tags"]["chat"]["requests"]) == 60


async def test_the_playground_key_is_minted_afresh_and_the_previous_one_revoked(settings: Settings) -> None:
    async with console(settings) as stack:
        _, first = await stack.call("POST", "playground-key")
        _, second = await stack.call("POST", "playground-key")
        old = stack.gateways.client(key=first["key"])
        new = stack.gateways.client(key=second["key"])
        with pytest.raises(Exception, match="401"):
            await old.models.list()
        assert (await new.models.list()).data
        await old.close()
        await new.close()
