"""Unit-test fixtures: aiohttp mocked with aioresponses, no sockets."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import aioresponses.core as aioresponses_core
import pytest
from aiohttp import ClientResponse
from aioresponses import aioresponses


class _CompatResponse(ClientResponse):
    # aiohttp 3.14 added a required `stream_writer` that aioresponses 0.7.9 (the newest) does not pass yet.
    def __init__(self, method: str, url: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", SimpleNamespace(output_size=0))
        super().__init__(method, url, **kwargs)


@pytest.fixture
def mocked_http(monkeypatch: pytest.MonkeyPatch) -> Iterator[aioresponses]:
    """aiohttp with every request answered by what the test registered."""
    monkeypatch.setattr(aioresponses_core, "ClientResponse", _CompatResponse)
    with aioresponses() as mocked:
        yield mocked
