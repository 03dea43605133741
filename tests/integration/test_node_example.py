"""The Node.js example publisher (`examples/node`) against a real nats-server, the consumers and the fake router."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

import anyio
import pytest
from nats.aio.client import Client as NATS

from schemas import Tag
from schemas.subjects import REQUEST_SEQ
from services.bus.jetstream import ensure_finals_stream, ensure_stream
from services.dev.fake_router import FakeRouter, Fault, expected_text
from services.settings import Mode, Settings
from tests.conftest import eventually, running
from tests.integration.gateway import gateways
from tests.integration.link import link_to

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "node"


@dataclass(frozen=True)
class NodeExample:
    node: str
    workdir: Path

    async def run(self, settings: Settings, *args: str) -> subprocess.CompletedProcess[bytes]:
        env = {**os.environ, "NATS_URL": settings.nats_url, "HFBUS_PREFIX": settings.prefix}
        with anyio.fail_after(60):
            return await anyio.run_process(
                [self.node, "publish-chat.mjs", "--timeout", "20", *args], cwd=self.workdir, env=env, check=False
            )


@pytest.fixture(scope="session")
def node_example(tmp_path_factory: pytest.TempPathFactory) -> NodeExample:
    """A copy of the example with its locked dependencies installed once per session (`npm ci`)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are not installed: the Node.js example cannot run here")
    workdir = tmp_path_factory.mktemp("node-example")
    for name in ("package.json", "package-lock.json", "publish-chat.mjs", "openai-chat.mjs", "resume-chat.mjs"):
        shutil.copy2(EXAMPLE / name, workdir / name)
    installed = subprocess.run(
        [npm, "ci", "--prefix", str(workdir), "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if installed.returncode != 0:
        pytest.fail(f"npm ci for examples/node failed (exit {installed.returncode}):\n{installed.stderr[-3000:]}")
    return NodeExample(node, workdir)


@pytest.mark.parametrize("mode", ["core", "durable"])
async def test_the_node_example_prints_the_streamed_answer_and_exits_0(
    node_example: NodeExample, settings: Settings, router: FakeRouter, mode: Mode
) -> None:
    prompt = "hello from node"
    async with running(replace(settings, mode=mode)):
        done = await node_example.run(settings, "--model", "org/model", prompt)

    stderr = done.stderr.decode()
    assert done.returncode == 0, stderr
    assert done.stdout.decode() == expected_text([{"role": "user", "content": prompt}], 16) + "\n"
    assert "[org/model via fake-provider;" in stderr
    assert router.requests[-1].json()["messages"] == [{"role": "user", "content": prompt}]


async def test_the_node_example_prints_the_error_code_and_exits_1(
    node_example: NodeExample, settings: Settings, router: FakeRouter
) -> None:
    router.faults.append(Fault.status(401))
    async with running(settings):
        done = await node_example.run(settings, "--model", "org/model", "hi")

    assert done.returncode == 1
    assert done.stdout == b""
    assert "error unauthorized: " in done.stderr.decode()


async def test_the_node_example_exits_1_when_nothing_serves_the_subject(
    node_example: NodeExample, settings: Settings
) -> None:
    done = await node_example.run(settings, "hi")

    assert done.returncode == 1
    assert f"nothing serves {settings.prefix}.chat" in done.stderr.decode()


async def test_the_openai_sdk_for_node_streams_a_chat_through_the_gateway(
    node_example: NodeExample, settings: Settings
) -> None:
    async with gateways(settings) as running:
        env = {**os.environ, "HFBUS_KEY": running.key}
        args = ["--base-url", f"{running.urls[0]}/v1", "--model", "org/model", "--max-tokens", "6", "hello from node"]
        with anyio.fail_after(60):
            done = await anyio.run_process(
                [node_example.node, "openai-chat.mjs", *args], cwd=node_example.workdir, env=env, check=False
            )
        with anyio.fail_after(60):
            refused = await anyio.run_process(
                [node_example.node, "openai-chat.mjs", *args],
                cwd=node_example.workdir,
                env={**env, "HFBUS_KEY": "hfb-wrong"},
                check=False,
            )

    messages = [{"role": "user", "content": "hello from node"}]
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().strip() == expected_text(messages, 6)
    assert "+6 tokens]" in done.stderr.decode()
    assert refused.returncode == 1 and "error 401 invalid_api_key" in refused.stderr.decode()


async def test_the_node_example_reads_back_only_its_own_kept_final(
    node_example: NodeExample, settings: Settings, nc: NATS
) -> None:
    """Durable mode with nobody serving chat: the live answer never comes, so the example reads the kept final,
    and takes it only when its `id` and `Hfbus-Request-Seq` are those of the request it sent."""
    settings = replace(settings, mode="durable")
    subjects = settings.subjects
    await ensure_stream(nc, settings)
    await ensure_finals_stream(nc, settings)

    async def run_with_kept(request_id: str, kept_id: str, seq_offset: int) -> subprocess.CompletedProcess[bytes]:
        # Nothing else publishes into the work queue, so the example's request lands at the next sequence.
        next_seq = (await nc.jsm().stream_info(subjects.stream)).state.last_seq + 1
        result = {
            "type": "result",
            "id": kept_id,
            "seq": 0,
            "text": f"kept answer for {kept_id}",
            "finish_reason": "stop",
            "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
            "model": "org/model",
            "provider": "kept",
        }
        await nc.jetstream().publish(
            subjects.final(Tag.CHAT, request_id),
            json.dumps(result).encode(),
            headers={REQUEST_SEQ: str(next_seq + seq_offset)},
        )
        return await node_example.run(settings, "--id", request_id, "--timeout", "5", "hi")

    own = await run_with_kept("node-kept-own", "node-kept-own", 0)
    other_id = await run_with_kept("node-kept-forged", "someone-else", 0)
    other_seq = await run_with_kept("node-kept-older", "node-kept-older", -1)

    assert own.returncode == 0, own.stderr.decode()
    assert own.stdout.decode() == "kept answer for node-kept-own\n"
    assert "[org/model via kept;" in own.stderr.decode()
    for refused in (other_id, other_seq):
        assert refused.returncode == 2, refused.stderr.decode()
        assert refused.stdout == b"" and "timeout: no output for 5s" in refused.stderr.decode()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("mode", ["core", "durable"])
async def test_the_node_resumable_example_follows_a_stream_across_a_cut_link_and_replays_it_later(
    node_example: NodeExample, settings: Settings, router: FakeRouter, mode: Mode
) -> None:
    router.pace_s = 0.1  # the router's 16 tokens over 1.6 s: the cut lands mid-stream
    settings = replace(settings, mode=mode)
    expected = expected_text([{"role": "user", "content": "resume me"}], router.default_tokens)
    async with running(settings), link_to(int(settings.nats_url.rsplit(":", 1)[1])) as link:
        env = {**os.environ, "NATS_URL": link.url, "HFBUS_PREFIX": settings.prefix}
        command = [node_example.node, "resume-chat.mjs", "--id", "node-resume", "--model", "org/model"]
        live: list[subprocess.CompletedProcess[bytes]] = []

        async def read_live() -> None:
            live.append(
                await anyio.run_process([*command, "resume me"], cwd=node_example.workdir, env=env, check=False)
            )

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(read_live)
                await eventually(lambda: router.in_flight == 1, within=30)
                await link.cut()
                await anyio.sleep(0.5)  # tokens go on being published while the example is cut off
                link.mend()
            later = await anyio.run_process([*command, "--replay"], cwd=node_example.workdir, env=env, check=False)

    assert link.cuts == 1
    assert live[0].returncode == 0, live[0].stderr.decode()
    assert live[0].stdout.decode().strip() == expected
    assert later.returncode == 0 and later.stdout.decode().strip() == expected
