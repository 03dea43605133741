"""Hostile input, property-based: every message on every tag gets exactly one final output, the consumer lives on.

Each test starts one consumer set and drives a fixed corpus plus `HFBUS_FUZZ_EXAMPLES` (default 50) cases drawn by
hypothesis through it as core requests. A case the tag's request type refuses must get exactly one `invalid_request`
error and nothing else; a case that happens to decode may get progress and chunks, then exactly one final output; a
case over the server's max payload is refused by NATS at publish. Run with `-s` to see the counts.
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import anyio
import msgspec
import pytest
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import MaxPayloadError

from schemas import ChatResult, Chunk, Error, ErrorCode, Progress, Result, Tag
from schemas.codec import codec_for
from schemas.common import REQUEST_ID_MAX, REQUEST_ID_PATTERN
from schemas.subjects import CONTENT_TYPE, MSGPACK
from services.consumer.app import App
from services.dev.fake_router import FakeRouter
from services.handlers import HANDLERS
from services.settings import Settings
from tests.conftest import assert_well_formed, chat_payload, running, send_raw
from tests.fuzz.strategies import DEEP, MSGPACK_HEADERS, Case, base_request, corpus, encode, hostile, nested

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("HFBUS_FUZZ_EXAMPLES", "50"))
"""Cases hypothesis draws per tag; `make fuzz` raises it."""
BATCH = 500
"""Cases drawn at a time, so thousands of large payloads are never all in memory at once."""
LIMIT = 64 * 1024
"""`max_request_bytes` for these tests: small, so the huge cases reach past it cheaply."""
INVALID_WITHIN_S = 10.0
VALID_CANCEL_AFTER_S = 8.0
"""A case that decodes and is still running after this long is cancelled; `cancelled` is a final output too."""
VALID_WITHIN_S = 30.0
VALID_IN_FLIGHT = 16
"""Cases that decode run upstream (queued media jobs poll for a second or two), so several run at once; invalid
cases go one at a time, so a consumer crash names the one that caused it."""


class ConsumerCrashed(AssertionError):
    """The consumer set died while the test was talking to it."""


class DeepNestingCrash(ConsumerCrashed):
    """It died of a RecursionError."""


class InvalidUtf8Crash(ConsumerCrashed):
    """It died of a UnicodeDecodeError."""


class NoFinalOutput(AssertionError):
    """A request got no final output at all."""


@dataclass(frozen=True)
class Bug:
    """A way hostile input broke the consumer, found by this fuzz test; fixed, its cases stay as regressions."""

    name: str
    summary: str
    failure: type[AssertionError]
    """What its regression cases fail with should it come back."""


BUG_DEEP_NESTING = Bug(
    "BUG-1",
    "nesting past msgspec's recursion limit below the top level: RecursionError escapes the decode path",
    DeepNestingCrash,
)
BUG_NOT_UTF8 = Bug(
    "BUG-2",
    "a string that is not UTF-8 where msgspec builds a str: UnicodeDecodeError escapes the decode path",
    InvalidUtf8Crash,
)
BUG_RESULT_OVER_MAX_PAYLOAD = Bug(
    "BUG-3",
    "a result bigger than the NATS max payload is never sent, and no error replaces it: zero final outputs",
    NoFinalOutput,
)
DECODE_CRASHES: dict[type[Exception], Bug] = {RecursionError: BUG_DEEP_NESTING, UnicodeDecodeError: BUG_NOT_UTF8}
"""Exceptions msgspec raises that are not `msgspec.DecodeError`; were the runtime to let them escape again, the
consumer set would die, and `serving` names which bug came back."""

AnyOutput = Chunk | Progress | Result | Error
"""Any tag's output; `Result` stands for each tag's own result struct (unknown fields are skipped)."""


class Expect(StrEnum):
    """What the consumer must do with a case, decided by decoding it here as the consumer would."""

    VALID = "valid"
    """It decodes: progress or chunks, then exactly one final output."""
    INVALID = "invalid"
    """Exactly one `invalid_request` error and nothing else."""
    REFUSED = "refused by NATS"
    """Over the server's max payload: publishing it raises before it is sent."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """The oracle's call on one case."""

    expect: Expect
    request_id: str | None = None
    """The id of a request that decodes, to cancel it by."""
    where: str | None = None
    """Where its one error goes when that is not the NATS reply: a refused `reply_to` sends it to the request's
    own output subject."""


class _Envelope(msgspec.Struct):
    # What services/consumer/runner.py decodes from a rejected request to address its error.
    id: Any = None
    reply_to: Any = None


def _decoders(type_: Any) -> dict[bool, Callable[[bytes], Any]]:
    """`decode` functions for `type_`, keyed by "is it msgpack?"."""
    return {False: msgspec.json.Decoder(type_).decode, True: msgspec.msgpack.Decoder(type_).decode}


_ENVELOPE = _decoders(_Envelope)
REQUEST_ID = re.compile(REQUEST_ID_PATTERN)


class Oracle:
    """Predicts a case's outcome with the tag's own request decoders and the consumer's limits."""

    def __init__(self, tag: Tag, settings: Settings, max_payload: int) -> None:
        self._decoders = _decoders(HANDLERS[tag].request_type)
        self._settings = settings
        self._tag = tag
        self._policy = settings.reply_policy
        self._limit = settings.max_request_bytes
        self._max_payload = max_payload

    def judge(self, case: Case) -> Verdict:
        if len(case.payload) > self._max_payload:
            return Verdict(Expect.REFUSED)
        is_msgpack = bool(case.headers and case.headers.get(CONTENT_TYPE, "").startswith(MSGPACK))
        try:
            if len(case.payload) <= self._limit:
                try:
                    request = self._decoders[is_msgpack](case.payload)
                except msgspec.DecodeError:
                    pass
                else:
                    if self._policy.check(None, request.reply_to, self._tag, request.id) is not None:
                        return Verdict(Expect.INVALID, where=self._settings.subjects.out(self._tag, request.id))
                    return Verdict(Expect.VALID, request.id)
        except tuple(DECODE_CRASHES):
            pass  # what once crashed the consumer must now be one invalid_request like any other
        return Verdict(Expect.INVALID, where=self._where_rejected(case.payload, is_msgpack))

    def _where_rejected(self, payload: bytes, is_msgpack: bool) -> str | None:
        """As services/consumer/runner.py addresses an undecodable request: its own output subject if its `reply_to`
        is refused, else the NATS reply."""
        try:
            envelope = _ENVELOPE[is_msgpack](payload)
        except (msgspec.DecodeError, *DECODE_CRASHES):
            return None
        request_id = envelope.id if isinstance(envelope.id, str) and REQUEST_ID.fullmatch(envelope.id) else ""
        request_id = request_id if len(request_id) <= REQUEST_ID_MAX else ""
        reply_to = envelope.reply_to if isinstance(envelope.reply_to, str) else None
        if self._policy.check(None, reply_to, self._tag, request_id) is None:
            return None
        return self._settings.subjects.out(self._tag, request_id or "invalid")


@dataclass
class Tally:
    """What one tag's run did, printed at the end."""

    tag: Tag
    by_expectation: Counter[Expect] = field(default_factory=Counter)
    by_kind: Counter[str] = field(default_factory=Counter)
    valid_endings: Counter[str] = field(default_factory=Counter)
    """How the cases that decode ended: `result` or the error code."""
    failures: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    @property
    def tried(self) -> int:
        return sum(self.by_expectation.values())

    def count(self, case: Case, verdict: Verdict) -> None:
        self.by_expectation[verdict.expect] += 1
        self.by_kind[case.kind] += 1

    def line(self) -> str:
        def counts(counter: Counter[str]) -> str:
            return " ".join(f"{k}={n}" for k, n in sorted(counter.items()))

        seconds = time.perf_counter() - self.started
        outcomes = ", ".join(f"{n} {e.value}" for e, n in sorted(self.by_expectation.items()))
        return (
            f"fuzz {self.tag}: {self.tried} cases in {seconds:.1f}s ({outcomes}); kinds: {counts(self.by_kind)};"
            f" valid ones ended: {counts(self.valid_endings)}"
        )


TOTALS: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def print_totals() -> Iterator[None]:
    """Print the cases tried over all tags once the module is done (visible with `-s`), for the README."""
    yield
    if TOTALS["tags"]:
        print(
            f"\nfuzz total: {TOTALS['tried']} cases over {TOTALS['tags']} tags "
            f"({TOTALS['sent']} sent) in {TOTALS['ms'] / 1000:.1f}s"
        )


def cases(tag: Tag, max_payload: int, prefix: str) -> Iterator[Case]:
    """The corpus, then `EXAMPLES` drawn cases, drawn a batch at a time as the previous batch is used."""
    yield from corpus(tag, LIMIT, max_payload, prefix)
    for done in range(0, EXAMPLES, BATCH):
        yield from draw_cases(tag, min(BATCH, EXAMPLES - done), prefix)


def draw_cases(tag: Tag, count: int, prefix: str) -> list[Case]:
    """`count` cases from the hostile strategy; hypothesis only generates here, the checks run over NATS."""
    drawn: list[Case] = []

    # The checks need the running consumer and an event loop, so hypothesis is used as a generator:
    # no shrinking (a failing case is reported whole) and no example database. `@given` wraps this inner
    # function, not the test, so no function-scoped fixture is involved.
    @hypothesis_settings(
        max_examples=count,
        database=None,
        derandomize=False,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.filter_too_much,
        ],
    )
    @given(hostile(tag, LIMIT, prefix))
    def collect(case: Case) -> None:
        drawn.append(case)

    collect()
    return drawn


class Replies:
    """One subscription for every reply of a test: a reply subject per case, so late or extra outputs are seen."""

    def __init__(self, nc: NATS, inbox: str) -> None:
        self.nc = nc
        self._inbox = inbox
        self._routes: dict[str, str] = {}
        """Output subjects a case's error is expected on instead of its reply subject, to the case's key."""
        self.received: dict[str, list[Any]] = {}
        self._finished: dict[str, anyio.Event] = {}

    @classmethod
    @asynccontextmanager
    async def open(cls, nc: NATS) -> AsyncIterator[Replies]:
        replies = cls(nc, nc.new_inbox())
        # The callback only files each output; nats-py runs it for one message at a time, in arrival order.
        subscription = await nc.subscribe(f"{replies._inbox}.*", cb=replies._file)
        # Errors of refused reply subjects go to `<prefix>.out.<tag>.<id>`; any prefix, so one test's consumers are
        # all seen (each test has a prefix of its own).
        rerouted = await nc.subscribe("*.out.*.*", cb=replies._file)
        try:
            yield replies
        finally:
            await subscription.unsubscribe()
            await rerouted.unsubscribe()

    async def ask(self, subject: str, case: Case, key: str, *, within: float, where: str | None = None) -> bool:
        """Publish `case` and wait until `key` got a final output (True) or `within` seconds passed (False); `where`
        is the subject its outputs are expected on when not its reply subject."""
        self.received[key] = []
        if where is not None:
            self._routes[where] = key
        self._finished[key] = anyio.Event()
        await self.nc.publish(subject, case.payload, reply=f"{self._inbox}.{key}", headers=case.headers)
        return await self.wait(key, within=within)

    async def wait(self, key: str, *, within: float) -> bool:
        """Wait until `key` got a final output (True) or `within` seconds passed (False)."""
        with anyio.move_on_after(within):
            await self._finished[key].wait()
        return self._finished[key].is_set()

    async def _file(self, msg: Msg) -> None:
        key = msg.subject.rsplit(".", 1)[-1] if msg.subject.startswith(self._inbox) else self._routes.get(msg.subject)
        if key is None:
            key = f"unexpected on {msg.subject}"
        try:
            output: Any = codec_for(msg.headers).decode(msg.data, AnyOutput)
        except msgspec.DecodeError as exc:
            output = f"undecodable output ({exc}): {msg.data[:200]!r}"
        self.received.setdefault(key, []).append(output)
        if isinstance(output, Result | Error) and key in self._finished:
            self._finished[key].set()


def problem(expect: Expect, outputs: list[Any]) -> str | None:
    """Why `outputs` break the rule for a case expected to be `expect`, or None."""
    finals = [o for o in outputs if isinstance(o, Result | Error)]
    if not finals:
        return f"no final output (got {len(outputs)} others: {outputs!r:.600})"
    if len(finals) > 1 or finals[0] is not outputs[-1]:
        return f"{len(finals)} final outputs, not one at the end: {outputs!r}"
    if any(isinstance(o, str) for o in outputs):
        return f"undecodable output: {outputs!r}"
    if [o.seq for o in outputs] != list(range(len(outputs))):
        return f"seq is not 0, 1, 2...: {outputs!r}"
    if expect is Expect.INVALID:
        error = outputs[0]
        if len(outputs) != 1 or not isinstance(error, Error) or error.code != ErrorCode.INVALID_REQUEST:
            return f"expected one invalid_request error, got {outputs!r}"
        if error.retryable:
            return f"an invalid request is not retryable: {error!r}"
    return None


@asynccontextmanager
async def serving(settings: Settings, doing: dict[str, str]) -> AsyncIterator[App]:
    """`running(settings)`, turning the consumer's death into one exception naming the cases in flight."""
    body_error: BaseException | None = None
    try:
        async with running(settings) as app:
            try:
                yield app
            except anyio.get_cancelled_exc_class():
                raise  # the consumer died and its task group cancelled this body
            except BaseException as exc:
                body_error = exc
                raise
    except BaseExceptionGroup as group:
        if body_error is not None:
            raise body_error from None
        bug = next((b for t, b in DECODE_CRASHES.items() if group.subgroup(t) is not None), None)
        crash = bug.failure if bug is not None else ConsumerCrashed
        in_flight = "\n".join(doing.values()) or "nothing"
        raise crash(f"the consumer died with these cases in flight:\n{in_flight}") from group


@pytest.mark.parametrize("tag", list(Tag))
async def test_every_hostile_message_gets_exactly_one_final_output_and_the_consumer_keeps_serving(
    settings: Settings, router: FakeRouter, nc: NATS, tag: Tag
) -> None:
    settings = replace(settings, max_request_bytes=LIMIT)
    router.job_polls = 1
    oracle = Oracle(tag, settings, nc.max_payload)
    tally = Tally(tag)
    subject = settings.subjects.request(tag)
    doing: dict[str, str] = {}
    sent: list[tuple[str, str, Expect]] = []
    """(reply key, case description, expectation) of every case published."""
    window = anyio.Semaphore(VALID_IN_FLIGHT)

    async def ask_valid(replies: Replies, case: Case, key: str, request_id: str) -> None:
        try:
            if not await replies.ask(subject, case, key, within=VALID_CANCEL_AFTER_S):
                await nc.publish(settings.subjects.cancel(request_id), b"")
                await replies.wait(key, within=VALID_WITHIN_S)
        finally:
            del doing[key]
            window.release()

    async with serving(settings, doing) as app, Replies.open(nc) as replies:
        rejected_before = app.runners[tag].counters.rejected
        async with anyio.create_task_group() as valid_ones:
            for case in cases(tag, nc.max_payload, settings.prefix):
                verdict = oracle.judge(case)
                tally.count(case, verdict)
                key = f"c{tally.tried}"
                doing[key] = described = case.describe()
                if verdict.expect is Expect.REFUSED:
                    with pytest.raises(MaxPayloadError):
                        await nc.publish(subject, case.payload, headers=case.headers)
                    del doing[key]
                    continue
                sent.append((key, described, verdict.expect))
                if verdict.request_id is not None:
                    await window.acquire()
                    valid_ones.start_soon(ask_valid, replies, case, key, verdict.request_id)
                    continue
                await replies.ask(subject, case, key, within=INVALID_WITHIN_S, where=verdict.where)
                del doing[key]

        # The tag still serves a good request; its reply comes after every earlier output on that connection.
        doing["last"] = f"a valid {tag} request"
        await replies.ask(subject, encode(base_request(tag, "fuzz-still-there"), "json"), "last", within=VALID_WITHIN_S)
        doing["chat"] = "a valid chat request"
        good = await send_raw(nc, settings.subjects.request(Tag.CHAT), chat_payload("fuzz-chat-still-there"))
        rejected = app.runners[tag].counters.rejected - rejected_before

    for key, described, expect in sent:
        outputs = replies.received.pop(key)
        if (why := problem(expect, outputs)) is not None:
            tally.failures.append(f"{described}: {why}")
        elif expect is Expect.VALID:
            tally.valid_endings[outputs[-1].code if isinstance(outputs[-1], Error) else "result"] += 1
    last = replies.received.pop("last")
    strays = {key: outputs for key, outputs in replies.received.items() if outputs}

    print(f"\n{tally.line()}")
    TOTALS.update(
        tried=tally.tried,
        tags=1,
        sent=len(sent),
        ms=round((time.perf_counter() - tally.started) * 1000),
    )
    assert not tally.failures, "\n".join(tally.failures[:20])
    assert not strays, f"outputs for no case: {strays!r}"
    assert len(last) >= 1 and isinstance(last[-1], Result), f"the {tag} consumer stopped serving: {last!r}"
    assert_well_formed(good)
    assert isinstance(good[-1], ChatResult)
    assert rejected == tally.by_expectation[Expect.INVALID], "rejected counter vs invalid cases sent"
    assert tally.tried >= EXAMPLES, "hypothesis drew fewer cases than asked"


def _regression(bug: Bug, tag: Tag, payload: bytes, name: str, headers: dict[str, str] | None = None) -> Any:
    return pytest.param(bug, tag, payload, headers, id=f"{bug.name}-{name}")


DEEP_ARRAY = nested(DEEP, "array", "json")
REGRESSIONS = [
    _regression(BUG_DEEP_NESTING, Tag.CHAT, b'{"id":' + DEEP_ARRAY + b"}", "id"),
    _regression(BUG_DEEP_NESTING, Tag.CHAT, chat_payload("a")[:-1] + b',"x":' + DEEP_ARRAY + b"}", "unknown-field"),
    _regression(BUG_DEEP_NESTING, Tag.CHAT, nested(DEEP, "object", "json"), "top-level-object"),
    _regression(
        BUG_DEEP_NESTING, Tag.TEXT2PIC, b'{"id":"a","prompt":"x","options":{"k":' + DEEP_ARRAY + b"}}", "options"
    ),
    _regression(
        BUG_DEEP_NESTING, Tag.VECTORIZE, b"\x81\xa2id" + nested(DEEP, "array", "msgpack"), "msgpack", MSGPACK_HEADERS
    ),
    _regression(
        BUG_DEEP_NESTING,
        Tag.CHAT,
        b'{"x":' + DEEP_ARRAY + b',"pad":"' + b"p" * (LIMIT + 1) + b'"}',
        "over-the-size-limit",
    ),
    _regression(BUG_NOT_UTF8, Tag.CHAT, b'{"id":"\x92"}', "id"),
    _regression(BUG_NOT_UTF8, Tag.CHAT, b'{"reply_to":"\x92"}', "reply-to"),
    _regression(BUG_NOT_UTF8, Tag.CHAT, b'{"id":"a","messages":[{"role":"user","content":"\xff"}]}', "content"),
    _regression(BUG_NOT_UTF8, Tag.VECTORIZE, b"\x81\xa2id\xa1\x92", "msgpack-id", MSGPACK_HEADERS),
    _regression(
        BUG_RESULT_OVER_MAX_PAYLOAD,
        Tag.CHAT,
        # The fake router answers `max_tokens` words cycling over its preamble and the question: 1.4 MB here.
        chat_payload("big-answer", messages=[{"role": "user", "content": "x" * 60_000}], max_tokens=300),
        "chat",
    ),
    _regression(
        BUG_RESULT_OVER_MAX_PAYLOAD,
        Tag.VECTORIZE,
        msgspec.json.encode({"id": "many-vectors", "input": ["text"] * 100}),
        "vectorize",
    ),
]


@pytest.mark.parametrize(("bug", "tag", "payload", "headers"), REGRESSIONS)
async def test_a_payload_that_broke_the_consumer_gets_exactly_one_final_output(
    settings: Settings, router: FakeRouter, nc: NATS, bug: Bug, tag: Tag, payload: bytes, headers: dict[str, str] | None
) -> None:
    settings = replace(settings, max_request_bytes=LIMIT)
    case = Case("regression", payload, headers)
    expect = Expect.VALID if bug is BUG_RESULT_OVER_MAX_PAYLOAD else Expect.INVALID
    doing = {"r": case.describe()}
    async with serving(settings, doing) as app, Replies.open(nc) as replies:
        # Both kinds of case are answered within a second when they are answered at all.
        finished = await replies.ask(settings.subjects.request(tag), case, "r", within=5.0)
        doing["r"] = "a valid chat request"
        good = await send_raw(nc, settings.subjects.request(Tag.CHAT), chat_payload())
        rejected = app.runners[tag].counters.rejected

    outputs = replies.received["r"]
    if not finished:
        raise NoFinalOutput(f"{case.describe()}: {len(outputs)} outputs and none final")
    assert problem(expect, outputs) is None, outputs
    if bug is BUG_RESULT_OVER_MAX_PAYLOAD:
        assert isinstance(outputs[-1], Error) and outputs[-1].code == ErrorCode.TOO_LARGE, outputs
    assert isinstance(good[-1], ChatResult)
    assert rejected == (1 if expect is Expect.INVALID else 0)


@pytest.mark.parametrize("tag", list(Tag))
def test_the_cases_start_from_a_request_the_tag_accepts_and_the_corpus_spans_the_limits(tag: Tag) -> None:
    """Wrong-type and mutated cases prove nothing unless the request they start from is valid."""
    oracle = Oracle(tag, Settings(max_request_bytes=LIMIT), 1024 * 1024)
    for wire in ("json", "msgpack"):
        assert oracle.judge(encode(base_request(tag), wire)).expect is Expect.VALID
    details = {case.detail: oracle.judge(case).expect for case in corpus(tag, LIMIT, 1024 * 1024)}
    assert details["exactly the limit json"] is Expect.VALID
    assert details["one byte over the limit msgpack"] is Expect.INVALID
    assert details[f"{DEEP} arrays top json"] is Expect.INVALID
    assert details["over the NATS max payload"] is Expect.REFUSED
