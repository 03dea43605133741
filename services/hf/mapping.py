"""HF model id -> the providers that serve it, from the Hub's provider mapping, cached with a TTL."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import msgspec

from services.errors import UnknownModel

HUB_ONLY = frozenset({"hf-inference"})
"""Providers whose model id is the HF id itself, usable even when the mapping does not list them."""


@dataclass(frozen=True, slots=True)
class ProviderRoute:
    """One provider serving a model: its own id for it, its health and the task it serves."""

    provider: str
    provider_model: str
    status: str
    task: str


class _Entry(msgspec.Struct, rename="camel"):
    provider_id: str = ""
    status: str = "live"
    task: str = ""
    provider: str | None = None


class _Model(msgspec.Struct, rename="camel"):
    inference_provider_mapping: dict[str, _Entry] | list[_Entry] | None = None


_model_decoder = msgspec.json.Decoder(_Model)

Fetch = Callable[[str], Awaitable[bytes | None]]
"""GET a Hub path; None when the Hub says the model does not exist."""


def parse_mapping(body: bytes) -> list[ProviderRoute]:
    """The Hub answers an object keyed by provider or (list endpoints) a list with a `provider` field."""
    mapping = _model_decoder.decode(body).inference_provider_mapping or {}
    pairs: list[tuple[str, _Entry]]
    if isinstance(mapping, dict):
        pairs = list(mapping.items())
    else:
        pairs = [(e.provider, e) for e in mapping if e.provider]
    return [ProviderRoute(p, e.provider_id, e.status, e.task) for p, e in pairs]


def choose(
    hf_model: str,
    routes: list[ProviderRoute],
    task: str,
    pinned: str | None,
    supported: Callable[[str], bool],
    mapping_tasks: Callable[[str], frozenset[str]] | None = None,
) -> list[ProviderRoute]:
    """The providers to try, in order: the pinned one, else every live one for the task that we support.

    `mapping_tasks(provider)` names the Hub tasks that count as `task` for that provider (default: `task`
    alone): the Hub files some models under a sibling task, e.g. novita's MiniMax H3 as image-text-to-video.
    """
    accepted = mapping_tasks or (lambda _: frozenset({task}))
    serving = [r for r in routes if r.task in accepted(r.provider)]
    if pinned is not None:
        for route in serving:
            if route.provider == pinned:
                return [route]
        if pinned in HUB_ONLY and supported(pinned):
            return [ProviderRoute(pinned, hf_model, "live", task)]
        raise UnknownModel(f"provider {pinned!r} does not serve {hf_model} for {task}; {_describe(routes, task)}")
    candidates = [r for r in serving if r.status == "live" and supported(r.provider)]
    if not candidates:
        raise UnknownModel(f"no live provider serves {hf_model} for {task}; {_describe(routes, task)}")
    return candidates


def _describe(routes: list[ProviderRoute], task: str) -> str:
    if not routes:
        return "the Hub lists no inference provider for it"
    listed = ", ".join(f"{r.provider} ({r.task}, {r.status})" for r in routes)
    return f"the Hub lists: {listed}"


class ProviderMapping:
    """The Hub mapping per model, fetched once per TTL."""

    def __init__(self, fetch: Fetch, ttl_s: float) -> None:
        self._fetch = fetch
        self._ttl_s = ttl_s
        self._cache: dict[str, tuple[float, list[ProviderRoute]]] = {}

    async def routes(self, hf_model: str) -> list[ProviderRoute]:
        """Every provider the Hub maps `hf_model` to; raise `UnknownModel` when the Hub does not know it."""
        cached = self._cache.get(hf_model)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        body = await self._fetch(f"/api/models/{hf_model}?expand[]=inferenceProviderMapping")
        if body is None:
            raise UnknownModel(f"model {hf_model!r} does not exist on the Hub (or is private)")
        try:
            routes = parse_mapping(body)
        except msgspec.DecodeError as exc:
            raise UnknownModel(f"the Hub's provider mapping for {hf_model} is unreadable: {exc}") from None
        self._cache[hf_model] = (now + self._ttl_s, routes)
        return routes
