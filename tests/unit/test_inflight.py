"""Remembered cancels: a flood of cancels for unknown ids costs bounded memory."""

from __future__ import annotations

from services.consumer.inflight import REMEMBERED_CANCELS, InFlight


def test_a_flood_of_cancels_for_unknown_ids_keeps_at_most_the_bound() -> None:
    inflight = InFlight()
    for n in range(5 * REMEMBERED_CANCELS):
        assert not inflight.cancel(f"unknown-{n}")

    assert inflight.remembered == REMEMBERED_CANCELS
    assert inflight.was_cancelled(f"unknown-{5 * REMEMBERED_CANCELS - 1}"), "the newest are remembered"
    assert not inflight.was_cancelled("unknown-0"), "the oldest are forgotten first"


def test_ids_no_request_can_have_are_not_remembered() -> None:
    inflight = InFlight()
    for bad in ("x" * 129, "", "a b", "a.b", "\u00e9"):
        assert not inflight.cancel(bad)

    assert inflight.remembered == 0


def test_a_repeated_cancel_is_remembered_as_the_newest() -> None:
    inflight = InFlight()
    inflight.cancel("kept")
    for n in range(REMEMBERED_CANCELS - 1):
        inflight.cancel(f"other-{n}")
    inflight.cancel("kept")
    inflight.cancel("one-more")

    assert inflight.was_cancelled("kept") and not inflight.was_cancelled("other-0")
