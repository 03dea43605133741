"""The console's in-memory view of the done events: the tail, the per-minute counts, the last refusals."""

from __future__ import annotations

from schemas import Tag
from schemas.operations import DoneEvent
from services.gateway.console.activity import MINUTES, TAIL, Activity

NOW = 1_800_000_000.0


def event(outcome: str = "ok", *, at: float = NOW, tag: Tag = Tag.CHAT, id: str = "r1") -> DoneEvent:
    return DoneEvent(id=id, tag=tag, outcome=outcome, duration_s=0.1, at=at, model="m")


def test_requests_and_errors_are_counted_per_tag_and_minute_and_old_minutes_drop_out() -> None:
    activity = Activity(clock=lambda: NOW)
    activity.add(event(at=NOW - 2 * 3600))  # older than the hour: dropped
    activity.add(event())
    activity.add(event("timeout"))
    activity.add(event("cancelled"))  # a caller hanging up is not the service failing
    activity.add(event("ok", tag=Tag.TEXT2PIC, at=NOW - 120))

    hour = activity.hour()

    assert hour["totals"] == {"chat": {"requests": 3, "errors": 1}, "text2pic": {"requests": 1, "errors": 0}}
    assert len(hour["minutes"]) == MINUTES and hour["tags"]["chat"]["requests"][-1] == 3
    assert hour["tags"]["text2pic"]["requests"][-3] == 1


def test_the_tail_is_bounded_and_read_after_a_sequence_number() -> None:
    activity = Activity(clock=lambda: NOW)
    for n in range(TAIL + 5):
        activity.add(event(id=f"r{n}"))

    first = activity.tail(limit=TAIL)
    later = activity.tail(after=first["last"] - 2)

    assert len(first["events"]) == TAIL and first["events"][0]["id"] == "r5"
    assert [e["id"] for e in later["events"]] == [f"r{TAIL + 3}", f"r{TAIL + 4}"]


def test_the_last_unauthorized_and_payment_required_are_remembered() -> None:
    activity = Activity(clock=lambda: NOW)
    activity.add(event("unauthorized", at=NOW - 10, id="a"))
    activity.add(event("unauthorized", at=NOW - 5, id="b"))
    activity.add(event("payment_required", at=NOW - 1, id="c", tag=Tag.TEXT2VID))
    activity.note_refusal("unauthorized", at=NOW - 100, source="older, ignored")

    assert activity.last_refusals["unauthorized"] == {"at": NOW - 5, "source": "chat request b", "model": "m"}
    assert activity.last_refusals["payment_required"]["source"] == "text2vid request c"
