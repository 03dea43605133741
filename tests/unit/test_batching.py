"""Embedding micro-batching: concurrent requests share calls, each gets its own vectors, failures reach all."""

from __future__ import annotations

import anyio
import pytest

from services.errors import UpstreamUnavailable
from services.hf.answers import TaskOutcome
from services.hf.batching import EmbeddingBatcher
from services.hf.providers import TaskInput, Vectors


def vector_of(text: str) -> list[float]:
    return [float(len(text)), float(sum(map(ord, text)) % 997)]


class FakeUpstream:
    def __init__(self, *, fail: bool = False, latency_s: float = 0.01) -> None:
        self.calls: list[list[str]] = []
        self.fail = fail
        self.latency_s = latency_s

    async def run(self, template: TaskInput, pinned: str | None) -> TaskOutcome:
        self.calls.append(list(template.texts or []))
        await anyio.sleep(self.latency_s)
        if self.fail:
            raise UpstreamUnavailable("upstream HTTP 503: down")
        return TaskOutcome(Vectors([vector_of(t) for t in template.texts or []]), "hf-inference")


def request(text: str, model: str = "org/embedder") -> TaskInput:
    return TaskInput(task="feature-extraction", provider_model="", hf_model=model, texts=[text])


async def embed_all(batcher: EmbeddingBatcher, texts: list[str], model: str = "org/embedder") -> dict[str, list[float]]:
    results: dict[str, list[float]] = {}

    async def one(text: str) -> None:
        outcome = await batcher.embed(request(text, model), None)
        assert isinstance(outcome.output, Vectors)
        (results[text],) = outcome.output.vectors

    async with anyio.create_task_group() as tg:
        for text in texts:
            tg.start_soon(one, text)
    return results


async def test_concurrent_requests_share_one_call_and_each_gets_its_own_vector() -> None:
    upstream = FakeUpstream()
    batcher = EmbeddingBatcher(upstream.run, max_wait_s=0.05, max_texts=64)
    texts = [f"text number {i}" * (i % 3 + 1) for i in range(20)]
    results = await embed_all(batcher, texts)
    assert len(upstream.calls) == 1 and sorted(upstream.calls[0]) == sorted(texts)
    assert results == {t: vector_of(t) for t in texts}


async def test_a_batch_never_exceeds_its_size() -> None:
    upstream = FakeUpstream()
    batcher = EmbeddingBatcher(upstream.run, max_wait_s=0.05, max_texts=64)
    texts = [f"t{i}" for i in range(150)]
    results = await embed_all(batcher, texts)
    assert [len(c) for c in upstream.calls] == [64, 64, 22]
    assert results == {t: vector_of(t) for t in texts}


async def test_different_models_are_never_mixed() -> None:
    upstream = FakeUpstream()
    batcher = EmbeddingBatcher(upstream.run, max_wait_s=0.05, max_texts=64)
    async with anyio.create_task_group() as tg:
        tg.start_soon(embed_all, batcher, ["a", "b"], "org/one")
        tg.start_soon(embed_all, batcher, ["c", "d"], "org/two")
    assert sorted(sorted(c) for c in upstream.calls) == [["a", "b"], ["c", "d"]]


async def test_a_failed_call_fails_every_request_of_the_batch() -> None:
    batcher = EmbeddingBatcher(FakeUpstream(fail=True).run, max_wait_s=0.05, max_texts=64)
    failures = []

    async def one(text: str) -> None:
        with pytest.raises(UpstreamUnavailable) as caught:
            await batcher.embed(request(text), None)
        failures.append(caught.value)

    async with anyio.create_task_group() as tg:
        for text in ("x", "y", "z"):
            tg.start_soon(one, text)
    assert len(failures) == 3


async def test_cancelling_the_first_request_does_not_cancel_the_others() -> None:
    upstream = FakeUpstream(latency_s=0.05)
    batcher = EmbeddingBatcher(upstream.run, max_wait_s=0.05, max_texts=64)
    results: dict[str, list[float]] = {}

    async def follower(text: str) -> None:
        outcome = await batcher.embed(request(text), None)
        assert isinstance(outcome.output, Vectors)
        (results[text],) = outcome.output.vectors

    async with anyio.create_task_group() as tg:
        with anyio.CancelScope() as leader_scope:
            tg.start_soon(follower, "second")
            leader_scope.cancel()
            await batcher.embed(request("first"), None)
        tg.start_soon(follower, "third")
    assert results["second"] == vector_of("second")
    assert "third" in results


async def test_a_lone_request_waits_at_most_the_batch_window() -> None:
    upstream = FakeUpstream(latency_s=0.0)
    batcher = EmbeddingBatcher(upstream.run, max_wait_s=0.05, max_texts=64)
    with anyio.fail_after(1):
        await batcher.embed(request("alone"), None)
    assert upstream.calls == [["alone"]]
