"""The intake hand-off: first in first out, bounded, and closed without losing what it holds."""

from __future__ import annotations

import anyio

from services.bus.handoff import Handoff


async def test_items_come_out_in_order_and_a_full_handoff_holds_the_producer() -> None:
    handoff: Handoff[int] = Handoff(2)
    got: list[int] = []
    async with anyio.create_task_group() as tg:

        async def produce() -> None:
            for i in range(5):
                await handoff.put(i)
            handoff.close()

        tg.start_soon(produce)
        await anyio.sleep(0.01)
        assert len(handoff._items) == 2, "the producer waits while the hand-off is full"
        while (item := await handoff.get()) is not None:
            got.append(item)
    assert got == [0, 1, 2, 3, 4]


async def test_a_waiting_consumer_is_woken_by_a_put_and_by_close() -> None:
    handoff: Handoff[str] = Handoff(4)
    results: list[str | None] = []
    async with anyio.create_task_group() as tg:

        async def consume() -> None:
            results.append(await handoff.get())
            results.append(await handoff.get())

        tg.start_soon(consume)
        await anyio.sleep(0.01)
        await handoff.put("a")
        await anyio.sleep(0.01)
        handoff.close()
    assert results == ["a", None]
