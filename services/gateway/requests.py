"""Reading request bodies: JSON into a struct, with an OpenAI-shaped 400 that names the bad field."""

from __future__ import annotations

from typing import TypeVar

import msgspec
from aiohttp import web
from multidict import MultiDictProxy

from schemas.media import MediaInput
from services.gateway.errors import bad_request

T = TypeVar("T")
Form = MultiDictProxy[str | bytes | bytearray | web.FileField]


async def read_json(request: web.Request, type_: type[T]) -> T:
    """The body decoded as `type_`; a 400 naming the field (`param`) when it is not valid JSON of that shape."""
    body = await request.read()
    try:
        return msgspec.json.decode(body, type=type_)
    except msgspec.ValidationError as exc:
        raise bad_request(f"invalid request body: {exc}", param=field_of(exc)) from None
    except msgspec.DecodeError as exc:
        raise bad_request(f"the request body is not valid JSON: {exc}") from None


def field_of(exc: msgspec.ValidationError) -> str | None:
    """The top-level field a msgspec error points at (`... - at `$.messages[0].role`` -> `messages`)."""
    _, found, path = str(exc).rpartition(" - at `$.")
    if not found:
        return None
    return path.rstrip("`").split("[", 1)[0].split(".", 1)[0] or None


async def read_form(request: web.Request) -> Form:
    """A multipart (or urlencoded) body; a 400 when it is neither."""
    if not request.content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        raise bad_request(f"expected a multipart/form-data body, got {request.content_type or 'none'}")
    return await request.post()


def form_text(form: Form, name: str, *, required: bool = False) -> str | None:
    value = form.get(name)
    if value is None:
        if required:
            raise bad_request(f"`{name}` is required", param=name)
        return None
    if not isinstance(value, str):
        raise bad_request(f"`{name}` must be a text field", param=name)
    return value


def form_file(form: Form, *names: str) -> MediaInput:
    """The first uploaded file among `names` (OpenAI accepts `image` and `image[]`), as a media input."""
    for name in names:
        value = form.get(name)
        if isinstance(value, web.FileField):
            data = value.file.read()
            if not data:
                raise bad_request(f"`{name}` is an empty file", param=name)
            return MediaInput(data=data, content_type=_media_type(value.content_type))
    raise bad_request(f"`{names[0]}` must be an uploaded file", param=names[0])


def _media_type(declared: str | None) -> str | None:
    # The consumer sniffs the bytes anyway; a generic or missing type is better left out than trusted.
    if declared is None or declared in ("application/octet-stream", ""):
        return None
    return declared.split(";", 1)[0].strip().lower()
