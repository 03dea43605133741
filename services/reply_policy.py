"""Which subjects a request may name for its outputs (`HFBUS_REPLY_SUBJECTS`): pure, no I/O.

The consumer publishes with its own NATS rights, which are wider than a publisher's (kept finals, dead
letters, JetStream and object-store API subjects). A reply subject is chosen by whoever sent the request, so
it is checked here before anything is published to it; otherwise any publisher could make the consumer
write where the publisher itself may not (a KV key, another request's kept final, a stream's API).

Matching follows NATS: `*` is exactly one token, `>` (last token only) one or more trailing tokens.
Whatever the setting, these are refused:

    `$...`                                 JetStream, KV, object store, `$SYS`, micro: server APIs
    `<prefix>.<token>`                     request subjects (`<prefix>.<tag>`) and `<prefix>.models`
    `<prefix>.cancel.>`, `.final.>`, `.dead.>`
    `<prefix>.out.<tag>.<id>` of another request (its subscribers would read outputs it never asked for)
    malformed subjects: empty tokens, whitespace or control characters, `*` or `>`, over REPLY_SUBJECT_MAX
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from schemas import Subjects, Tag

REPLY_SUBJECT_MAX = 512
"""Longest reply subject accepted; inboxes are ~40 characters, and every output repeats the subject."""
_INTERNAL = ("cancel", "final", "dead")
_TAGS = frozenset(tag.value for tag in Tag)
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")
"""Unicode whitespace (as `str.isspace`) and ASCII control characters; one scan instead of a test per character."""


def default_patterns(prefix: str) -> tuple[str, ...]:
    """Reply inboxes of every NATS client, and the deployment's own output subjects."""
    return ("_INBOX.>", f"{prefix}.out.>")


def malformed(subject: str, *, pattern: bool = False) -> str | None:
    """Why `subject` is not a well-formed NATS subject (a pattern when `pattern`), or None."""
    if not subject:
        return "it is empty"
    if len(subject) > REPLY_SUBJECT_MAX:
        return f"it is longer than {REPLY_SUBJECT_MAX} characters"
    if _SPACE_OR_CONTROL.search(subject) is not None:
        return "it contains whitespace or control characters"
    tokens = subject.split(".")
    if any(not token for token in tokens):
        return "it has an empty token"
    for at, token in enumerate(tokens):
        if pattern:
            if ("*" in token or ">" in token) and token not in ("*", ">"):
                return f"token {token!r} mixes a wildcard with other characters"
            if token == ">" and at != len(tokens) - 1:
                return "'>' is only allowed as the last token"
        elif "*" in token or ">" in token:
            return "it contains a wildcard"
    return None


def matches(pattern: str, subject: str) -> bool:
    """Whether the NATS wildcard `pattern` matches the literal `subject`."""
    wanted, tokens = pattern.split("."), subject.split(".")
    for at, token in enumerate(wanted):
        if token == ">":
            return len(tokens) > at
        if at >= len(tokens) or (token != "*" and token != tokens[at]):
            return False
    return len(wanted) == len(tokens)


def parse_patterns(raw: str) -> tuple[str, ...]:
    """`HFBUS_REPLY_SUBJECTS` -> patterns; ValueError naming the first one that cannot be used."""
    patterns = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    if not patterns:
        raise ValueError("no reply subject patterns given")
    for pattern in patterns:
        if (why := malformed(pattern, pattern=True)) is not None:
            raise ValueError(f"{pattern!r} is not a NATS subject pattern: {why}")
        if pattern.startswith("$"):
            raise ValueError(f"{pattern!r} can never match: subjects starting with '$' are never reply subjects")
    return patterns


@dataclass(frozen=True, slots=True)
class ReplyPolicy:
    """The allowed reply-subject patterns of one deployment, and the subjects refused whatever they say."""

    subjects: Subjects
    patterns: tuple[str, ...]

    @classmethod
    def of(cls, prefix: str, patterns: Iterable[str] = ()) -> ReplyPolicy:
        """The policy for `prefix`; no patterns means the defaults."""
        return cls(Subjects(prefix), tuple(patterns) or default_patterns(prefix))

    def refusal(self, subject: str, tag: Tag, request_id: str) -> str | None:
        """Why request `request_id` of `tag` may not have its outputs published to `subject`, or None."""
        if (why := malformed(subject)) is not None:
            return why
        if subject.startswith("$"):
            return "subjects starting with '$' are server APIs"
        prefix = self.subjects.prefix
        if subject.startswith(prefix + "."):
            rest = subject[len(prefix) + 1 :].split(".")
            if len(rest) == 1:
                return f"{prefix}.<name> subjects are hfbus requests"
            if rest[0] in _INTERNAL:
                return f"{prefix}.{rest[0]}.> subjects are hfbus internals"
            if rest[0] == "out" and len(rest) == 3 and rest[1] in _TAGS:
                if subject != self.subjects.out(tag, request_id or "invalid"):
                    return "it is the output subject of another request"
                return None  # a request's own output subject is always allowed
        if not any(matches(pattern, subject) for pattern in self.patterns):
            return f"it matches none of {', '.join(self.patterns)} (HFBUS_REPLY_SUBJECTS)"
        return None

    def check(self, reply: str | None, reply_to: str | None, tag: Tag, request_id: str) -> str | None:
        """The error message for a request whose NATS reply subject or `reply_to` is refused, or None.

        Both are checked even when only one would be used: a request naming a hostile subject anywhere is
        answered on its own output subject only.
        """
        for field, subject in (("reply subject", reply), ("reply_to", reply_to)):
            if subject and (why := self.refusal(subject, tag, request_id)) is not None:
                shown = subject if len(subject) <= 80 else subject[:80] + "..."
                return f"{field} {shown!r} is not an allowed reply subject: {why}"
        return None
