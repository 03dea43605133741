"""The tag -> handler table the runtime walks to subscribe.

Adding a tag: a request struct in `schemas/<tag>.py`, a module here with `Request` and `handle`, one row
below, a sample request in `tests/contract/`, and a README section.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from schemas import ChatRequest, Tag
from services.handlers import chat
from services.handlers._context import Context


@dataclass(frozen=True, slots=True)
class HandlerSpec:
    """What the runtime needs to serve one tag."""

    request_type: type[Any]
    handle: Callable[[Any, Context], Awaitable[None]]


HANDLERS: dict[Tag, HandlerSpec] = {
    Tag.CHAT: HandlerSpec(ChatRequest, chat.handle),
    Tag.PIC2TEXT: HandlerSpec(ChatRequest, chat.handle),
}
