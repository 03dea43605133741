"""Media in and out of the JetStream object store; inputs by URL, inline bytes or reference, checked."""

from __future__ import annotations

import hashlib
import logging
from typing import Protocol

from nats.aio.client import Client as NATS
from nats.js import api
from nats.js.errors import BucketNotFoundError, NotFoundError, ObjectNotFoundError
from nats.js.object_store import ObjectStore

from schemas.media import MediaInput, MediaRef
from services.errors import InvalidRequest, TooLarge
from services.media_types import LoadedMedia, MediaKind, sniff
from services.settings import Settings

logger = logging.getLogger(__name__)

_EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "video/mp4": "mp4",
    "video/webm": "webm",
    "audio/wav": "wav",
    "audio/mpeg": "mp3",
    "audio/flac": "flac",
    "audio/ogg": "ogg",
    "audio/mp4": "m4a",
}


def _fits(kind: MediaKind, media_type: str) -> bool:
    if kind == "image":
        return media_type.startswith("image/")
    # Speech recognisers take audio in the usual containers, video containers included.
    return media_type.startswith("audio/") or media_type in ("video/webm", "video/mp4")


class UrlFetcher(Protocol):
    async def fetch_media(self, url: str, *, field: str) -> tuple[bytes, str | None]: ...


class MediaStore:
    """Reads media inputs and stores outputs; without JetStream, outputs can only travel inline."""

    def __init__(self, nc: NATS, settings: Settings, fetcher: UrlFetcher) -> None:
        self._nc = nc
        self._settings = settings
        self._fetcher = fetcher
        self._bucket: ObjectStore | None = None

    async def open(self) -> None:
        """Create the bucket (idempotent); without JetStream keep going, inline-only."""
        settings = self._settings
        js = self._nc.jetstream()
        try:
            self._bucket = await js.create_object_store(
                settings.media_bucket,
                config=api.ObjectStoreConfig(
                    ttl=settings.media_ttl_s, replicas=settings.replicas, storage=api.StorageType.FILE
                ),
            )
        except Exception as exc:
            try:
                self._bucket = await js.object_store(settings.media_bucket)
            except Exception:
                logger.warning(
                    "no JetStream object store (%s): media over %d bytes will be refused as too_large",
                    type(exc).__name__,
                    settings.inline_media_bytes,
                )

    async def load(self, media: MediaInput, *, field: str, kind: MediaKind) -> LoadedMedia:
        """The input's bytes, size-checked, with a media type that matches `kind`."""
        limit = self._settings.max_media_bytes
        url = media.url
        if url is not None:
            data, served_type = await self._fetcher.fetch_media(url, field=field)
            declared = served_type
        elif media.data is not None:
            data, declared = media.data, media.content_type
        else:
            data, declared = await self._get(media.bucket or "", media.name or "", field), None
        if len(data) > limit:
            raise TooLarge(f"{field}: {len(data)} bytes is over the {limit}-byte media limit (HFBUS_MAX_MEDIA_BYTES)")
        media_type = sniff(data)
        if media_type is None or not _fits(kind, media_type):
            seen = f"looks like {media_type}" if media_type else f"declared {declared or 'no type'}, unrecognised bytes"
            raise InvalidRequest(f"{field}: not {'an image' if kind == 'image' else 'audio'} ({seen})")
        return LoadedMedia(data, media_type, url)

    async def save(self, data: bytes, media_type: str, *, name: str) -> MediaRef:
        """Store an output and describe it; small ones also travel inline."""
        settings = self._settings
        digest = hashlib.sha256(data).hexdigest()
        inline = data if len(data) <= settings.inline_media_bytes else None
        full_name = f"{name}.{_EXTENSIONS.get(media_type, 'bin')}"
        if self._bucket is None:
            if inline is None:
                raise TooLarge(
                    f"the {len(data)}-byte output is over the inline limit ({settings.inline_media_bytes} bytes,"
                    " HFBUS_INLINE_MEDIA_BYTES) and there is no JetStream object store to put it in"
                )
            return MediaRef(
                bucket=None, name=full_name, size=len(data), sha256=digest, content_type=media_type, data=inline
            )
        meta = api.ObjectMeta(name=full_name, description=media_type, headers={"Content-Type": media_type})
        try:
            await self._bucket.put(full_name, data, meta=meta)
        except BaseException:
            # Nothing half-written stays behind: a failed or cancelled upload is deleted.
            await self._delete_quietly(full_name)
            raise
        return MediaRef(
            bucket=settings.media_bucket,
            name=full_name,
            size=len(data),
            sha256=digest,
            content_type=media_type,
            data=inline,
        )

    async def _get(self, bucket: str, name: str, field: str) -> bytes:
        try:
            store = self._bucket if bucket == self._settings.media_bucket and self._bucket else None
            store = store or await self._nc.jetstream().object_store(bucket)
            result = await store.get(name)
        except (BucketNotFoundError, ObjectNotFoundError, NotFoundError):
            raise InvalidRequest(f"{field}: no object {name!r} in bucket {bucket!r}") from None
        return result.data or b""

    async def _delete_quietly(self, name: str) -> None:
        if self._bucket is None:
            return
        try:
            await self._bucket.delete(name)
        except Exception:
            logger.warning("could not delete the partial object %s", name)
