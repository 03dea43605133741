"""The intake hand-off: first in first out, bounded, and closed without losing what it holds."""

from __future__ import annotations

import anyio

from services.bus.handoff import Handoff


async def test_items_come_out_in_order_and_a_full_handoff_refuses_more() -> None:
    handoff: Handoff[int] = Handoff(3)
    assert [handoff.put_nowait(i) for i in range(5)] == [True, True, True, False, False]
    assert len(handoff) == 3
    handoff.close()
    got: list[int] = []
    while (item := await handoff.get()) is not None:
        got.append(item)
    assert got == [0, 1, 2]
    assert len(handoff) == 0


async def test_a_waiting_consumer_is_woken_by_a_put_and_by_close() -> None:
    handoff: Handoff[str] = Handoff(4)
    results: list[str | None] = []
    async with anyio.create_task_group() as tg:

        async def consume() -> None:
            results.append(await handoff.get())
            results.append(await handoff.get())

        tg.start_soon(consume)
        await anyio.sleep(0.01)
        assert handoff.put_nowait("a")
        await anyio.sleep(0.01)
        handoff.close()
    assert results == ["a", None]
