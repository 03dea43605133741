"""Concurrent single-text embeddings for the same model become one upstream call.

Requests for the same (model, provider pin, options) that arrive within `max_wait_s` of each other are sent
together, at most `max_texts` texts a call; each caller gets back exactly its own vectors, in its order.
The wait is bounded, so a lone request pays at most `max_wait_s` more.

The first request of a batch sends it, shielded from its own cancellation so the others still get their
vectors; a cancelled first request therefore ends when that one call does. No background task is needed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import anyio
import orjson

from services.errors import ServiceError
from services.hf.answers import TaskOutcome
from services.hf.providers import TaskInput, Vectors

RunTask = Callable[[TaskInput, str | None], Awaitable[TaskOutcome]]


@dataclass(eq=False)
class _Batch:
    template: TaskInput
    pinned: str | None
    texts: list[str] = field(default_factory=list)
    full: anyio.Event = field(default_factory=anyio.Event)
    done: anyio.Event = field(default_factory=anyio.Event)
    outcome: TaskOutcome | None = None
    failure: BaseException | None = None


class EmbeddingBatcher:
    """Groups feature-extraction requests; `embed()` behaves like one `run_task` call per request."""

    def __init__(self, run: RunTask, *, max_wait_s: float, max_texts: int) -> None:
        self._run = run
        self._max_wait_s = max_wait_s
        self._max_texts = max_texts
        self._open: dict[tuple[Any, ...], _Batch] = {}
        self.upstream_calls = 0
        """Upstream calls made, for tests and benchmarks."""

    async def embed(self, template: TaskInput, pinned: str | None) -> TaskOutcome:
        texts = template.texts or []
        if self._max_wait_s <= 0 or len(texts) >= self._max_texts:
            self.upstream_calls += 1
            return await self._run(template, pinned)
        key = (template.hf_model, pinned, template.normalize, template.truncate, orjson.dumps(template.options))
        batch = self._open.get(key)
        leader = batch is None or len(batch.texts) + len(texts) > self._max_texts
        if leader:
            if batch is not None:
                batch.full.set()
            batch = self._open[key] = _Batch(template, pinned)
        assert batch is not None
        start = len(batch.texts)
        batch.texts.extend(texts)
        if len(batch.texts) >= self._max_texts:
            batch.full.set()
        if leader:
            with anyio.CancelScope(shield=True):
                await self._send(key, batch)
        else:
            await batch.done.wait()
        if batch.failure is not None:
            raise batch.failure
        assert batch.outcome is not None and isinstance(batch.outcome.output, Vectors)
        vectors = batch.outcome.output.vectors[start : start + len(texts)]
        return TaskOutcome(Vectors(vectors), batch.outcome.provider, batch.outcome.router_request_id)

    async def _send(self, key: tuple[Any, ...], batch: _Batch) -> None:
        with anyio.move_on_after(self._max_wait_s):
            await batch.full.wait()
        if self._open.get(key) is batch:
            del self._open[key]
        try:
            self.upstream_calls += 1
            outcome = await self._run(replace(batch.template, texts=list(batch.texts)), batch.pinned)
            if not isinstance(outcome.output, Vectors) or len(outcome.output.vectors) != len(batch.texts):
                raise ServiceError("the provider returned a different number of vectors than texts")
            batch.outcome = outcome
        except Exception as exc:
            batch.failure = exc
        finally:
            batch.done.set()
