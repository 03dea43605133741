"""The tag -> handler table the runtime walks to subscribe.

Adding a tag: a request struct in `schemas/<tag>.py`, a module here with `Request` and `handle`, one row
below, a sample request in `tests/contract/`, and a README section.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from schemas import ChatRequest, Tag
from schemas.audio import Sound2TextRequest, Text2SoundRequest
from schemas.images import Pic2PicRequest, Text2PicRequest
from schemas.vectorize import VectorizeRequest
from schemas.video import Pic2VidRequest, Text2VidRequest
from services.handlers import chat, pic2pic, pic2vid, sound2text, text2pic, text2sound, text2vid, vectorize
from services.handlers.seams import Context


@dataclass(frozen=True, slots=True)
class HandlerSpec:
    """What the runtime needs to serve one tag."""

    request_type: type[Any]
    handle: Callable[[Any, Context], Awaitable[None]]


HANDLERS: dict[Tag, HandlerSpec] = {
    Tag.CHAT: HandlerSpec(ChatRequest, chat.handle),
    Tag.PIC2TEXT: HandlerSpec(ChatRequest, chat.handle),
    Tag.VECTORIZE: HandlerSpec(VectorizeRequest, vectorize.handle),
    Tag.TEXT2PIC: HandlerSpec(Text2PicRequest, text2pic.handle),
    Tag.TEXT2VID: HandlerSpec(Text2VidRequest, text2vid.handle),
    Tag.PIC2PIC: HandlerSpec(Pic2PicRequest, pic2pic.handle),
    Tag.PIC2VID: HandlerSpec(Pic2VidRequest, pic2vid.handle),
    Tag.SOUND2TEXT: HandlerSpec(Sound2TextRequest, sound2text.handle),
    Tag.TEXT2SOUND: HandlerSpec(Text2SoundRequest, text2sound.handle),
}
