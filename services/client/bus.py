"""The publisher side: `async with HfBus.connect(url) as bus: async for event in bus.chat(messages): ...`.

Every tag has a typed method; each returns a `Stream` you can iterate (chunks, progress, then one result or
error) or simply await with `.result()`.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio
import msgspec
import orjson
from nats.aio.client import Client as NATS
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import NoStreamResponseError, NotFoundError, ServiceUnavailableError

from schemas import (
    ChatMessage,
    ChatOutput,
    ChatRequest,
    RequestBase,
    Subjects,
    Tag,
)
from schemas.audio import Sound2TextOutput, Sound2TextRequest, Text2SoundOutput, Text2SoundRequest, TranscriptResult
from schemas.codec import JSON_CODEC, codec_for
from schemas.images import ImageOutput, Pic2PicRequest, Text2PicRequest
from schemas.media import MediaInput, MediaRef, MediaResult
from schemas.models import ModelsReply, ModelsRequest
from schemas.subjects import MSG_ID, answered_request_seq
from schemas.vectorize import VectorizeOutput, VectorizeRequest, VectorizeResult
from schemas.video import Pic2VidRequest, Text2VidRequest, VideoOutput
from services.bus.acked import publish_acked
from services.client.stream import BusUnreachable, ChatStream, Mode, OnProgress, Stream

MessageLike = ChatMessage | dict[str, Any]
MediaLike = MediaInput | bytes | str | Path
"""An https URL (str), a local file (Path), raw bytes, or a ready `MediaInput`."""


OUTPUTS: dict[Tag, Any] = {
    Tag.CHAT: ChatOutput,
    Tag.PIC2TEXT: ChatOutput,
    Tag.VECTORIZE: VectorizeOutput,
    Tag.TEXT2PIC: ImageOutput,
    Tag.PIC2PIC: ImageOutput,
    Tag.TEXT2VID: VideoOutput,
    Tag.PIC2VID: VideoOutput,
    Tag.SOUND2TEXT: Sound2TextOutput,
    Tag.TEXT2SOUND: Text2SoundOutput,
}
"""What a subscriber decodes on each tag's reply subject."""

logger = logging.getLogger(__name__)

PUBLISH_WAIT_S = 5.0
"""How long a durable publish waits for the stream's ack before it is sent again, three tries in all (nats-py's
JetStream default)."""


class HfBus:
    """A connection to hfbus; publishes requests in whichever mode the deployment runs."""

    def __init__(self, nc: NATS, subjects: Subjects, mode: Mode) -> None:
        self.nc = nc
        self.subjects = subjects
        self.mode = mode
        self.task_timeout_s = 900.0
        """How long a non-chat request may go without any output (queued video jobs are slow)."""

    @classmethod
    @asynccontextmanager
    async def connect(
        cls,
        url: str = "nats://127.0.0.1:4222",
        *,
        prefix: str = "ai",
        mode: Mode | None = None,
        connect_within: float = 10.0,
        **options: Any,
    ) -> AsyncIterator[HfBus]:
        """Connect (`url` may list several servers, comma-separated); without `mode`, durable when a JetStream
        stream captures the request subjects. `options` go to `nats.connect` (credentials, TLS, ...)."""
        servers = [server.strip() for server in url.split(",") if server.strip()]
        # Back quickly after a server restart: outputs are plain NATS messages, and while this connection is
        # away the ones addressed to it are missed (see README, Reliability).
        options = {
            "max_reconnect_attempts": -1,
            "reconnect_time_wait": 0.25,
            "error_cb": _log_connection_error,
            **options,
        }
        nc = NATS()
        try:
            # Unlimited reconnects apply to the first connect too: without a deadline a wrong URL would hang forever.
            with anyio.fail_after(connect_within):
                await nc.connect(servers, **options)
        except TimeoutError:
            await nc.close()
            shown = ", ".join(_without_credentials(server) for server in servers)
            raise BusUnreachable(f"no NATS server answered at {shown} within {connect_within:g}s (NATS_URL)") from None
        try:
            subjects = Subjects(prefix)
            yield cls(nc, subjects, mode or await _detect_mode(nc, subjects))
        finally:
            await nc.drain()

    def chat(
        self,
        messages: str | Sequence[MessageLike],
        *,
        model: str | None = None,
        stream: bool = True,
        request_id: str | None = None,
        vision: bool = False,
        first_timeout: float = 120.0,
        idle_timeout: float = 60.0,
        **options: Any,
    ) -> ChatStream:
        """Start a chat (`vision=True` sends it to `pic2text`); a plain string is one user message."""
        if isinstance(messages, str):
            messages = [ChatMessage(role="user", content=messages)]
        typed = [m if isinstance(m, ChatMessage) else msgspec.convert(m, ChatMessage) for m in messages]
        request = ChatRequest(id=request_id or _new_id(), model=model, messages=typed, stream=stream, **options)
        tag = Tag.PIC2TEXT if vision else Tag.CHAT
        return ChatStream(self, tag, request, ChatOutput, first_timeout=first_timeout, idle_timeout=idle_timeout)

    def embed(self, texts: str | Sequence[str], *, model: str | None = None, **fields: Any) -> Stream[VectorizeResult]:
        """Embeddings: one vector per text (`normalize`, `truncate`, `provider`, `options` as keywords)."""
        request = VectorizeRequest(
            id=_new_id(), model=model, input=texts if isinstance(texts, str) else list(texts), **fields
        )
        return self._task(Tag.VECTORIZE, request, VectorizeOutput, None)

    def image(
        self, prompt: str, *, model: str | None = None, on_progress: OnProgress | None = None, **fields: Any
    ) -> Stream[MediaResult]:
        """text2pic: `width`, `height`, `steps`, `guidance_scale`, `seed`, `negative_prompt`, `provider`."""
        request = Text2PicRequest(id=_new_id(), model=model, prompt=prompt, **fields)
        return self._task(Tag.TEXT2PIC, request, ImageOutput, on_progress)

    def edit(
        self,
        image: MediaLike,
        prompt: str,
        *,
        model: str | None = None,
        on_progress: OnProgress | None = None,
        **fields: Any,
    ) -> Stream[MediaResult]:
        """pic2pic: an edited image."""
        request = Pic2PicRequest(id=_new_id(), model=model, image=media_input(image), prompt=prompt, **fields)
        return self._task(Tag.PIC2PIC, request, ImageOutput, on_progress)

    def video(
        self, prompt: str, *, model: str | None = None, on_progress: OnProgress | None = None, **fields: Any
    ) -> Stream[MediaResult]:
        """text2vid: a queued job; `on_progress` sees each progress output."""
        request = Text2VidRequest(id=_new_id(), model=model, prompt=prompt, **fields)
        return self._task(Tag.TEXT2VID, request, VideoOutput, on_progress)

    def animate(
        self,
        image: MediaLike,
        prompt: str | None = None,
        *,
        model: str | None = None,
        on_progress: OnProgress | None = None,
        **fields: Any,
    ) -> Stream[MediaResult]:
        """pic2vid: an image animated into a video."""
        request = Pic2VidRequest(id=_new_id(), model=model, image=media_input(image), prompt=prompt, **fields)
        return self._task(Tag.PIC2VID, request, VideoOutput, on_progress)

    def transcribe(
        self, audio: MediaLike, *, model: str | None = None, on_progress: OnProgress | None = None, **fields: Any
    ) -> Stream[TranscriptResult]:
        """sound2text: the text (and segments) of an audio file."""
        request = Sound2TextRequest(id=_new_id(), model=model, audio=media_input(audio), **fields)
        return self._task(Tag.SOUND2TEXT, request, Sound2TextOutput, on_progress)

    def speak(
        self, text: str, *, model: str | None = None, on_progress: OnProgress | None = None, **fields: Any
    ) -> Stream[MediaResult]:
        """text2sound: speech audio."""
        request = Text2SoundRequest(id=_new_id(), model=model, text=text, **fields)
        return self._task(Tag.TEXT2SOUND, request, Text2SoundOutput, on_progress)

    async def models(self, tag: Tag | str | None = None, *, wait_s: float = 5.0) -> ModelsReply:
        """The model catalog (for model pickers), optionally of one tag."""
        request = ModelsRequest(tag=Tag(tag) if tag is not None else None)
        reply = await self.nc.request(self.subjects.models, JSON_CODEC.encode(request), timeout=wait_s)
        return JSON_CODEC.decode_as(reply.data, ModelsReply)

    async def final(self, tag: Tag, request_id: str, *, request_seq: int | None = None) -> Any | None:
        """The kept final output of a request (durable mode keeps them for HFBUS_FINALS_TTL), or None.

        With `request_seq` (where JetStream stored the request), only the final of that very message: an id
        reused after the dedupe window must not be answered by its predecessor's final.
        """
        if self.mode != "durable":
            return None
        try:
            kept = await self.nc.jsm().get_last_msg(self.subjects.finals_stream, self.subjects.final(tag, request_id))
        except (NotFoundError, NatsTimeoutError, NoRespondersError, ServiceUnavailableError):
            return None  # nothing kept, or JetStream away for now: the caller waits on and asks again
        if request_seq is not None and answered_request_seq(kept.headers) != request_seq:
            return None
        # Kept as it went out: in the encoding its request was sent in.
        try:
            output = codec_for(kept.headers).decode(kept.data or b"", OUTPUTS[tag])
        except msgspec.DecodeError:
            return None
        # Only the final of the request asked about: anything else on that subject was not written for it.
        return output if output.id == request_id else None

    async def download(self, ref: MediaRef) -> bytes:
        """A result's media bytes (inline or from the object store), checked against its sha256."""
        if ref.data is not None:
            data = ref.data
        elif ref.bucket is None:
            raise ValueError(f"{ref.name} has neither inline data nor a bucket")
        else:
            store = await self.nc.jetstream().object_store(ref.bucket)
            data = (await store.get(ref.name)).data or b""
        if hashlib.sha256(data).hexdigest() != ref.sha256:
            raise ValueError(f"{ref.name}: sha256 mismatch")
        return data

    def send(
        self,
        tag: Tag,
        request: RequestBase,
        *,
        first_timeout: float | None = None,
        idle_timeout: float | None = None,
        on_progress: OnProgress | None = None,
    ) -> Stream[Any]:
        """Any request built by the caller (a door translating another API, say), on `tag`'s subject."""
        wait = self.task_timeout_s
        return Stream(
            self,
            tag,
            request,
            OUTPUTS[tag],
            first_timeout=wait if first_timeout is None else first_timeout,
            idle_timeout=wait if idle_timeout is None else idle_timeout,
            on_progress=on_progress,
        )

    def _task(self, tag: Tag, request: RequestBase, output_type: Any, on_progress: OnProgress | None) -> Stream[Any]:
        return Stream(
            self,
            tag,
            request,
            output_type,
            first_timeout=self.task_timeout_s,
            idle_timeout=self.task_timeout_s,
            on_progress=on_progress,
        )

    async def _send(self, tag: Tag, request: RequestBase, inbox: str | None) -> int | None:
        """Publish the request (with `inbox` as its reply subject unless it is read from the out stream); in
        durable mode, the stream sequence it was stored at."""
        subject = self.subjects.request(tag)
        if self.mode == "durable":
            # A stored request keeps no NATS reply subject, so the inbox travels in the body.
            payload = JSON_CODEC.encode(msgspec.structs.replace(request, reply_to=inbox))
            for attempt in range(3):
                try:
                    # Not `jetstream().publish`: its coroutine chain, `wait_for` and PubAck object cost the gateway
                    # more per request than the rest of sending it.
                    ack = await publish_acked(self.nc, subject, payload, {MSG_ID: request.id}, wait_s=PUBLISH_WAIT_S)
                    seq: int = orjson.loads(ack.data)["seq"]
                    return seq
                except (NatsTimeoutError, NoStreamResponseError, ServiceUnavailableError):
                    # The ack may be what was lost, or the stream is electing a leader: resending the same bytes is
                    # deduped by id, and the answer still comes to this inbox, which a fresh request would not share.
                    if attempt == 2:
                        raise
                    await anyio.sleep(0.25)
        else:
            # `reply_to` too: if a stream captures the subject after all (consumers started after this client
            # chose its mode), the stored request still knows where its answer goes.
            payload = JSON_CODEC.encode(msgspec.structs.replace(request, reply_to=inbox))
            await self.nc.publish(subject, payload, reply=inbox or "")
        return None


async def _log_connection_error(err: Exception) -> None:
    # nats-py's default logs every failed attempt with a traceback; reconnecting is routine for a bus client.
    logger.debug("NATS connection error: %s", err)


def _without_credentials(server: str) -> str:
    parts = urlsplit(server if "://" in server else f"nats://{server}")
    host = parts.hostname or ""
    return urlunsplit(parts._replace(netloc=f"{host}:{parts.port}" if parts.port else host))


def media_input(media: MediaLike) -> MediaInput:
    """A `MediaInput` from an https URL, a local file, or bytes."""
    if isinstance(media, MediaInput):
        return media
    if isinstance(media, bytes):
        return MediaInput(data=media)
    if isinstance(media, str) and media.startswith(("https://", "http://")):
        return MediaInput(url=media)
    path = Path(media)
    content_type = mimetypes.guess_type(path.name)[0]
    return MediaInput(data=path.read_bytes(), content_type=content_type)


def _new_id() -> str:
    return uuid.uuid4().hex


async def _detect_mode(nc: NATS, subjects: Subjects) -> Mode:
    try:
        await nc.jetstream().find_stream_name_by_subject(subjects.request(Tag.CHAT))
    except Exception:
        return "core"
    return "durable"
