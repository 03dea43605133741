"""The reply-subject policy: NATS wildcard matching, and what is refused whatever HFBUS_REPLY_SUBJECTS says."""

from __future__ import annotations

import pytest

from schemas import Tag
from services.reply_policy import REPLY_SUBJECT_MAX, ReplyPolicy, matches, parse_patterns
from services.settings import Settings, SettingsError

MATCHING = [
    # pattern, subject, matches?
    ("_INBOX.>", "_INBOX.abc", True),
    ("_INBOX.>", "_INBOX.abc.7", True),
    ("_INBOX.>", "_INBOX", False),  # `>` needs at least one token
    ("_INBOX.*", "_INBOX.abc", True),
    ("_INBOX.*", "_INBOX.abc.7", False),  # `*` is exactly one token
    ("_INBOX.*", "_INBOX", False),
    ("a.*.c", "a.b.c", True),
    ("a.*.c", "a.b.d", False),
    ("a.*.c", "a.b.c.d", False),
    ("a.b", "a.b", True),
    ("a.b", "a.bc", False),
    ("a.b", "a.b.c", False),
    ("a.b.c", "a.b", False),
    ("*", "a", True),
    ("*", "a.b", False),
    (">", "a", True),
    (">", "a.b.c", True),
    ("*.>", "a", False),
    ("*.>", "a.b", True),
    ("ai.out.>", "ai.out.chat.x", True),
    ("ai.out.>", "ai.outx.chat", False),
    ("ai.out.>", "aiout.chat.x", False),
]


@pytest.mark.parametrize(("pattern", "subject", "expected"), MATCHING)
def test_matching_follows_nats_wildcards(pattern: str, subject: str, expected: bool) -> None:
    assert matches(pattern, subject) is expected


POLICY = ReplyPolicy.of("ai")
REFUSED = [
    # JetStream, KV, object store, system, micro and ack subjects: anything starting with `$`
    "$JS.API.STREAM.INFO.x",
    "$JS.API.STREAM.DELETE.HFBUS",
    "$JS.API.CONSUMER.MSG.NEXT.HFBUS.hfbus-chat",
    "$JS.ACK.HFBUS.hfbus-chat.1.2.3.4.5",
    "$KV.bucket.key",
    "$O.hfbus-media.C.abc",
    "$SYS.REQ.SERVER.PING",
    "$SRV.PING",
    "$G",
    # the deployment's own subjects
    "ai.chat",
    "ai.vectorize",
    "ai.models",
    "ai.somethingnew",
    "ai.cancel.r1",
    "ai.cancel.other",
    "ai.final.chat.r1",
    "ai.final.chat.someone-else",
    "ai.dead.chat",
    "ai.dead.chat.x",
    "ai.out.chat.someone-else",
    "ai.out.text2pic.r1",
    # not matching the default patterns
    "elsewhere.reply",
    "_INBOX",
    "ai",
    # malformed
    "",
    ".",
    "_INBOX..x",
    "_INBOX.x.",
    ".\u005fINBOX.x",
    "_INBOX.a b",
    "_INBOX.a\tb",
    "_INBOX.a\nb",
    "_INBOX.a\rb",
    "_INBOX.a\x00b",
    "_INBOX.a\u00a0b",
    "_INBOX.*",
    "_INBOX.>",
    "_INBOX.a*",
    "_INBOX.a>b",
    "_INBOX." + "x" * REPLY_SUBJECT_MAX,
]
ALLOWED = ["_INBOX.abc", "_INBOX.abc.12", "ai.out.chat.r1", "ai.out.chat.r1.extra", "ai.out.gateway.conn-7"]


@pytest.mark.parametrize("subject", REFUSED)
def test_hostile_and_malformed_reply_subjects_are_refused(subject: str) -> None:
    assert POLICY.refusal(subject, Tag.CHAT, "r1") is not None


@pytest.mark.parametrize("subject", ALLOWED)
def test_inboxes_and_the_requests_own_outputs_are_allowed(subject: str) -> None:
    assert POLICY.refusal(subject, Tag.CHAT, "r1") is None


@pytest.mark.parametrize("subject", [s for s in REFUSED if s.startswith(("$", "ai."))])
def test_internal_subjects_stay_refused_even_when_the_setting_allows_everything(subject: str) -> None:
    everything = ReplyPolicy.of("ai", [">"])
    assert everything.refusal(subject, Tag.CHAT, "r1") is not None


def test_a_dotted_prefix_guards_its_own_subjects() -> None:
    policy = ReplyPolicy.of("acme.ai", [">"])
    assert policy.refusal("acme.ai.chat", Tag.CHAT, "r1") is not None
    assert policy.refusal("acme.ai.final.chat.r1", Tag.CHAT, "r1") is not None
    assert policy.refusal("acme.ai.out.chat.r1", Tag.CHAT, "r1") is None
    assert policy.refusal("ai.chat", Tag.CHAT, "r1") is None  # another deployment's: the setting decides
    assert ReplyPolicy.of("acme.ai").refusal("acme.ai.out.chat.r1", Tag.CHAT, "r1") is None


def test_an_undecodable_request_may_still_use_the_invalid_output_subject() -> None:
    assert POLICY.refusal("ai.out.chat.invalid", Tag.CHAT, "") is None


def test_the_setting_replaces_the_defaults_and_names_itself_when_wrong() -> None:
    settings = Settings.from_env({"HFBUS_REPLY_SUBJECTS": " _INBOX_alice.>, _INBOX_bob.> ,", "HFBUS_PREFIX": "p"})
    assert settings.reply_subjects == ("_INBOX_alice.>", "_INBOX_bob.>")
    policy = settings.reply_policy
    assert policy.refusal("_INBOX_bob.x", Tag.CHAT, "r1") is None
    assert policy.refusal("_INBOX.x", Tag.CHAT, "r1") is not None
    assert policy.refusal("p.out.chat.r1", Tag.CHAT, "r1") is None, "a request's own output subject always works"
    assert Settings.from_env({}).reply_policy.patterns == ("_INBOX.>", "ai.out.>")
    for bad in ("a..b", "a.>.b", "a.b*", "$KV.>", "a b", ","):
        with pytest.raises(SettingsError, match="HFBUS_REPLY_SUBJECTS"):
            Settings.from_env({"HFBUS_REPLY_SUBJECTS": bad})


def test_patterns_parse_without_duplicates() -> None:
    assert parse_patterns("_INBOX.>,_INBOX.>,x.*") == ("_INBOX.>", "x.*")
