"""The out log's own rules, against a real nats-server: replay until stored, back off, give up on idle runs.

The leader-change and restart tests (test_resumable_chaos.py) show replays mending holes end to end; these pin
down what they cannot reach: outputs sent while no stream stores them at all, how often a run that is never
confirmed is published again, and that such a run is let go after `KEEP_IDLE_S`.
"""

from __future__ import annotations

import time

import anyio
import nats
import pytest
from nats.aio.msg import Msg
from nats.js.api import StorageType, StreamConfig

from services.bus import outlog
from services.bus.outlog import OutLog
from tests.conftest import eventually

pytestmark = pytest.mark.integration


def fast_clock(monkeypatch: pytest.MonkeyPatch, *, ack_wait_s: float, backoff_max_s: float, keep_idle_s: float) -> None:
    monkeypatch.setattr(outlog, "ACK_WAIT_S", ack_wait_s)
    monkeypatch.setattr(outlog, "REPLAY_BACKOFF_MAX_S", backoff_max_s)
    monkeypatch.setattr(outlog, "KEEP_IDLE_S", keep_idle_s)


async def test_outputs_sent_before_the_out_stream_exists_are_stored_once_it_does(
    nc: nats.NATS, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast_clock(monkeypatch, ack_wait_s=0.2, backoff_max_s=0.4, keep_idle_s=60.0)
    subject = f"{prefix}.out.chat.r1"
    log = OutLog(nc)
    await log.open()
    try:
        run = log.run(subject, {"Hfbus-Test": "yes"})
        for seq in range(5):
            run.publish(seq, b'{"seq":%d}' % seq, final=seq == 4)
        await nc.flush()
        await anyio.sleep(0.3)  # every send got "no responders": nothing was stored, nothing confirmed
        assert log.runs == 1

        js = nc.jetstream()
        await js.add_stream(
            StreamConfig(name=f"{prefix}_OUT", subjects=[f"{prefix}.out.>"], storage=StorageType.MEMORY)
        )
        await eventually(lambda: log.runs == 0, within=5.0)  # replayed, confirmed, let go

        stored = await js.pull_subscribe(subject, durable=None, stream=f"{prefix}_OUT")
        messages = await stored.fetch(10, timeout=2.0)
        # A replay may store identical copies (subscribers skip them): the first of each, in order, is the run.
        assert list(dict.fromkeys(m.data for m in messages)) == [b'{"seq":%d}' % seq for seq in range(5)]
        assert all(m.headers is not None and m.headers.get("Hfbus-Test") == "yes" for m in messages)
        await js.delete_stream(f"{prefix}_OUT")
    finally:
        await log.close()


async def test_a_run_never_confirmed_is_published_again_ever_less_often_then_let_go(
    nc: nats.NATS, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No stream: no ack ever comes. Waits go 0.1, 0.2, 0.4 (the cap), 0.4 ... until the run has been
    # idle 1.2 s; with a constant 0.1 s wait the same 1.2 s would hold a dozen sends.
    fast_clock(monkeypatch, ack_wait_s=0.1, backoff_max_s=0.4, keep_idle_s=1.2)
    subject = f"{prefix}.out.chat.r2"
    sends: list[float] = []

    async def seen(msg: Msg) -> None:
        sends.append(time.monotonic())

    await nc.subscribe(subject, cb=seen)
    log = OutLog(nc)
    await log.open()
    try:
        started = time.monotonic()
        log.run(subject, None).publish(0, b'{"seq":0}', final=True)
        await eventually(lambda: log.runs == 0, within=5.0)
        forgotten_after = time.monotonic() - started
        count_when_forgotten = len(sends)
        await anyio.sleep(1.0)
    finally:
        await log.close()

    assert forgotten_after >= 1.2
    assert 3 <= count_when_forgotten <= 7, sends  # the first send and a few replays, spaced ever wider
    gaps = [b - a for a, b in zip(sends, sends[1:], strict=False)]
    assert gaps[-1] >= 0.35  # timers only fire late: the last wait reached the 0.4 s cap, not the first 0.1 s
    assert len(sends) == count_when_forgotten  # let go: nothing is published again
