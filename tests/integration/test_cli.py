"""The `hfbus` publisher commands as a person runs them: an error ends in one line on stderr and a non-zero exit."""

from __future__ import annotations

import os
import sys
from dataclasses import replace

import anyio
import pytest

from services.bus.natsserver import free_ports
from services.settings import Settings
from tests.conftest import running

pytestmark = pytest.mark.integration

REFUSED = "fake/status-401"  # the simulated router answers 401 for this model: `unauthorized`, never retried


async def hfbus(settings: Settings, *args: str) -> tuple[int, str]:
    env = {**os.environ, "NATS_URL": settings.nats_url, "HFBUS_PREFIX": settings.prefix}
    with anyio.fail_after(30):
        done = await anyio.run_process([sys.executable, "-m", "services", *args], env=env, check=False)
    return done.returncode, done.stderr.decode()


def lines(text: str) -> list[str]:
    return [line for line in text.replace("\r", "\n").splitlines() if line.strip()]


@pytest.mark.parametrize(
    "command",
    [
        ["chat", "hello", "--model", REFUSED],
        ["chat", "hello", "--no-stream", "--model", REFUSED],
        ["embed", "hello", "--model", REFUSED],
        ["image", "a cat", "--model", REFUSED],
    ],
    ids=["chat", "chat-no-stream", "embed", "image"],
)
async def test_a_command_ending_in_an_error_prints_one_line_and_exits_non_zero(
    any_mode_settings: Settings, command: list[str]
) -> None:
    async with running(any_mode_settings):
        status, stderr = await hfbus(any_mode_settings, *command)

    assert status != 0
    assert len(lines(stderr)) == 1, stderr
    assert lines(stderr)[0].startswith("error ") and "Traceback" not in stderr


async def test_a_command_without_a_reachable_nats_server_says_so_in_one_line(settings: Settings) -> None:
    (closed_port,) = free_ports(1)
    status, stderr = await hfbus(replace(settings, nats_url=f"nats://127.0.0.1:{closed_port}"), "chat", "hello")

    assert status != 0
    assert len(lines(stderr)) == 1, stderr
    assert "NATS" in lines(stderr)[0] and "Traceback" not in stderr


async def test_a_command_with_no_consumer_running_says_so_in_one_line(settings: Settings) -> None:
    status, stderr = await hfbus(settings, "chat", "hello")  # core mode: no stream, no subscriber

    assert status != 0
    assert lines(stderr) == [f"hfbus: no consumer serves {settings.prefix}.chat (is `hfbus run` up?)"]
