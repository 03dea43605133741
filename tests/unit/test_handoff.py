"""The hand-off between a subscription (or a task) and one reader: first in first out, bounded, closed or
discarded without a stuck side."""

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


async def test_put_waits_for_room_and_gives_up_once_the_consumer_discards() -> None:
    handoff: Handoff[int] = Handoff(2)
    accepted: list[bool] = []
    async with anyio.create_task_group() as tg:

        async def produce() -> None:
            for i in range(4):
                accepted.append(await handoff.put(i))

        tg.start_soon(produce)
        await anyio.sleep(0.01)
        assert accepted == [True, True]  # the third waits for room
        assert await handoff.get() == 0
        await anyio.sleep(0.01)
        assert accepted == [True, True, True]
        handoff.discard()  # the reader is gone: the waiting put returns, nothing more is held
    assert accepted == [True, True, True, False]
    assert len(handoff) == 0
    assert not handoff.put_nowait(9)


async def test_wait_says_whether_an_item_came_within_the_time() -> None:
    handoff: Handoff[str] = Handoff(4)
    with anyio.fail_after(1):
        assert not await handoff.wait(0.02)
    async with anyio.create_task_group() as tg:

        async def put_later() -> None:
            await anyio.sleep(0.01)
            handoff.put_nowait("x")

        tg.start_soon(put_later)
        assert await handoff.wait(5.0)
    assert handoff.get_nowait() == "x"
